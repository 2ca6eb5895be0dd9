"""CLI commands that look: `status [NAME]`, `logs NAME` (`--build N`, `--sizes`), `load`,
`health`.

They read through the service facade (the store, supervisord and the files; no `serve`
needed) and print the same texts the bot sends, in the CLI's language (`args.lang`);
`--json` is the same in every language. The facade is imported inside the commands, so
`controlplane --help` starts fast.
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controlplane.domain.models import parse_duration, validate_name
from controlplane.errors import ValidationError
from controlplane.i18n import DEFAULT, N_, render, t, tr
from controlplane.settings import Settings

if TYPE_CHECKING:
    from controlplane.service.facade import Service


def _service(settings: Settings) -> Service:
    from controlplane.service.facade import Service  # see the module docstring

    return Service.open(settings)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    """status [NAME]: one project in full, or every project one line each."""
    from controlplane import __version__

    query = _service(settings).query
    lang = args.lang
    statuses = query.statuses([args.name] if args.name else None)
    if args.name:
        if args.json:
            _print_json(statuses[0].to_dict())
        else:
            print(query.describe(statuses[0], lang))
        return 0
    from controlplane.service.botlife import health_text, read_health

    bot = read_health(settings)
    if args.json:
        _print_json(
            {
                "platform": settings.platform.__dict__,
                "data_dir": str(settings.data_dir),
                "bot": bot.to_dict(),
                "projects": [s.to_dict() for s in statuses],
            }
        )
        return 0
    from controlplane.cli.projects import table

    platform = render(settings.platform.describe(), lang)
    print(t(lang, "controlplane {version} on {platform}", version=__version__, platform=platform))
    rows = [
        (t(lang, "data dir"), str(settings.data_dir)),
        (t(lang, "bot"), health_text(bot).render(lang)),
        (t(lang, "projects"), str(len(statuses))),
    ]
    print(table(rows, width=14))
    if statuses:
        print(query.overview_text(lang, statuses))
    return 0


def cmd_health(settings: Settings, args: argparse.Namespace) -> int:
    """health: the bot's state in one line; exit 1 while a bot with a token is down (the
    image's healthcheck runs it), and while serve is in safe mode (what is wrong and the
    way out follow)."""
    from controlplane.service.botlife import health_text, read_health
    from controlplane.service.safemode import read_state

    bot = read_health(settings)
    print(t(args.lang, "bot: {state}", state=health_text(bot).render(args.lang)))
    safe = read_state(settings)
    if safe is not None:
        from controlplane.cli.main import problem_lines

        print(problem_lines(args.lang, safe.problems, settings))
    return 1 if bot.down or bot.state == "stopped" or safe is not None else 0


def _which(args: argparse.Namespace) -> str:
    return "stderr" if args.stderr else "stdout" if args.stdout else "both"


def cmd_logs(settings: Settings, args: argparse.Namespace) -> int:
    """logs NAME [--test] [-n 30] [--stderr|--stdout] [--follow [--for S]] [--build N];
    logs --sizes."""
    if args.sizes:
        return _sizes(settings, args)
    if args.name is None:
        raise ValidationError(
            tr("project name"), "", tr("name a project, or give --sizes for every log's size")
        )
    name = validate_name(args.name)
    seconds = None if args.seconds is None else parse_duration(args.seconds, field_name="--for")
    if seconds is not None and not args.follow:
        raise ValidationError("--for", args.seconds, tr("it goes with --follow"))
    svc = _service(settings)
    query = svc.query
    query.project(name)
    if args.lines < 0:
        raise ValidationError("-n", str(args.lines), tr("give a number of lines, 0 or more"))
    if args.build is not None:
        return _build(svc, name, args)
    slot = "test" if args.test else "prod"
    logs = query.logs(name, slot, args.lines, _which(args))
    if args.json and not args.follow:
        _print_json(logs.to_dict())
        return 0
    print(query.logs_text(logs, _which(args), args.lang), flush=True)
    if args.follow:
        paths = (logs.stdout_path, logs.stderr_path)
        _follow(svc, paths, _which(args), seconds)
    return 0


def _build(svc: Service, name: str, args: argparse.Namespace) -> int:
    """logs NAME --build N: the last lines of commit #N's newest build log."""
    if args.build < 1:
        raise ValidationError("--build", str(args.build), tr("give a commit number, 1 or more"))
    if args.follow or args.test or args.stderr or args.stdout:
        raise ValidationError("--build", str(args.build), tr("it goes with -n and --json only"))
    found = svc.query.build_log(name, args.build, args.lines)
    if args.json:
        _print_json(found.to_dict())
    else:
        print(svc.query.build_log_text(found, args.lang))
    return 0


