"""Commands and buttons: each handler answers at once; long work runs as a task.

Callback data is short: a prefix and the project name (and a number or slot), always
within Telegram's 64 bytes; a confirmation's Yes also carries a single-use token
(confirm.py). Buttons are checked again on every press (the gate runs for every update),
and a stale one (a removed project, a finished test, a used confirmation) gets a clear
toast. 👁 Follow opens a live view run by a task per chat (follows.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import CallbackQuery, InlineKeyboardMarkup, InputFile, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from controlplane.bot import confirm, follows, screens
from controlplane.bot.context import Deps, blocking, chat_of, deps
from controlplane.bot.follows import FOLLOW_SECONDS
from controlplane.bot.progress import follow
from controlplane.bot.render import fit, number, parts, pre
from controlplane.bot.texts import t
from controlplane.domain.models import format_interval
from controlplane.errors import ControlPlaneError, NotFound
from controlplane.service import ops
from controlplane.service.executor import Busy

logger = logging.getLogger(__name__)

Ctx = ContextTypes.DEFAULT_TYPE
LOG_LINES = 30
LOG_FILE_MAX = 20 * 2**20


# -- helpers ---------------------------------------------------------------------------


async def show(update: Update, text: str, markup: Any = None) -> None:
    """Edit the pressed message in place, or send a new one for a command."""
    query = update.callback_query
    if query is not None and query.message is not None:
        try:
            await query.edit_message_text(fit(text), parse_mode="HTML", reply_markup=markup)
            return
        except BadRequest as exc:
            if "not modified" in str(exc):
                return
            if "can't be edited" not in str(exc) and "not found" not in str(exc):
                raise
    chat = update.effective_chat
    assert chat is not None
    await chat.send_message(fit(text), parse_mode="HTML", reply_markup=markup)


def start_op(context: Ctx, update: Update, op: str, name: str, args: dict[str, Any]) -> str:
    """Submit an operation and follow it in its own message; returns a toast text."""
    d = deps(context)
    lang = d.lang(chat_of(update))
    try:
        operation = d.service.submit(op, name, args)
    except Busy as exc:
        return t(lang, "toast.busy", text=str(exc))
    context.application.create_task(
        follow(context.bot, d, chat_of(update), operation), name=f"follow-{operation.id}"
    )
    return t(lang, "toast.started")


async def ask(
    update: Update, context: Ctx, text: str, yes: tuple[object, ...], no: tuple[object, ...]
) -> None:
    """A confirmation screen whose Yes acts once (a token in its data, see confirm.py)."""
    lang = deps(context).lang(chat_of(update))
    once = confirm.registry(context.application.bot_data).issue(chat_of(update), yes)
    await show(update, *screens.confirm(lang, text, once, no))


async def project_or_toast(query: CallbackQuery, d: Deps, lang: str, name: str) -> Any:
    try:
        return await blocking(d.store.get_project, name)
    except (NotFound, ControlPlaneError):
        await query.answer(t(lang, "stale.project"), show_alert=False)
        return None


# -- commands --------------------------------------------------------------------------


async def cmd_start(update: Update, context: Ctx) -> None:
    """Main menu."""
    text, markup = screens.main_menu(deps(context).lang(chat_of(update)))
    await show(update, text, markup)


async def cmd_help(update: Update, context: Ctx) -> None:
    """The list of commands."""
    await show(update, t(deps(context).lang(chat_of(update)), "help"))


async def cmd_projects(update: Update, context: Ctx) -> None:
    """The projects with a state icon each."""
    await screen_projects(update, context)


async def with_name(
    update: Update, context: Ctx, usage: str, then: Callable[[str, list[str]], Awaitable[None]]
) -> None:
    args = context.args or []
    lang = deps(context).lang(chat_of(update))
    if not args:
        await show(update, t(lang, "usage", usage=usage))
        return
    try:
        await blocking(deps(context).store.get_project, args[0])
    except ControlPlaneError as exc:
        await show(update, t(lang, "bad", reason=str(exc)))
        return
    await then(args[0], args[1:])


async def cmd_status(update: Update, context: Ctx) -> None:
    """/status NAME; /status alone: every project, one line each."""
    if not context.args:
        d = deps(context)

        def overview() -> str:
            from controlplane.observe.status import format_overview, gather

            return format_overview(gather(d.settings, d.store), d.lang(chat_of(update)))

        await show(update, pre((await blocking(overview)).splitlines(), budget=3900))
        return
    await with_name(
        update, context, "/status NAME", lambda name, _rest: screen_status(update, context, name)
    )


async def cmd_logs(update: Update, context: Ctx) -> None:
    """/logs NAME."""
    await with_name(
        update,
        context,
        "/logs NAME",
        lambda name, _rest: screen_logs(update, context, name, "prod"),
    )


async def cmd_deploy(update: Update, context: Ctx) -> None:
    """/deploy NAME: asks to confirm."""
    lang = deps(context).lang(chat_of(update))

    async def then(name: str, _rest: list[str]) -> None:
        await ask(update, context, t(lang, "confirm.deploy", name=name), ("dp!", name), ("p", name))

    await with_name(update, context, "/deploy NAME", then)


async def cmd_test(update: Update, context: Ctx) -> None:
    """/test NAME [SECONDS]."""
    lang = deps(context).lang(chat_of(update))

    async def then(name: str, rest: list[str]) -> None:
        args = {"duration": rest[0]} if rest else {}
        try:
            text = start_op(context, update, "test", name, args)
        except ControlPlaneError as exc:
            text = str(exc)
        await show(
            update, t(lang, "bad", reason=text) if text != t(lang, "toast.started") else text
        )

    await with_name(update, context, "/test NAME [SECONDS]", then)


async def cmd_promote(update: Update, context: Ctx) -> None:
    """/promote NAME: asks to confirm, showing which variables differ."""
    await with_name(
        update,
        context,
        "/promote NAME",
        lambda name, _rest: screen_confirm_promote(update, context, name),
    )


async def cmd_rollback(update: Update, context: Ctx) -> None:
    """/rollback NAME N: asks to confirm."""
    lang = deps(context).lang(chat_of(update))

    async def then(name: str, rest: list[str]) -> None:
        if not rest or number(rest[0].lstrip("#")) is None:
            await show(update, t(lang, "usage", usage="/rollback NAME N"))
            return
        n = int(rest[0].lstrip("#"))
        text = t(lang, "confirm.rollback", name=name, n=n)
        await ask(update, context, text, ("rb!", name, n), ("p", name))

    await with_name(update, context, "/rollback NAME N", then)


async def cmd_load(update: Update, context: Ctx) -> None:
    """/load."""
    await screen_load(update, context)


# -- screens with data -----------------------------------------------------------------


def _prod_states(d: Deps) -> dict[str, str]:
    from controlplane.adapters.supervisor.client import Supervisor, parse_program

    client = Supervisor(d.settings, timeout=5.0)
    try:
        infos = client.all_info()
    except ControlPlaneError:
        return {}
    finally:
        client.close()
    states = {}
    for info in infos:
        parsed = parse_program(info.name)
        if parsed and parsed[1] == "prod":
            states[parsed[0]] = info.state
    return states


async def screen_projects(update: Update, context: Ctx) -> None:
    d = deps(context)

    def gather() -> list[Any]:
        states = _prod_states(d)
        return [(p, d.store.state(p.name), states.get(p.name)) for p in d.store.list_projects()]

    await show(update, *screens.projects_list(d.lang(chat_of(update)), await blocking(gather)))


async def screen_project(update: Update, context: Ctx, name: str) -> None:
    d = deps(context)
    project = await blocking(d.store.get_project, name)
    state = await blocking(d.store.state, name)
    await show(update, *screens.project_menu(d.lang(chat_of(update)), project, state))


def status_text(d: Deps, name: str, lang: str) -> str:
    """A project's state, plain text (escaped by the caller)."""
    from controlplane.observe.status import format_status, project_status

    return str(format_status(project_status(d.settings, d.store, name), lang))


