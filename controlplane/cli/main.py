"""The `controlplane` command: parses arguments, calls the service facade, prints text.

Reading and configuration commands use the facade on the store directly (`Service.open`),
also while serve is down; operations go to serve over its control socket (cli/ops.py).
Only this module calls sys.exit. The facade is imported inside the commands that need
it, so that `--help` and a quick command start quickly.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from controlplane import __version__
from controlplane.domain.models import Project, format_interval, validate_name
from controlplane.errors import ControlPlaneError, ValidationError
from controlplane.settings import Settings

if TYPE_CHECKING:
    from controlplane.service.facade import Service

Handler = Callable[[Settings, argparse.Namespace], int]
EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2, like every other bad input."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _service(settings: Settings) -> Service:
    # imported here: the facade pulls in the store and observe, which `--help` does not need
    from controlplane.service.facade import Service

    return Service.open(settings)


def _emit(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2, sort_keys=True) if getattr(args, "json", False) else text)
    return 0


def _project_json(project: Project) -> dict[str, Any]:
    return project.to_dict()


def _describe(project: Project) -> str:
    rows = [
        ("name", project.name),
        ("repository", project.repo),
        ("branch", project.branch),
        ("folder", project.path),
        ("entry", project.entry),
        ("poll", format_interval(project.poll)),
        ("policy", project.policy),
        ("output to chat", "on" if project.output else "off"),
        ("releases kept", str(project.keep)),
        ("check", project.check or "off"),
        ("health window", f"{project.health_window}s"),
    ]
    return "\n".join(f"{k:<15} {v}" for k, v in rows)


# -- project ---------------------------------------------------------------------------


def cmd_project_add(settings: Settings, args: argparse.Namespace) -> int:
    """Add a project: checked here, then its commits fetched and numbered (by serve when it
    runs, else in this process)."""
    from controlplane.cli.ops import run
    from controlplane.service.facade import Op

    svc = _service(settings)
    fields = {"repo": args.repo, "path": args.path, "branch": args.branch, "entry": args.entry}
    new = svc.config.check_new(name=args.name, **fields)
    for warning in new.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    run(settings, Op.ADD, new.name, fields)
    project, head = svc.query.project(new.name), svc.query.head(new.name)
    if head is not None:
        print(
            f"numbered {head.n} commits; head #{head.n} {head.short} {head.subject}",
            file=sys.stderr,
        )
    return _emit(args, _project_json(project), f"added {project.name}\n" + _describe(project))


def cmd_launch(settings: Settings, args: argparse.Namespace) -> int:
    """Add a third-party repository as a project under $DATA/apps/NAME and deploy it."""
    from controlplane.cli.ops import follow, run
    from controlplane.service.facade import Op, launch_name

    svc = _service(settings)
    name = args.name or launch_name(args.url)
    fields = {"repo": args.url, "path": args.path, "branch": args.branch, "entry": args.entry}
    new = svc.config.check_new(name=name, kind="launch", **fields)
    run(settings, Op.LAUNCH, new.name, fields)
    project, head = svc.query.project(name), svc.query.head(name)
    where = f"head #{head.n} {head.short}" if head is not None else "no commits"
    print(f"added {name} ({project.branch}, {where}) in {project.path}")
    for warning in new.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    op = Op.TEST if args.test else Op.DEPLOY
    return follow(settings, op, name, {}, detach=args.detach)


def cmd_project_list(settings: Settings, args: argparse.Namespace) -> int:
    """List projects."""
    projects = _service(settings).query.projects()
    text = (
        "\n".join(
            f"{p.name:<20} {p.branch:<12} poll {format_interval(p.poll):<4} {p.repo}"
            for p in projects
        )
        or "no projects yet: add one with `controlplane project add NAME --repo URL --path DIR`"
    )
    return _emit(args, [_project_json(p) for p in projects], text)


def cmd_project_show(settings: Settings, args: argparse.Namespace) -> int:
    """Show one project."""
    project = _service(settings).query.project(validate_name(args.name))
    return _emit(args, _project_json(project), _describe(project))


def cmd_project_remove(settings: Settings, args: argparse.Namespace) -> int:
    """Remove a project (by serve when it runs: refused while an operation runs for it)."""
    from controlplane.cli.ops import run
    from controlplane.service.facade import Op

    name = validate_name(args.name)
    _service(settings).query.project(name)
    print(run(settings, Op.REMOVE, name, {}))
    return 0


def cmd_project_key(settings: Settings, args: argparse.Namespace) -> int:
    """Show, make or drop a project's ssh deploy key; show or forget its pinned hosts."""
    config = _service(settings).config
    if args.forget_hosts:
        config.forget_hosts(args.name)
    if args.remove:
        config.remove_deploy_key(args.name)
        print(f"deploy key of {args.name} removed; remove it from the repository too")
        return 0
    key = config.deploy_key(args.name, new=args.new)
    data = {
        "name": key.name,
        "public_key": key.public,
        "made": key.made,
        "pinned_hosts": [vars(h) for h in key.hosts],
    }
    lines = [
        "deploy key (add it to the repository as a read-only deploy key):",
        key.public,
        "",
        "pinned host keys: "
        + ("none yet (pinned at the first ssh fetch)" if not key.hosts else ""),
        *(f"  {h.host} {h.kind} {h.fingerprint}" for h in key.hosts),
    ]
    return _emit(args, data, "\n".join(lines))