def _sizes(settings: Settings, args: argparse.Namespace) -> int:
    """logs --sizes: every log with its size, its limit and the backups kept."""
    query = _service(settings).query
    rows = query.log_sizes()
    if args.json:
        _print_json([row.to_dict() for row in rows])
    else:
        print(query.log_sizes_text(rows, args.lang))
    return 0


def _follow(svc: Service, paths: tuple[str, str], which: str, seconds: float | None) -> None:
    """Print new lines as they come (stderr's marked 'err|' when both are shown)."""
    out_path, err_path = paths
    streams = ((out_path, "stdout"), (err_path, "stderr"))
    files = [Path(p) for p, stream in streams if which in (stream, "both")]
    stop = threading.Event()
    if seconds is not None:
        timer = threading.Timer(seconds, stop.set)
        timer.daemon = True
        timer.start()

    def show(path: Path, lines: list[str]) -> None:
        mark = "err| " if which == "both" and str(path) == err_path else ""
        print("\n".join(mark + line for line in lines), flush=True)

    try:
        svc.query.follow_logs(files, stop, show)
    except KeyboardInterrupt:
        stop.set()


def cmd_load(settings: Settings, args: argparse.Namespace) -> int:
    """load: CPU, memory, disk, per-project figures, and Docker's when its socket is there."""
    report = _service(settings).query.load(hour=True)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.text(args.lang))
    return 0


def add_observe_commands(sub: Any, add: Any, lang: str = DEFAULT) -> None:
    """Register status, logs and load on the main parser (`add` is main._adder's)."""
    status = add(
        sub, "status", cmd_status, N_("status of every project, or of one"), json_flag=True
    )
    status.add_argument("name", nargs="?", help=t(lang, "a project (default: an overview of all)"))
    logs = add(
        sub, "logs", cmd_logs, N_("last lines of a slot's stdout and stderr"), json_flag=True
    )
    logs.add_argument("name", nargs="?")
    logs.add_argument("--test", action="store_true", help=t(lang, "the test slot (default prod)"))
    logs.add_argument("-n", dest="lines", type=int, default=30, help=t(lang, "lines (default 30)"))
    streams = logs.add_mutually_exclusive_group()
    streams.add_argument("--stderr", action="store_true", help=t(lang, "stderr only"))
    streams.add_argument("--stdout", action="store_true", help=t(lang, "stdout only"))
    logs.add_argument(
        "--follow", "-f", action="store_true", help=t(lang, "print new lines as they come")
    )
    logs.add_argument("--for", dest="seconds", help=t(lang, "stop following after 30, 90s, 5m"))
    logs.add_argument(
        "--build",
        type=int,
        metavar="N",
        help=t(lang, "the build log of commit #N (its last build)"),
    )
    logs.add_argument(
        "--sizes",
        action="store_true",
        help=t(lang, "every log's size, where it rotates and the backups kept"),
    )
    add(
        sub,
        "load",
        cmd_load,
        N_("CPU, memory, disk and per-project use of the container"),
        json_flag=True,
    )
    add(sub, "health", cmd_health, N_("the bot's state; exit status 1 while it is down"))