async def screen_status(update: Update, context: Ctx, name: str) -> None:
    d = deps(context)
    lang = d.lang(chat_of(update))
    text = await blocking(status_text, d, name, lang)
    await show(
        update,
        t(lang, "status.title", name=name) + "\n" + pre(text.splitlines(), budget=3800),
        screens.back_to(lang, name),
    )


def log_tail(d: Deps, name: str, slot: str, n: int = LOG_LINES) -> list[str]:
    """The slot's last lines, stdout and stderr told apart, secrets removed."""
    from controlplane.observe.logs import format_logs, slot_tail

    logs = slot_tail(d.settings, name, slot, n)
    if not logs.stdout and not logs.stderr:
        return []
    return d.redactor()(format_logs(logs)).splitlines()


async def screen_logs(update: Update, context: Ctx, name: str, slot: str) -> None:
    d = deps(context)
    lang = d.lang(chat_of(update))
    lines = await blocking(log_tail, d, name, slot)
    title = t(lang, "logs.title" if lines else "logs.empty", name=name, slot=slot, n=len(lines))
    markup = InlineKeyboardMarkup(
        [
            [
                screens.button(t(lang, "btn.follow"), "fl", name, slot, FOLLOW_SECONDS),
                screens.button(t(lang, "btn.logfile"), "lf", name, slot),
            ],
            [screens.button(t(lang, "back"), "p", name)],
        ]
    )
    await show(update, title + "\n" + pre(lines), markup)


