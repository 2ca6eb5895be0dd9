"""CLI commands that hand operations to `serve` and follow them, plus `history`.

Operations run in serve (the one executor): these commands send a request over the local
socket, print each step as it happens, and exit with the operation's result: 0 when it
succeeded, 1 when it failed, 2 for bad input. `--detach` returns once it has started.
While serve is down only add, launch and remove run (in this process; service/boot.py).
Steps and results come as Texts (`msg`) and are printed in the CLI's language; lines of
output (git's, pip's, the app's) as they are.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from controlplane.domain.kinds import ProgressKind
from controlplane.domain.units import MIB
from controlplane.errors import ControlPlaneError, ValidationError
from controlplane.i18n import DEFAULT, N_, Text, gettext, t, tr, verbatim
from controlplane.settings import Settings

OnEvent = Callable[[dict[str, Any]], None]
RELEASE_MARKS = {"ready": N_("built"), "failed": N_("failed"), "building": N_("building")}
VERDICT_MARKS = {"passed": N_("test passed"), "failed": N_("test failed")}


def message(data: dict[str, Any]) -> Text:
    """The Text of an event or a result from serve (`msg`), else its plain `text`."""
    msg = data.get("msg")
    return Text.from_dict(msg) if isinstance(msg, dict) else verbatim(str(data.get("text", "")))


def shower(lang: str) -> OnEvent:
    """Print each progress event: a step in `lang`, a line of output as it is."""

    def show(event: dict[str, Any]) -> None:
        if event.get("kind") == ProgressKind.LOG:
            print(f"  {event.get('text', '')}", flush=True)
        else:
            print(f"• {message(event).render(lang)}", flush=True)

    return show


def follow(
    settings: Settings,
    op: str,
    project: str | None,
    args: dict[str, Any],
    *,
    detach: bool = False,
    lang: str = DEFAULT,
) -> int:
    """Send a request to serve, print its progress, return the exit status."""
    from controlplane.cli.main import error_line
    from controlplane.service import boot

    result = boot.ask(settings, op, project, args, follow=not detach, on_event=shower(lang))
    if result.get("ok"):
        print(message(result).render(lang))
        return 0
    print(error_line(lang, message(result)), file=sys.stderr)
    return 1


def run(settings: Settings, op: str, project: str, args: dict[str, Any]) -> Text:
    """Run an operation to its end without printing its progress (serve's, or here while
    serve is down when it may run here): its result, or ControlPlaneError."""
    from controlplane.service import boot

    result = boot.ask(settings, op, project, args)
    if not result.get("ok"):
        raise ControlPlaneError(message(result))
    return message(result)


def cmd_deploy(settings: Settings, args: argparse.Namespace) -> int:
    """deploy NAME [--commit N] [--test [--duration S]]."""
    if args.test:
        extra = {"commit": args.commit, "duration": args.duration}
        return follow(settings, "test", args.name, extra, detach=args.detach, lang=args.lang)
    if args.duration is not None:
        raise ValidationError("--duration", args.duration, tr("it goes with --test"))
    extra = {"commit": args.commit}
    return follow(settings, "deploy", args.name, extra, detach=args.detach, lang=args.lang)


def cmd_promote(settings: Settings, args: argparse.Namespace) -> int:
    extra = {"force": args.force}
    return follow(settings, "promote", args.name, extra, detach=args.detach, lang=args.lang)


def cmd_discard(settings: Settings, args: argparse.Namespace) -> int:
    return follow(settings, "discard", args.name, {}, detach=args.detach, lang=args.lang)


def cmd_rollback(settings: Settings, args: argparse.Namespace) -> int:
    extra = {"commit": args.commit}
    return follow(settings, "rollback", args.name, extra, detach=args.detach, lang=args.lang)


def cmd_slot(settings: Settings, args: argparse.Namespace) -> int:
    """start | stop | restart NAME [--test]."""
    slot = "test" if args.test else "prod"
    extra = {"slot": slot}
    return follow(settings, args.command, args.name, extra, detach=args.detach, lang=args.lang)


def cmd_cancel(settings: Settings, args: argparse.Namespace) -> int:
    return follow(settings, "cancel", args.name, {}, lang=args.lang)


def cmd_extend(settings: Settings, args: argparse.Namespace) -> int:
    return follow(settings, "extend", args.name, {"seconds": args.seconds}, lang=args.lang)


def history_rows(settings: Settings, name: str) -> list[dict[str, Any]]:
    """Numbered commits, newest first, with what became of each."""
    from controlplane.service.facade import Service

    return Service.open(settings).query.history(name)


def describe_row(row: dict[str, Any], lang: str = DEFAULT) -> str:
    """One numbered commit: number, hash, date, author, subject, and what became of it."""
    marks = [t(lang, "live {slots}", slots="+".join(row["live"]))] if row["live"] else []
    if row.get("stopped"):
        marks.append(t(lang, "{slots} stopped", slots="+".join(row["stopped"])))
    if row["release"] in RELEASE_MARKS:
        marks.append(gettext(lang, RELEASE_MARKS[row["release"]]))
    if row["verdict"] in VERDICT_MARKS:
        marks.append(gettext(lang, VERDICT_MARKS[row["verdict"]]))
    if row["size"]:
        marks.append(t(lang, "{n} MB", n=round(row["size"] / MIB)))
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["date"]))
    return (
        f"#{row['n']:<4} {row['sha'][:7]} {when} {row['author'][:16]:<16} "
        f"{row['subject'][:50]}" + (f"  [{', '.join(marks)}]" if marks else "")
    )


HISTORY_PAGE = 50  # commits a page of `history` shows


def cmd_history(settings: Settings, args: argparse.Namespace) -> int:
    """The newest page of commits (or --page N, or --all); --json prints every row
    unless --page names one."""
    from controlplane.domain.history import paged

    rows = history_rows(settings, args.name)
    if args.page is not None or not (args.all or args.json):
        page = paged(len(rows), (args.page or 1) - 1, HISTORY_PAGE)
        shown = rows[page.start : page.stop]
    else:
        shown, page = rows, None
    if args.json:
        print(json.dumps(shown, indent=2))
        return 0
    none = t(args.lang, "no numbered commits for {name}", name=args.name)
    print("\n".join(describe_row(r, args.lang) for r in shown) or none)
    if page is not None and page.pages > 1:
        more = t(
            args.lang,
            "commits {first}–{last} of {total}, page {page} of {pages}: --page N for "
            "another page, --all for every commit",
            first=page.start + 1,
            last=page.stop,
            total=page.total,
            page=page.page + 1,
            pages=page.pages,
        )
        print(more)
    return 0


def add_op_commands(sub: Any, add: Any, lang: str = DEFAULT) -> None:
    """Register the operation commands on the main parser (`add` is main._adder's)."""

    def detach(parser: Any) -> Any:
        parser.add_argument("--detach", action="store_true", help=t(lang, "return once it started"))
        return parser

    deploy = detach(
        add(sub, "deploy", cmd_deploy, N_("build and deploy a commit (prod, or --test)"))
    )
    deploy.add_argument("name")
    deploy.add_argument(
        "--commit", help=t(lang, "commit number or SHA prefix (default: the branch head)")
    )
    deploy.add_argument("--test", action="store_true", help=t(lang, "run it in the test slot"))
    deploy.add_argument(
        "--duration", help=t(lang, "test run length: 90, 30s, 5m (default: project's)")
    )
    promote = detach(add(sub, "promote", cmd_promote, N_("put the tested release live in prod")))
    promote.add_argument("name")
    promote.add_argument("--force", action="store_true", help=t(lang, "also when its test failed"))
    discard = add(sub, "discard", cmd_discard, N_("stop the test slot and clear it"))
    detach(discard).add_argument("name")
    rollback = detach(add(sub, "rollback", cmd_rollback, N_("switch prod to commit N")))
    rollback.add_argument("name")
    rollback.add_argument("commit", help=t(lang, "commit number or SHA prefix"))
    for verb, help_msgid in SLOT_VERBS:
        parser = detach(add(sub, verb, cmd_slot, help_msgid))
        parser.add_argument("name")
        parser.add_argument("--test", action="store_true", help=t(lang, "the test slot"))
    cancel = add(sub, "cancel", cmd_cancel, N_("cancel the operation running for a project"))
    cancel.add_argument("name")
    extend = add(sub, "extend", cmd_extend, N_("give a running test more time"))
    extend.add_argument("name")
    extend.add_argument("seconds", help="90, 30s, 5m")
    history = add(
        sub, "history", cmd_history, N_("numbered commits and their releases"), json_flag=True
    )
    history.add_argument("name")
    shown = history.add_mutually_exclusive_group()
    shown.add_argument(
        "--page",
        type=int,
        help=t(lang, "page N of {size} commits, newest first (default: 1)", size=HISTORY_PAGE),
    )
    shown.add_argument("--all", action="store_true", help=t(lang, "every numbered commit"))


SLOT_VERBS = (
    ("start", N_("start a project's prod slot (or --test)")),
    ("stop", N_("stop a project's prod slot (or --test)")),
    ("restart", N_("restart a project's prod slot (or --test)")),
)
