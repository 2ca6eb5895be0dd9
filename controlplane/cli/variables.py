"""`env set|unset|mark|list`: a project's variables from the command line.

A variable is a secret (masked in `list`, in the chat and in the logs) or plain (shown as it
is): by its name and value unless marked with `--secret` / `--plain` (`env mark` changes
the mark, the value stays). Nothing restarts unless asked: `set` and `unset` say when the
change applies, and `--restart` restarts the slot now (prod with the health window, as
after a deploy). A variable only the build reads (PIP_*, UV_*) never restarts the app.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from controlplane.cli.projects import emit, service
from controlplane.i18n import N_, t
from controlplane.settings import Settings

if TYPE_CHECKING:
    from controlplane.cli.main import Add
    from controlplane.service.configure import VariableChange


def _slot(args: argparse.Namespace) -> str:
    return "test" if args.test else "prod"


def _mark(args: argparse.Namespace) -> bool | None:
    return True if args.secret else False if args.plain else None


def cmd_env_set(settings: Settings, args: argparse.Namespace) -> int:
    """Set variables (marked when asked); say when they apply, restart when asked."""
    change = service(settings).config.env_set(
        args.name, _slot(args), args.assignments, secret=_mark(args)
    )
    shown = ", ".join(change.keys)
    print(
        t(args.lang, "set {names} for {name} {slot}", names=shown, name=args.name, slot=_slot(args))
    )
    return applies(settings, args, change)


def cmd_env_unset(settings: Settings, args: argparse.Namespace) -> int:
    """Remove variables; say when that applies, restart when asked."""
    change = service(settings).config.env_unset(args.name, _slot(args), args.keys)
    shown = ", ".join(change.keys)
    print(
        t(
            args.lang,
            "removed {names} from {name} {slot}",
            names=shown,
            name=args.name,
            slot=_slot(args),
        )
    )
    return applies(settings, args, change)


def applies(settings: Settings, args: argparse.Namespace, change: VariableChange) -> int:
    """The line saying when a change applies; with --restart, the restart (followed)."""
    lang, name, slot = args.lang, change.name, change.slot
    if change.build_only:
        print(t(lang, "only the build reads them: the next build uses them; nothing restarted"))
        return 0
    if not change.running:
        print(
            t(
                lang,
                "{name} {slot} is not running: the change applies when it starts",
                name=name,
                slot=slot,
            )
        )
        return 0
    if not args.restart:
        print(
            t(
                lang,
                "{name} {slot} keeps the old values until its next restart "
                "(`controlplane restart {name}`, or --restart next time)",
                name=name,
                slot=slot,
            )
        )
        return 0
    from controlplane.cli.ops import follow

    return follow(settings, "restart", name, {"slot": slot, "watch": slot == "prod"}, lang=lang)


def cmd_env_mark(settings: Settings, args: argparse.Namespace) -> int:
    """Mark variables secret, plain, or back to the default; the values stay."""
    secret = _mark(args)
    names = ", ".join(service(settings).config.env_mark(args.name, _slot(args), args.keys, secret))
    what = {True: N_("secret"), False: N_("plain"), None: N_("as their names say")}[secret]
    print(
        t(
            args.lang,
            "{names} of {name} {slot}: {what}",
            names=names,
            name=args.name,
            slot=_slot(args),
            what=t(args.lang, what),
        )
    )
    return 0


def cmd_env_list(settings: Settings, args: argparse.Namespace) -> int:
    """List variables: plain values as they are, secrets masked (unless --reveal)."""
    config = service(settings).config
    variables = config.env_variables(args.name, _slot(args))
    rows = dict(config.env_list(args.name, _slot(args), reveal=args.reveal))
    none = t(args.lang, "no variables for {name} {slot}", name=args.name, slot=_slot(args))
    secret = t(args.lang, "(secret)")
    lines = [f"{v.name}={rows[v.name]}" + (f"  {secret}" if v.secret else "") for v in variables]
    return emit(args, rows, "\n".join(lines) or none)


def add_env_commands(sub: Any, add: Add, lang: str) -> None:
    """Register `env` and its actions on the main parser."""
    env = sub.add_parser(
        "env", help=t(lang, "config variables of a project (prod, or test with --test)")
    )
    esub = env.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions = (
        ("set", cmd_env_set, N_("set variables: KEY=VALUE ..."), "KEY=VALUE"),
        ("unset", cmd_env_unset, N_("remove variables: KEY ..."), "KEY"),
        ("mark", cmd_env_mark, N_("mark variables secret or plain: KEY ..."), "KEY"),
        ("list", cmd_env_list, N_("list variables (secrets masked)"), None),
    )
    for name, handler, help_text, metavar in actions:
        parser = add(esub, name, handler, help_text, json_flag=name == "list")
        parser.add_argument("name")
        parser.add_argument(
            "--test", action="store_true", help=t(lang, "the test slot's variables")
        )
        if metavar is None:
            parser.add_argument(
                "--reveal", action="store_true", help=t(lang, "show values (on the box)")
            )
            continue
        parser.add_argument("assignments" if name == "set" else "keys", nargs="+", metavar=metavar)
        if name in ("set", "mark"):
            _mark_options(parser, lang, default=name == "mark")
        if name in ("set", "unset"):
            parser.add_argument(
                "--restart",
                action="store_true",
                help=t(
                    lang, "restart the slot now (default: the change applies at its next restart)"
                ),
            )


def _mark_options(parser: argparse.ArgumentParser, lang: str, *, default: bool) -> None:
    group = parser.add_mutually_exclusive_group(required=default)
    group.add_argument("--secret", action="store_true", help=t(lang, "a secret: masked everywhere"))
    group.add_argument("--plain", action="store_true", help=t(lang, "plain: shown as it is"))
    if default:
        group.add_argument(
            "--default",
            action="store_true",
            help=t(
                lang, "as the name and value say (KEY, TOKEN, PASSWORD… or a URL with a password)"
            ),
        )