async def send_logfile(update: Update, context: Ctx, name: str, slot: str) -> None:
    """The full log (stdout and stderr) as a file, with every secret removed."""
    d = deps(context)

    def read() -> bytes:
        from controlplane.observe.logs import log_file

        chunks = []
        for stream in ("stdout", "stderr"):
            path = log_file(d.settings, name, slot, stream)
            if path.exists():
                with path.open("rb") as handle:
                    handle.seek(max(0, path.stat().st_size - LOG_FILE_MAX // 2))
                    chunks.append(f"==> {stream} <==\n".encode() + handle.read())
        text = b"\n".join(chunks).decode("utf-8", "replace")
        return d.redactor()(text).encode()

    data = await blocking(read)
    chat = update.effective_chat
    assert chat is not None
    if not data:
        await chat.send_message(t(d.lang(chat.id), "nothing"))
        return
    await chat.send_document(InputFile(data, filename=f"{name}-{slot}.log"))


async def screen_config(update: Update, context: Ctx, name: str, slot: str) -> None:
    d = deps(context)
    shown = await blocking(ops.env_list, d.store, name, slot)
    await show(update, *screens.config(d.lang(chat_of(update)), name, slot, shown))


def variables_diff(d: Deps, name: str) -> list[str]:
    """Names of the variables whose values differ between the test and prod slots."""
    prod, test = d.store.slot_env(name, "prod"), d.store.slot_env(name, "test")
    return sorted(k for k in set(prod) | set(test) if prod.get(k) != test.get(k))


async def screen_confirm_promote(update: Update, context: Ctx, name: str) -> None:
    d = deps(context)
    lang = d.lang(chat_of(update))
    state = await blocking(d.store.state, name)
    if state.test is None:
        await show(update, t(lang, "bad", reason=f"{name}: no tested release to promote"))
        return
    keys = await blocking(variables_diff, d, name)
    diff = t(lang, "diff.some", keys=", ".join(keys)) if keys else t(lang, "diff.none")
    text = t(lang, "confirm.promote", name=name, n=state.test, diff="") + diff
    await ask(update, context, text, ("pr!", name), ("p", name))


def load_text(d: Deps) -> str:
    from controlplane.observe.load import format_load, measure

    return str(format_load(measure(d.settings)))


async def screen_load(update: Update, context: Ctx) -> None:
    d = deps(context)
    text = await blocking(load_text, d)
    markup = InlineKeyboardMarkup([[screens.button(t(d.lang(chat_of(update)), "back"), "m")]])
    await show(update, pre(text.splitlines(), budget=3900), markup)


# -- buttons ---------------------------------------------------------------------------


async def on_button(update: Update, context: Ctx) -> None:
    """Every button press: answered (a toast when needed), then acted on."""
    query = update.callback_query
    assert query is not None and query.data is not None
    d = deps(context)
    lang = d.lang(chat_of(update))
    key, *rest = parts(query.data)
    if key in GLOBAL:
        await query.answer()
        await GLOBAL[key](update, context)
        return
    if key not in PROJECT or not rest:
        await query.answer(t(lang, "stale.button"))
        return
    if key in YES:
        claimed = await claim_yes(update, context, lang)
        if claimed is None:
            return
        rest = claimed
    name = rest[0]
    if await project_or_toast(query, d, lang, name) is None:
        return
    if key in SCREENS:
        # nothing to toast: answer first, so the spinner stops before the screen's reads
        # and its edit round trip; a failure is then shown in the message instead
        await query.answer()
        try:
            await PROJECT[key](update, context, name, rest[1:])
        except ControlPlaneError as exc:
            await show(update, t(lang, "bad", reason=str(exc)), screens.back_to(lang, name))
        return
    try:
        toast = await PROJECT[key](update, context, name, rest[1:])
    except ControlPlaneError as exc:
        await query.answer(str(exc)[:200], show_alert=len(str(exc)) > 60)
        failed = True
    else:
        await query.answer(toast[:200] if toast else None)
        failed = False
    if key in YES and (failed or key not in YES_SHOWS):
        await drop_buttons(query)


async def claim_yes(update: Update, context: Ctx, lang: str) -> list[str] | None:
    """The first press of a confirmation's Yes: its parts after the key, without the token.
    Every other press is refused with a toast, and the buttons are taken off (once)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    # check and mark with no await in between: of concurrent presses only the first acts
    claim = confirm.registry(context.application.bot_data).claim(chat_of(update), query.data)
    if claim.ok:
        return claim.parts[1:]
    await query.answer(t(lang, f"confirm.{claim.reason}"))
    if claim.clear:
        await drop_buttons(query)
    return None


async def drop_buttons(query: CallbackQuery) -> None:
    """Take a used confirmation's buttons off its message (best effort: the claim holds)."""
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except TelegramError as exc:
        logger.info("could not take the buttons off a used confirmation: %s", exc)


async def b_project(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    await screen_project(update, context, name)
    return None


async def b_status(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    await screen_status(update, context, name)
    return None


async def b_logs(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    await screen_logs(update, context, name, slot_of(rest))
    return None


async def b_follow(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """A live view of the slot's log (a task, see follows.py); a second press extends it."""
    seconds = (number(rest[1]) if len(rest) > 1 else None) or FOLLOW_SECONDS
    seconds = min(max(seconds, 2), 600)
    d, chat, slot = deps(context), chat_of(update), slot_of(rest)
    views = follows.registry(context.application.bot_data)
    if views.start(context.application, d, chat, name, slot, seconds):
        return None
    return t(d.lang(chat), "logs.following", name=name, slot=slot, seconds=seconds)


async def b_logfile(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    context.application.create_task(send_logfile(update, context, name, slot_of(rest)))
    return None


def slot_of(rest: list[str]) -> str:
    return "test" if rest and rest[0] == "test" else "prod"


async def b_config(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    await screen_config(update, context, name, slot_of(rest))
    return None


async def b_delete_var(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    slot, key = slot_of(rest), rest[1] if len(rest) > 1 else ""
    with contextlib.suppress(NotFound):  # gone already: the refreshed screen shows it
        await blocking(ops.env_unset, d.store, name, slot, [key])
    await screen_config(update, context, name, slot)
    return t(d.lang(chat_of(update)), "config.deleted", name=name, slot=slot, var=key)


async def b_poll_menu(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    project = await blocking(d.store.get_project, name)
    await show(update, *screens.poll_menu(d.lang(chat_of(update)), project))
    return None


async def b_poll_set(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    seconds = number(rest[0]) if rest else None
    if seconds is None or seconds not in screens.POLL_CHOICES:
        return t(d.lang(chat_of(update)), "stale.button")
    project = await blocking(ops.set_poll, d.store, name, str(seconds))
    await show(update, *screens.poll_menu(d.lang(chat_of(update)), project))
    return t(d.lang(chat_of(update)), "poll.set", name=name, poll=format_interval(seconds))


async def b_policy_menu(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    project = await blocking(d.store.get_project, name)
    await show(update, *screens.policy_menu(d.lang(chat_of(update)), project))
    return None


async def b_policy_set(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    project = await blocking(ops.set_setting, d.store, name, "policy", rest[0] if rest else "")
    await show(update, *screens.policy_menu(d.lang(chat_of(update)), project))
    return None


async def b_test_menu(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    await show(update, *screens.test_menu(deps(context).lang(chat_of(update)), name))
    return None


async def b_test_run(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    return start_op(context, update, "test", name, {"duration": rest[0] if rest else None})


async def b_extend(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    seconds = (number(rest[0]) if rest else None) or 60
    try:
        return await blocking(d.tests.extend, name, seconds)
    except NotFound:
        return t(d.lang(chat_of(update)), "stale.test")


async def b_cancel(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    if not d.service.executor.cancel(name):
        return t(d.lang(chat_of(update)), "stale.test")
    return t(d.lang(chat_of(update)), "cancelled")


async def b_discard(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    return start_op(context, update, "discard", name, {})


async def b_confirm(
    update: Update, context: Ctx, name: str, rest: list[str], *, key: str, yes: tuple[object, ...]
) -> str | None:
    lang = deps(context).lang(chat_of(update))
    await ask(update, context, t(lang, key, name=name), yes, ("p", name))
    return None


async def b_deploy(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    return await b_confirm(update, context, name, rest, key="confirm.deploy", yes=("dp!", name))


async def b_deploy_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    return start_op(context, update, "deploy", name, {})


async def b_promote(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    await screen_confirm_promote(update, context, name)
    return None


async def b_promote_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    return start_op(context, update, "promote", name, {})


async def b_rollback_list(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    page = (number(rest[0]) if rest else None) or 0

    def gather() -> Any:
        releases = {r.n: r for r in d.store.releases(name)}
        return d.store.commits(name), releases, d.store.state(name)

    commits, releases, state = await blocking(gather)
    await show(
        update,
        *screens.rollback_menu(d.lang(chat_of(update)), name, commits, releases, state, page),
    )
    return None


async def b_rollback_confirm(
    update: Update, context: Ctx, name: str, rest: list[str]
) -> str | None:
    lang = deps(context).lang(chat_of(update))
    n = rest[0] if rest and number(rest[0]) is not None else ""
    if not n:
        return t(lang, "stale.button")
    text = t(lang, "confirm.rollback", name=name, n=n)
    await ask(update, context, text, ("rb!", name, n), ("p", name))
    return None


async def b_rollback_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    return start_op(context, update, "rollback", name, {"commit": rest[0] if rest else ""})


async def b_slot(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    slot, verb = slot_of(rest), rest[1] if len(rest) > 1 else ""
    if verb not in ("start", "stop", "restart"):
        return t(deps(context).lang(chat_of(update)), "stale.button")
    if slot == "prod" and verb == "stop":
        return await b_confirm(update, context, name, rest, key="confirm.stop", yes=("sp!", name))
    return start_op(context, update, verb, name, {"slot": slot})


async def b_stop_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    return start_op(context, update, "stop", name, {"slot": "prod"})


async def b_output(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    project = await blocking(d.store.get_project, name)
    value = "off" if project.output else "on"
    await blocking(ops.set_setting, d.store, name, "output", value)
    await screen_project(update, context, name)
    return t(d.lang(chat_of(update)), "output.set", name=name, state=value)


async def b_deploy_key(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """The project's deploy key, made on first view, and its pinned host keys."""
    d = deps(context)
    key = await blocking(ops.deploy_key, d.settings, d.store, name)
    await show(update, *screens.deploy_key(d.lang(chat_of(update)), name, key.public, key.hosts))
    return None


async def b_new_key(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    return await b_confirm(update, context, name, rest, key="confirm.new_key", yes=("dn!", name))


async def b_new_key_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    key = await blocking(ops.deploy_key, d.settings, d.store, name, new=True)
    await show(update, *screens.deploy_key(d.lang(chat_of(update)), name, key.public, key.hosts))
    return None


async def b_forget_hosts(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    await blocking(ops.forget_hosts, d.settings, name)
    await b_deploy_key(update, context, name, rest)
    return t(d.lang(chat_of(update)), "key.hosts_forgotten")


async def b_remove(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    return await b_confirm(update, context, name, rest, key="confirm.remove", yes=("rm!", name))


async def b_remove_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    d = deps(context)
    busy = d.service.executor.busy(name)
    if busy is not None:
        raise Busy(name, busy.op, busy.since)
    await blocking(ops.remove_project, d.settings, d.store, name)
    lang = d.lang(chat_of(update))
    await show(
        update,
        t(lang, "removed", name=name),
        InlineKeyboardMarkup([[screens.button(t(lang, "back"), "pl")]]),
    )
    return None


async def g_projects(update: Update, context: Ctx) -> None:
    await screen_projects(update, context)


async def g_help(update: Update, context: Ctx) -> None:
    await cmd_help(update, context)


async def g_load(update: Update, context: Ctx) -> None:
    await screen_load(update, context)


GLOBAL: dict[str, Callable[[Update, Ctx], Awaitable[None]]] = {
    "m": cmd_start,
    "pl": g_projects,
    "hp": g_help,
    "ld": g_load,
}
PROJECT: dict[str, Callable[[Update, Ctx, str, list[str]], Awaitable[str | None]]] = {
    "p": b_project,
    "st": b_status,
    "lg": b_logs,
    "lf": b_logfile,
    "fl": b_follow,
    "cf": b_config,
    "cd": b_delete_var,
    "pi": b_poll_menu,
    "ps": b_poll_set,
    "po": b_policy_menu,
    "pp": b_policy_set,
    "td": b_test_menu,
    "tr": b_test_run,
    "ex": b_extend,
    "cx": b_cancel,
    "ds": b_discard,
    "dp": b_deploy,
    "dp!": b_deploy_yes,
    "pr": b_promote,
    "pr!": b_promote_yes,
    "rb": b_rollback_list,
    "rc": b_rollback_confirm,
    "rb!": b_rollback_yes,
    "ss": b_slot,
    "sp!": b_stop_yes,
    "oo": b_output,
    "rm": b_remove,
    "rm!": b_remove_yes,
    "dk": b_deploy_key,
    "dn": b_new_key,
    "dn!": b_new_key_yes,
    "dh": b_forget_hosts,
}

# Buttons that only show a screen (or start a task that sends its own message) and never
# toast: on_button answers their query before running them.
SCREENS = frozenset({"p", "st", "lg", "lf", "cf", "pi", "po", "td", "dp", "pr", "rb", "rm"})
# The Yes of a confirmation: single-use (see on_yes); rm! replaces the message itself.
YES = frozenset({"dp!", "pr!", "rb!", "sp!", "rm!", "dn!"})
YES_SHOWS = frozenset({"rm!", "dn!"})


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Commands, conversations (first: they own their entry buttons), then buttons."""
    from controlplane.bot import conversations

    for conversation in conversations.build():
        app.add_handler(conversation)
    for name, fn in (
        ("start", cmd_start),
        ("menu", cmd_start),
        ("help", cmd_help),
        ("projects", cmd_projects),
        ("status", cmd_status),
        ("logs", cmd_logs),
        ("deploy", cmd_deploy),
        ("test", cmd_test),
        ("promote", cmd_promote),
        ("rollback", cmd_rollback),
        ("load", cmd_load),
    ):
        app.add_handler(CommandHandler(name, fn))
    app.add_handler(CallbackQueryHandler(on_button))