def cmd_project_set(settings: Settings, args: argparse.Namespace) -> int:
    """Change one project setting."""
    project = _service(settings).config.set_setting(args.name, args.key, args.value)
    return _emit(args, _project_json(project), _describe(project))


# -- env, poll -------------------------------------------------------------------------


def _slot(args: argparse.Namespace) -> str:
    return "test" if args.test else "prod"


def cmd_env_set(settings: Settings, args: argparse.Namespace) -> int:
    """Set variables."""
    names = _service(settings).config.env_set(args.name, _slot(args), args.assignments)
    print(f"set {', '.join(names)} for {args.name} {_slot(args)}")
    return 0


def cmd_env_unset(settings: Settings, args: argparse.Namespace) -> int:
    """Remove variables."""
    names = _service(settings).config.env_unset(args.name, _slot(args), args.keys)
    print(f"removed {', '.join(names)} from {args.name} {_slot(args)}")
    return 0


def cmd_env_list(settings: Settings, args: argparse.Namespace) -> int:
    """List variables, masked."""
    rows = _service(settings).config.env_list(args.name, _slot(args), reveal=args.reveal)
    text = "\n".join(f"{k}={v}" for k, v in rows) or f"no variables for {args.name} {_slot(args)}"
    return _emit(args, dict(rows), text)


def cmd_poll(settings: Settings, args: argparse.Namespace) -> int:
    """Set the poll interval."""
    project = _service(settings).config.set_poll(args.name, args.interval)
    print(f"{project.name}: poll {format_interval(project.poll)}")
    return 0


# -- keys, store -----------------------------------------------------------------------


def cmd_key_generate(settings: Settings, args: argparse.Namespace) -> int:
    """Print a new key (for CONTROLPLANE_KEY)."""
    from controlplane.service import boot

    print(boot.generate_key())
    return 0


def cmd_key_rotate(settings: Settings, args: argparse.Namespace) -> int:
    """Re-encrypt everything under a new key."""
    from controlplane.service import boot

    rotated = boot.rotate_key(settings)
    if rotated.from_file:
        print(f"re-encrypted {rotated.count} secrets under a new key in {settings.key_path}")
    else:
        print(
            f"re-encrypted {rotated.count} secrets under the first key of CONTROLPLANE_KEY; "
            "the older keys there can now be removed"
        )
    return 0


def cmd_store_restore(settings: Settings, args: argparse.Namespace) -> int:
    """Put the last good copy of the store back."""
    from controlplane.service import boot

    backup = boot.restore_store(settings)
    print(f"restored {settings.store_path} from {backup}")
    return 0


# -- processes (supervisord) -------------------------------------------------------------


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    """Render supervisord.conf and exec supervisord."""
    from controlplane.service import boot

    boot.up(settings)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    """The long-running control plane."""
    from controlplane.service import boot

    return boot.serve(settings)


def cmd_run_slot(settings: Settings, args: argparse.Namespace) -> int:
    """Listed for --help only: `python -m controlplane run-slot` (controlplane.__main__)
    runs a slot before this parser is ever imported."""
    raise ControlPlaneError("run-slot runs through `python -m controlplane run-slot NAME SLOT`")


def cmd_events(settings: Settings, args: argparse.Namespace) -> int:
    """supervisord event listener (supervisord runs this)."""
    from controlplane.service import boot

    return boot.events(settings)


# -- parser ----------------------------------------------------------------------------


def _add(sub: Any, name: str, handler: Handler, help_text: str, *, json_flag: bool = False) -> Any:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    return parser


