"""CLI commands that configure: `project add|list|show|remove|key|set`, `launch`, `env`, `poll`.

They work on the store through the service facade (also while serve is down); adding,
launching and removing run as operations (by serve when it runs, else in this process;
cli/ops.py). Everything printed for a person is in the CLI's language (`args.lang`, the
locale's); `--json` output is the same data in every language.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from controlplane.domain.models import (
    Project,
    interval_text,
    validate_name,
    validate_placement,
    validate_runner,
)
from controlplane.i18n import N_, t
from controlplane.settings import Settings

if TYPE_CHECKING:
    from controlplane.cli.main import Add
    from controlplane.service.facade import Service


def service(settings: Settings) -> Service:
    # imported here: the facade pulls in the store and observe, which `--help` does not need
    from controlplane.service.facade import Service

    return Service.open(settings)


def emit(args: argparse.Namespace, data: Any, text: str) -> int:
    """JSON for scripts (`--json`, never translated), else the text for a person."""
    import json

    print(json.dumps(data, indent=2, sort_keys=True) if getattr(args, "json", False) else text)
    return 0


def table(rows: list[tuple[str, str]], width: int = 15) -> str:
    """Label and value per line, the values aligned (wider when a label is longer)."""
    width = max([width] + [len(label) + 1 for label, _ in rows])
    return "\n".join(f"{label:<{width}} {value}" for label, value in rows)


def describe(project: Project, lang: str) -> str:
    """A project's settings, one per line."""
    rows = [
        (t(lang, "name"), project.name + (" 🌍" if project.third_party else "")),
        (t(lang, "repository"), project.repo),
        (t(lang, "branch"), project.branch),
        (t(lang, "folder"), project.path),
        (t(lang, "entry"), project.entry),
        (t(lang, "poll"), interval_text(project.poll).render(lang)),
        (t(lang, "policy"), project.policy),
        (t(lang, "output to chat"), t(lang, "on") if project.output else t(lang, "off")),
        (t(lang, "releases kept"), str(project.keep)),
        (t(lang, "check"), project.check or t(lang, "off")),
        (t(lang, "installer"), project.installer),
        (t(lang, "health window"), t(lang, "{n}s", n=project.health_window)),
        (t(lang, "kind"), t(lang, "third-party") if project.third_party else t(lang, "own")),
        (t(lang, "runner"), t(lang, "this box") if project.runner == "local" else t(lang, "swarm")),
        (t(lang, "placement"), ", ".join(project.placement) or t(lang, "anywhere")),
    ]
    return table(rows)


def _warn(warnings: Any, lang: str) -> None:
    for warning in warnings:
        print(t(lang, "warning: {warning}", warning=warning), file=sys.stderr)


# -- project ---------------------------------------------------------------------------


def cmd_project_add(settings: Settings, args: argparse.Namespace) -> int:
    """Add a project: checked here, then its commits fetched and numbered (by serve when it
    runs, else in this process)."""
    from controlplane.cli.ops import run
    from controlplane.service.facade import Op

    lang, svc = args.lang, service(settings)
    fields = {"repo": args.repo, "path": args.path, "branch": args.branch, "entry": args.entry}
    new = svc.config.check_new(name=args.name, **fields, take_over=args.take_over)
    fields["take_over"] = args.take_over
    _warn(new.warnings, lang)
    numbered = run(settings, Op.ADD, new.name, fields)  # the commits numbered, the head
    print(numbered.render(lang), file=sys.stderr)
    project = svc.query.project(new.name)
    text = t(lang, "added {name}", name=project.name) + "\n" + describe(project, lang)
    return emit(args, project.to_dict(), text)


def cmd_launch(settings: Settings, args: argparse.Namespace) -> int:
    """Add a third-party repository as a project (under $DATA/apps/NAME by default) with
    its variables and settings, then run it in prod or, with --test, in the test slot."""
    from controlplane.cli.ops import follow, run
    from controlplane.service.facade import Op, check_launch

    lang, svc = args.lang, service(settings)
    fields: dict[str, Any] = {
        "repo": args.url,
        "path": args.path,
        "branch": args.branch,
        "entry": args.entry,
        "prod": args.env or [],
        "test": args.test_env or [],
        "poll": args.poll,
        "test_duration": args.test_duration,
        "output": args.output,
        "take_over": args.take_over,
    }
    plan = check_launch(svc.config, args.url, name=args.name, **_launch_checked(fields))
    name = plan.new.name
    result = run(settings, Op.LAUNCH, name, fields)
    if args.take_over:
        print(result.render(lang), file=sys.stderr)  # what moved, and where
    project, head = svc.query.project(name), svc.query.head(name)
    where = (
        t(lang, "head #{n} {sha}", n=head.n, sha=head.short)
        if head is not None
        else t(lang, "no commits")
    )
    print(
        t(
            lang,
            "added {name} ({branch}, {where}) in {folder}",
            name=name,
            branch=project.branch,
            where=where,
            folder=project.path,
        )
    )
    _warn(plan.new.warnings, lang)
    op = Op.TEST if args.test else Op.DEPLOY
    return follow(settings, op, name, {}, detach=args.detach, lang=lang)


