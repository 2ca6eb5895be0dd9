"""The `controlplane` command: parses arguments, calls the service facade, prints text.

Reading and configuration commands use the facade on the store directly (`Service.open`),
also while serve is down (cli/projects.py, cli/observe.py); operations go to serve over its
control socket (cli/ops.py). The CLI speaks the locale's language (LANG, LC_MESSAGES ...;
English by default): its help, its output and its errors; `--json` output never changes
with the language. Only this module calls sys.exit. The facade is imported inside the
commands that need it, so that `--help` and a quick command start quickly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from controlplane import __version__
from controlplane.cli.stdlib_texts import use_our_catalog
from controlplane.errors import ControlPlaneError, KeyringError, StoreError, ValidationError
from controlplane.i18n import DEFAULT, N_, Text, gettext, locale_lang, ntr, t, tr
from controlplane.settings import Settings

Handler = Callable[[Settings, argparse.Namespace], int]
Add = Callable[..., Any]  # _adder's add(sub, name, handler, help msgid, json_flag=False)
EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_PIPE = 141  # the reader of stdout left (a closed pipe)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2, like every other bad input."""

    def error(self, message: str) -> Any:
        line = t(
            locale_lang(), "{prog}: error: {message} (see --help)", prog=self.prog, message=message
        )
        self.exit(EXIT_BAD_INPUT, line + "\n")


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
        text = ntr(
            "re-encrypted {n} secret under a new key in {path}",
            "re-encrypted {n} secrets under a new key in {path}",
            rotated.count,
            path=str(settings.key_path),
        )
    else:
        text = ntr(
            "re-encrypted {n} secret under the first key of CONTROLPLANE_KEY; "
            "the older keys there can now be removed",
            "re-encrypted {n} secrets under the first key of CONTROLPLANE_KEY; "
            "the older keys there can now be removed",
            rotated.count,
        )
    print(text.render(args.lang))
    return 0


def cmd_store_restore(settings: Settings, args: argparse.Namespace) -> int:
    """Put the last good copy of the store back."""
    from controlplane.service import boot

    backup = boot.restore_store(settings)
    print(t(args.lang, "restored {store} from {backup}", store=settings.store_path, backup=backup))
    return 0


def cmd_store_check(settings: Settings, args: argparse.Namespace) -> int:
    """Read every store file, the schema and the key (nothing written): OK, or what is
    wrong and the way out."""
    from controlplane.service.storecheck import check

    checked = check(settings)
    if checked.problems:
        print(problem_lines(args.lang, checked.problems, settings))
        return EXIT_FAILED
    if not checked.files:
        print(
            t(args.lang, "there is no store yet in {data}: serve makes one", data=settings.data_dir)
        )
        return 0
    text = ntr(
        "the store is readable: {n} file, schema {schema}; the key in {origin} opens it",
        "the store is readable: {n} files, schema {schema}; the key in {origin} opens it",
        checked.files,
        schema=checked.schema,
        origin=checked.origin,
    )
    print(text.render(args.lang))
    return 0


def problem_lines(lang: str, problems: Sequence[Any], settings: Settings) -> str:
    """Each reason the store cannot be opened and its way out (service/storecheck.py),
    and whether serve waits in safe mode meanwhile."""
    from controlplane.service.safemode import read_state

    lines = []
    for problem in problems:
        lines.append(error_line(lang, problem.what))
        lines.append(t(lang, "  way out: {way_out}", way_out=problem.way_out))
    if read_state(settings) is not None:
        lines.append(
            t(
                lang,
                "serve is in safe mode: the apps keep running as they were, nothing is "
                "changed, and it goes on by itself once the store opens",
            )
        )
    return "\n".join(lines)


def store_failure(lang: str, error: ControlPlaneError) -> str:
    """A command that could not open the store: what is wrong and the way out (the
    error's own line when the store reads after all)."""
    from controlplane.service.storecheck import diagnose

    try:
        settings = Settings.from_env()
        problems = diagnose(settings)
    except (ControlPlaneError, OSError):
        problems = []
    if not problems:
        return error_line(lang, error.text)
    return problem_lines(lang, problems, settings)


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
    raise ControlPlaneError(tr("run-slot runs through `python -m controlplane run-slot NAME SLOT`"))