def _project_commands(sub: Any) -> None:
    project = sub.add_parser("project", help="add, list, show, change and remove projects")
    psub = project.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = _add(psub, "add", cmd_project_add, "add a project", json_flag=True)
    add.add_argument("name", help="a-z, 0-9, '-' and '_', at most 32")
    add.add_argument("--repo", required=True, help="git URL (https, ssh, git@host:path)")
    add.add_argument("--path", required=True, help="the folder the app starts from (absolute)")
    add.add_argument("--branch", default="main", help="branch to follow (default main)")
    add.add_argument("--entry", default="main.py", help="entry file (default main.py)")
    _add(psub, "list", cmd_project_list, "list projects", json_flag=True)
    _add(psub, "show", cmd_project_show, "show one project", json_flag=True).add_argument("name")
    _add(psub, "remove", cmd_project_remove, "remove a project").add_argument("name")
    key = _add(
        psub,
        "key",
        cmd_project_key,
        "the ssh deploy key of a project (made on first use) and its pinned host keys",
        json_flag=True,
    )
    key.add_argument("name", help="a project, or the name of one you are about to add")
    key.add_argument("--new", action="store_true", help="replace the key with a new one")
    key.add_argument("--remove", action="store_true", help="drop the key")
    key.add_argument(
        "--forget-hosts", action="store_true", help="forget the pinned host keys (re-pin)"
    )
    pset = _add(psub, "set", cmd_project_set, "change a setting", json_flag=True)
    pset.add_argument("name")
    pset.add_argument(
        "key",
        help="repo, branch, entry, policy, output, keep, check, health-window, poll, test-duration",
    )
    pset.add_argument("value")


def _env_commands(sub: Any) -> None:
    env = sub.add_parser("env", help="config variables of a project (prod, or test with --test)")
    esub = env.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, handler, help_text, nargs_name in (
        ("set", cmd_env_set, "set variables: KEY=VALUE ...", "assignments"),
        ("unset", cmd_env_unset, "remove variables: KEY ...", "keys"),
        ("list", cmd_env_list, "list variables (values masked)", None),
    ):
        parser = _add(esub, name, handler, help_text, json_flag=name == "list")
        parser.add_argument("name")
        parser.add_argument("--test", action="store_true", help="the test slot's variables")
        if nargs_name:
            parser.add_argument(
                nargs_name, nargs="+", metavar="KEY=VALUE" if name == "set" else "KEY"
            )
        else:
            parser.add_argument("--reveal", action="store_true", help="show values (on the box)")


def build_parser() -> Parser:
    parser = Parser(
        prog="controlplane",
        description="CI/CD and process manager for Python projects, driven from a Telegram bot.",
    )
    parser.add_argument("--version", action="version", version=f"controlplane {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    _add(sub, "up", cmd_up, "render supervisord.conf and run supervisord (the entrypoint)")
    _add(sub, "serve", cmd_serve, "run the control plane (supervisord runs it)")
    slot = _add(sub, "run-slot", cmd_run_slot, "run a slot's app (supervisord calls this)")
    slot.add_argument("name")
    slot.add_argument("slot", choices=("prod", "test"))
    _add(sub, "events", cmd_events, "supervisord event listener (supervisord runs it)")
    _project_commands(sub)
    _env_commands(sub)
    from controlplane.cli.ops import add_op_commands

    add_op_commands(sub, _add)
    launch = _add(sub, "launch", cmd_launch, "run a third-party repository (test or prod)")
    launch.add_argument("url")
    launch.add_argument("--name", help="project name (default: from the URL)")
    launch.add_argument("--path", help="folder (default: $DATA/apps/NAME)")
    launch.add_argument("--branch", help="branch (default: main, else master)")
    launch.add_argument("--entry", default="main.py", help="entry file (default main.py)")
    launch.add_argument("--test", action="store_true", help="in the test slot, not prod")
    launch.add_argument("--detach", action="store_true", help="return once it started")
    poll = _add(sub, "poll", cmd_poll, "set how often to poll: off, 1m, 5m, 15m, 1h, 6h, 24h")
    poll.add_argument("name")
    poll.add_argument("interval")
    from controlplane.cli.observe import add_observe_commands

    add_observe_commands(sub, _add)
    key = sub.add_parser("key", help="the master key: generate, rotate")
    ksub = key.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add(ksub, "generate", cmd_key_generate, "print a new key for CONTROLPLANE_KEY")
    _add(ksub, "rotate", cmd_key_rotate, "re-encrypt every secret under a new key")
    store = sub.add_parser("store", help="the store file")
    ssub = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add(ssub, "restore", cmd_store_restore, "put the last good copy back (serve stopped)")
    return parser


WINDOWS_TEXT = (
    "controlplane runs inside its Linux container; on Windows run it with Docker Desktop "
    "(docker compose up -d) and use `docker compose exec controlplane controlplane ...`"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `controlplane` command."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if settings.platform.os == "windows":
            print(WINDOWS_TEXT, file=sys.stderr)
            return EXIT_FAILED
        handler: Handler = args.handler
        return handler(settings, args)
    except ValidationError as exc:
        print(f"controlplane: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ControlPlaneError as exc:
        print(f"controlplane: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