def take_over_flag(parser: argparse.ArgumentParser, lang: str) -> None:
    """--take-over, for `project add` and `launch`."""
    parser.add_argument(
        "--take-over",
        action="store_true",
        help=t(
            lang,
            "a folder holding other files: move them to a dated backup under "
            "$DATA/backups (never deleted), then use the folder",
        ),
    )


def _launch_checked(fields: dict[str, Any]) -> dict[str, Any]:
    """The request's fields as check_launch takes them (the URL apart)."""
    return {k: v for k, v in fields.items() if k != "repo"}


def cmd_project_list(settings: Settings, args: argparse.Namespace) -> int:
    """List projects."""
    lang = args.lang
    projects = service(settings).query.projects()
    polls = [
        t(lang, "poll {interval}", interval=interval_text(p.poll).render(lang)) for p in projects
    ]
    width = max([9] + [len(p) for p in polls])
    text = "\n".join(
        f"{_listed(p):<20} {p.branch:<12} {poll:<{width}} {p.repo}"
        for p, poll in zip(projects, polls, strict=True)
    ) or t(
        lang, "no projects yet: add one with `controlplane project add NAME --repo URL --path DIR`"
    )
    return emit(args, [p.to_dict() for p in projects], text)


def _listed(project: Project) -> str:
    """A project's name in the list; 🌍 marks a third-party repository (`launch`)."""
    return f"{project.name} 🌍" if project.third_party else project.name


def cmd_project_show(settings: Settings, args: argparse.Namespace) -> int:
    """Show one project."""
    project = service(settings).query.project(validate_name(args.name))
    return emit(args, project.to_dict(), describe(project, args.lang))


def cmd_project_remove(settings: Settings, args: argparse.Namespace) -> int:
    """Remove a project (by serve when it runs: refused while an operation runs for it)."""
    from controlplane.cli.ops import run
    from controlplane.service.facade import Op

    name = validate_name(args.name)
    service(settings).query.project(name)
    print(run(settings, Op.REMOVE, name, {}).render(args.lang))
    return 0


def cmd_project_key(settings: Settings, args: argparse.Namespace) -> int:
    """Show, make or drop a project's ssh deploy key; show or forget its pinned hosts."""
    lang, config = args.lang, service(settings).config
    if args.forget_hosts:
        config.forget_hosts(args.name)
    if args.remove:
        config.remove_deploy_key(args.name)
        print(
            t(
                lang,
                "deploy key of {name} removed; remove it from the repository too",
                name=args.name,
            )
        )
        return 0
    key = config.deploy_key(args.name, new=args.new)
    data = {
        "name": key.name,
        "public_key": key.public,
        "made": key.made,
        "pinned_hosts": [vars(h) for h in key.hosts],
    }
    pinned = (
        t(lang, "pinned host keys:")
        if key.hosts
        else t(lang, "pinned host keys: none yet (pinned at the first ssh fetch)")
    )
    lines = [
        t(lang, "deploy key (add it to the repository as a read-only deploy key):"),
        key.public,
        "",
        pinned,
        *(f"  {h.host} {h.kind} {h.fingerprint}" for h in key.hosts),
    ]
    return emit(args, data, "\n".join(lines))


def cmd_project_set(settings: Settings, args: argparse.Namespace) -> int:
    """Change one project setting; `runner` and `placement` run as serve's operations
    (a move of the project's slots, a placement applied to them)."""
    from controlplane.cli.ops import follow

    if args.key in ("runner", "placement"):
        # what is wrong with the request is said before asking serve (which may be down)
        service(settings).query.project(validate_name(args.name))
        if args.key == "runner":
            value = validate_runner(one_value(args))
            return follow(settings, "move", args.name, {"runner": value}, lang=args.lang)
        extra = {"placement": list(validate_placement(args.value)) or ["-"]}
        return follow(settings, "place", args.name, extra, lang=args.lang)
    project = service(settings).config.set_setting(args.name, args.key, one_value(args))
    return emit(args, project.to_dict(), describe(project, args.lang))