def cmd_events(settings: Settings, args: argparse.Namespace) -> int:
    """supervisord event listener (supervisord runs this)."""
    from controlplane.service import boot

    return boot.events(settings)


# -- parser ----------------------------------------------------------------------------


def _adder(lang: str) -> Add:
    """The function that registers a command, its help (a msgid) shown in `lang`."""

    def add(
        sub: Any, name: str, handler: Handler, help_msgid: str, *, json_flag: bool = False
    ) -> Any:
        shown = gettext(lang, help_msgid)
        parser = sub.add_parser(name, help=shown, description=shown)
        parser.set_defaults(handler=handler)
        if json_flag:
            parser.add_argument(
                "--json", action="store_true", help=t(lang, "print JSON for scripts")
            )
        return parser

    return add


def build_parser(lang: str = DEFAULT) -> Parser:
    """The whole command line; help in `lang`."""
    from controlplane.cli.nodes import add_node_commands
    from controlplane.cli.observe import add_observe_commands
    from controlplane.cli.ops import add_op_commands
    from controlplane.cli.projects import add_launch_and_poll, add_project_commands
    from controlplane.cli.variables import add_env_commands

    parser = Parser(
        prog="controlplane",
        description=t(
            lang, "CI/CD and process manager for Python projects, driven from a Telegram bot."
        ),
    )
    parser.add_argument("--version", action="version", version=f"controlplane {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser
    )
    add = _adder(lang)
    add(sub, "up", cmd_up, N_("render supervisord.conf and run supervisord (the entrypoint)"))
    add(sub, "serve", cmd_serve, N_("run the control plane (supervisord runs it)"))
    slot = add(sub, "run-slot", cmd_run_slot, N_("run a slot's app (supervisord calls this)"))
    slot.add_argument("name")
    slot.add_argument("slot", choices=("prod", "test"))
    add(sub, "events", cmd_events, N_("supervisord event listener (supervisord runs it)"))
    add_project_commands(sub, add, lang)
    add_env_commands(sub, add, lang)
    add_op_commands(sub, add, lang)
    add_launch_and_poll(sub, add, lang)
    add_observe_commands(sub, add, lang)
    add_node_commands(sub, add, lang)
    key = sub.add_parser("key", help=t(lang, "the master key: generate, rotate"))
    ksub = key.add_subparsers(dest="action", required=True, metavar="ACTION")
    add(ksub, "generate", cmd_key_generate, N_("print a new key for CONTROLPLANE_KEY"))
    add(ksub, "rotate", cmd_key_rotate, N_("re-encrypt every secret under a new key"))
    store = sub.add_parser("store", help=t(lang, "the store file"))
    ssub = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    add(ssub, "restore", cmd_store_restore, N_("put the last good copy back (serve stopped)"))
    add(ssub, "check", cmd_store_check, N_("read the store and its key; say what is wrong"))
    return parser


WINDOWS_TEXT = N_(
    "controlplane runs inside its Linux container; on Windows run it with Docker Desktop "
    "(docker compose up -d) and use `docker compose exec controlplane controlplane ...`"
)


def error_line(lang: str, error: Text) -> str:
    """How the CLI reports a failure on stderr."""
    return t(lang, "controlplane: error: {error}", error=error)


def reader_gone() -> int:
    """The reader of our output left (`controlplane status | head`): no traceback, stdout
    pointed at /dev/null so the flush at exit has nowhere to fail; 141 = 128 + SIGPIPE, as
    a shell reports a tool that a closed pipe ended."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `controlplane` command."""
    use_our_catalog()
    lang = locale_lang()
    args = build_parser(lang).parse_args(argv)
    args.lang = lang
    try:
        settings = Settings.from_env()
        if settings.platform.os == "windows":
            print(Text(WINDOWS_TEXT).render(lang), file=sys.stderr)
            return EXIT_FAILED
        handler: Handler = args.handler
        code = handler(settings, args)
        sys.stdout.flush()  # here, so a reader gone is met below and not at exit
        return code
    except BrokenPipeError:
        return reader_gone()
    except ValidationError as exc:
        print(error_line(lang, exc.text), file=sys.stderr)
        return EXIT_BAD_INPUT
    except (StoreError, KeyringError) as exc:
        print(store_failure(lang, exc), file=sys.stderr)
        return EXIT_FAILED
    except ControlPlaneError as exc:
        print(error_line(lang, exc.text), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
