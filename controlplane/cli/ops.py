"""CLI commands that hand operations to `serve` and follow them, plus `history`.

Operations run in serve (the one executor): these commands send a request over the local
socket, print each step as it happens, and exit with the operation's result: 0 when it
succeeded, 1 when it failed, 2 for bad input. `--detach` returns once it has started.
While serve is down only add, launch and remove run (in this process; service/boot.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from controlplane.domain.kinds import ProgressKind
from controlplane.domain.units import megabytes
from controlplane.errors import ControlPlaneError, ValidationError
from controlplane.settings import Settings


def _show(event: dict[str, Any]) -> None:
    text = str(event.get("text", ""))
    print(f"  {text}" if event.get("kind") == ProgressKind.LOG else f"• {text}", flush=True)


def follow(
    settings: Settings, op: str, project: str | None, args: dict[str, Any], *, detach: bool = False
) -> int:
    """Send a request to serve, print its progress, return the exit status."""
    from controlplane.service import boot

    result = boot.ask(settings, op, project, args, follow=not detach, on_event=_show)
    text = str(result.get("text", ""))
    if result.get("ok"):
        print(text)
        return 0
    print(f"controlplane: error: {text}", file=sys.stderr)
    return 1


def run(settings: Settings, op: str, project: str, args: dict[str, Any]) -> str:
    """Run an operation to its end without printing its progress (serve's, or here while
    serve is down when it may run here): its result text, or ControlPlaneError."""
    from controlplane.service import boot

    result = boot.ask(settings, op, project, args)
    if not result.get("ok"):
        raise ControlPlaneError(str(result.get("text", "")))
    return str(result.get("text", ""))


def cmd_deploy(settings: Settings, args: argparse.Namespace) -> int:
    """deploy NAME [--commit N] [--test [--duration S]]."""
    if args.test:
        extra = {"commit": args.commit, "duration": args.duration}
        return follow(settings, "test", args.name, extra, detach=args.detach)
    if args.duration is not None:
        raise ValidationError("--duration", args.duration, "it goes with --test")
    return follow(settings, "deploy", args.name, {"commit": args.commit}, detach=args.detach)


def cmd_promote(settings: Settings, args: argparse.Namespace) -> int:
    return follow(settings, "promote", args.name, {"force": args.force}, detach=args.detach)


def cmd_discard(settings: Settings, args: argparse.Namespace) -> int:
    return follow(settings, "discard", args.name, {}, detach=args.detach)


def cmd_rollback(settings: Settings, args: argparse.Namespace) -> int:
    return follow(settings, "rollback", args.name, {"commit": args.commit}, detach=args.detach)


def cmd_slot(settings: Settings, args: argparse.Namespace) -> int:
    """start | stop | restart NAME [--test]."""
    slot = "test" if args.test else "prod"
    return follow(settings, args.command, args.name, {"slot": slot}, detach=args.detach)


def cmd_cancel(settings: Settings, args: argparse.Namespace) -> int:
    return follow(settings, "cancel", args.name, {})


def cmd_extend(settings: Settings, args: argparse.Namespace) -> int:
    return follow(settings, "extend", args.name, {"seconds": args.seconds})


def history_rows(settings: Settings, name: str) -> list[dict[str, Any]]:
    """Numbered commits, newest first, with what became of each."""
    from controlplane.service.facade import Service

    return Service.open(settings).query.history(name)


def describe_row(row: dict[str, Any]) -> str:
    marks = [f"live {'+'.join(row['live'])}"] if row["live"] else []
    if row["release"] in ("ready", "failed", "building"):
        marks.append("built" if row["release"] == "ready" else row["release"])
    if row["verdict"]:
        marks.append(f"test {row['verdict']}")
    if row["size"]:
        marks.append(megabytes(row["size"]))
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["date"]))
    return (
        f"#{row['n']:<4} {row['sha'][:7]} {when} {row['author'][:16]:<16} "
        f"{row['subject'][:50]}" + (f"  [{', '.join(marks)}]" if marks else "")
    )


def cmd_history(settings: Settings, args: argparse.Namespace) -> int:
    rows = history_rows(settings, args.name)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print("\n".join(describe_row(r) for r in rows) or f"no numbered commits for {args.name}")
    return 0


def add_op_commands(sub: Any, add: Any) -> None:
    """Register the operation commands on the main parser (`add` is cli._add)."""

    def detach(parser: Any) -> Any:
        parser.add_argument("--detach", action="store_true", help="return once it started")
        return parser

    deploy = detach(add(sub, "deploy", cmd_deploy, "build and deploy a commit (prod, or --test)"))
    deploy.add_argument("name")
    deploy.add_argument("--commit", help="commit number or SHA prefix (default: the branch head)")
    deploy.add_argument("--test", action="store_true", help="run it in the test slot")
    deploy.add_argument("--duration", help="test run length: 90, 30s, 5m (default: project's)")
    promote = detach(add(sub, "promote", cmd_promote, "put the tested release live in prod"))
    promote.add_argument("name")
    promote.add_argument("--force", action="store_true", help="also when its test failed")
    detach(add(sub, "discard", cmd_discard, "stop the test slot and clear it")).add_argument("name")
    rollback = detach(add(sub, "rollback", cmd_rollback, "switch prod to commit N"))
    rollback.add_argument("name")
    rollback.add_argument("commit", help="commit number or SHA prefix")
    for verb in ("start", "stop", "restart"):
        parser = detach(add(sub, verb, cmd_slot, f"{verb} a project's prod slot (or --test)"))
        parser.add_argument("name")
        parser.add_argument("--test", action="store_true", help="the test slot")
    add(sub, "cancel", cmd_cancel, "cancel the operation running for a project").add_argument(
        "name"
    )
    extend = add(sub, "extend", cmd_extend, "give a running test more time")
    extend.add_argument("name")
    extend.add_argument("seconds", help="90, 30s, 5m")
    add(
        sub, "history", cmd_history, "numbered commits and their releases", json_flag=True
    ).add_argument("name")