def one_value(args: argparse.Namespace) -> str:
    """The setting's one value (only placement takes several)."""
    from controlplane.errors import ValidationError
    from controlplane.i18n import tr

    if len(args.value) != 1:
        raise ValidationError(args.key, " ".join(args.value), tr("give one value"))
    return str(args.value[0])


# -- poll -----------------------------------------------------------------------------


def cmd_poll(settings: Settings, args: argparse.Namespace) -> int:
    """Set the poll interval."""
    project = service(settings).config.set_poll(args.name, args.interval)
    interval = interval_text(project.poll)
    print(t(args.lang, "{name}: poll {interval}", name=project.name, interval=interval))
    return 0


# -- parser ----------------------------------------------------------------------------


def add_project_commands(sub: Any, add: Add, lang: str) -> None:
    """Register `project` and its actions on the main parser."""
    project = sub.add_parser("project", help=t(lang, "add, list, show, change and remove projects"))
    psub = project.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = add(psub, "add", cmd_project_add, N_("add a project"), json_flag=True)
    new.add_argument("name", help=t(lang, "a-z, 0-9, '-' and '_', at most 32"))
    new.add_argument("--repo", required=True, help=t(lang, "git URL (https, ssh, git@host:path)"))
    new.add_argument(
        "--path", required=True, help=t(lang, "the folder the app starts from (absolute)")
    )
    new.add_argument("--branch", default="main", help=t(lang, "branch to follow (default main)"))
    new.add_argument("--entry", default="main.py", help=t(lang, "entry file (default main.py)"))
    take_over_flag(new, lang)
    add(psub, "list", cmd_project_list, N_("list projects"), json_flag=True)
    add(psub, "show", cmd_project_show, N_("show one project"), json_flag=True).add_argument("name")
    add(psub, "remove", cmd_project_remove, N_("remove a project")).add_argument("name")
    key = add(
        psub,
        "key",
        cmd_project_key,
        N_("the ssh deploy key of a project (made on first use) and its pinned host keys"),
        json_flag=True,
    )
    key.add_argument("name", help=t(lang, "a project, or the name of one you are about to add"))
    key.add_argument("--new", action="store_true", help=t(lang, "replace the key with a new one"))
    key.add_argument("--remove", action="store_true", help=t(lang, "drop the key"))
    key.add_argument(
        "--forget-hosts", action="store_true", help=t(lang, "forget the pinned host keys (re-pin)")
    )
    pset = add(psub, "set", cmd_project_set, N_("change a setting"), json_flag=True)
    pset.add_argument("name")
    keys = (
        "repo, branch, entry, policy, output, keep, check, health-window, poll, test-duration, "
        "installer (uv or pip), runner (local or swarm), placement (Swarm constraints, - clears)"
    )
    pset.add_argument("key", help=keys)
    pset.add_argument("value", nargs="+")


def add_launch_and_poll(sub: Any, add: Add, lang: str) -> None:
    """Register `launch` and `poll` on the main parser."""
    launch = add(sub, "launch", cmd_launch, N_("run a third-party repository (test or prod)"))
    launch.add_argument("url")
    launch.add_argument("--name", help=t(lang, "project name (default: from the URL)"))
    launch.add_argument("--path", help=t(lang, "folder (default: $DATA/apps/NAME)"))
    launch.add_argument("--branch", help=t(lang, "branch (default: main, else master)"))
    launch.add_argument("--entry", default="main.py", help=t(lang, "entry file (default main.py)"))
    launch.add_argument(
        "--env",
        action="append",
        metavar="KEY=VALUE",
        help=t(lang, "a prod variable (the test slot sees it too); repeat for more"),
    )
    launch.add_argument(
        "--test-env",
        action="append",
        metavar="KEY=VALUE",
        help=t(lang, "a variable of the test slot only; repeat for more"),
    )
    launch.add_argument("--poll", help=t(lang, "poll period: off, 1m ... 7d (default off)"))
    launch.add_argument(
        "--test-duration", help=t(lang, "how long a test run lasts, 5s to 7d (default 60s)")
    )
    launch.add_argument(
        "--output", choices=("on", "off"), help=t(lang, "command output to the chat (default on)")
    )
    launch.add_argument("--test", action="store_true", help=t(lang, "in the test slot, not prod"))
    take_over_flag(launch, lang)
    launch.add_argument("--detach", action="store_true", help=t(lang, "return once it started"))
    poll = add(sub, "poll", cmd_poll, N_("set how often to poll: off, 1m, 5m, 15m, 1h, 6h, 24h"))
    poll.add_argument("name")
    poll.add_argument("interval")
