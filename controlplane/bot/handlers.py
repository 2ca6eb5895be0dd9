"""Commands and the routing of button presses: each handler answers at once; long work
runs as a task.

Callback data is short: a prefix (callbacks.Cb) and the project name (and a number or
slot), always within Telegram's 64 bytes; a confirmation's Yes also carries a single-use
token (confirm.py). `on_button` routes a press by its prefix through the tables of
buttons.py. Buttons are checked again on every press (the gate runs for every update), and
a stale one (a removed project, a finished test, a used confirmation) gets a clear toast.
Every call to the control plane goes through the service facade; an operation that cannot
start or fails raises, and the toast says why. Screens with data are in views.py.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import CallbackQuery, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from controlplane.bot import confirm, conversations, screens
from controlplane.bot.buttons import GLOBAL, PROJECT, SCREENS, YES, YES_SHOWS
from controlplane.bot.callbacks import KEEP, Cb, parts
from controlplane.bot.context import Deps, blocking, chat_of, deps
from controlplane.bot.progress import start_op
from controlplane.bot.render import number, pre
from controlplane.bot.retry import answer, retried
from controlplane.bot.texts import N_, error, plain, t, text
from controlplane.bot.views import (
    KEEP_PRESSED,
    ask,
    screen_confirm_deploy,
    screen_confirm_promote,
    screen_help,
    screen_load,
    screen_logs,
    screen_menu,
    screen_projects,
    screen_status,
    show,
)
from controlplane.errors import ControlPlaneError, NotFound
from controlplane.service.facade import Op

logger = logging.getLogger(__name__)

Ctx = ContextTypes.DEFAULT_TYPE
REFUSED = {  # why a confirmation's Yes does nothing (confirm.Claim.reason)
    "used": N_("Already done: this confirmation was used. Open the menu again to repeat it."),
    "expired": N_("This confirmation has expired; open it again."),
    "superseded": N_("A newer confirmation replaced this one; use the newest."),
}


async def toast(query: CallbackQuery, message: str | None, *, alert: bool = False) -> None:
    """Answer a press with a toast: plain text (Telegram shows a toast's tags as they are),
    at most its 200 characters."""
    if not message:
        await answer(query)
        return
    shown = plain(message)
    await answer(query, shown if len(shown) <= 200 else shown[:199] + "…", alert=alert)


async def project_or_toast(query: CallbackQuery, d: Deps, lang: str, name: str) -> Any:
    try:
        return await blocking(d.service.query.project, name)
    except (NotFound, ControlPlaneError):
        await toast(query, t(lang, "That project no longer exists."))
        return None


async def with_name(
    update: Update, context: Ctx, usage: str, then: Callable[[str, list[str]], Awaitable[None]]
) -> None:
    args = context.args or []
    lang = deps(context).lang(chat_of(update))
    if not args:
        await show(update, t(lang, "Usage: {usage}", usage=usage))
        return
    try:
        await blocking(deps(context).service.query.project, args[0])
    except ControlPlaneError as exc:
        await show(update, error(lang, exc))
        return
    await then(args[0], args[1:])


async def cmd_status(update: Update, context: Ctx) -> None:
    """/status NAME; /status alone: every project, one line each."""
    if not context.args:
        d = deps(context)
        lang = d.lang(chat_of(update))
        text = await blocking(d.service.query.overview_text, lang)
        for part in overview_parts(lang, text.splitlines()):
            await show(update, part)
        return
    await with_name(
        update, context, "/status NAME", lambda name, _rest: screen_status(update, context, name)
    )


def overview_parts(lang: str, lines: list[str], budget: int = 3800) -> list[str]:
    """Every project's line, none dropped: as many messages as they need, each saying
    which of how many it shows."""
    chunks: list[list[str]] = [[]]
    used = 0
    for line in lines:
        cost = len(html.escape(line, quote=False)) + 1
        if chunks[-1] and used + cost > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(line)
        used += cost
    if len(chunks) == 1:
        return [pre(lines, budget=budget + 200)]
    shown, total, out = 0, len(lines), []
    for chunk in chunks:
        head = t(
            lang,
            "<b>Projects</b> {first}–{last} of {total}",
            first=shown + 1,
            last=shown + len(chunk),
            total=total,
        )
        shown += len(chunk)
        out.append(head + "\n" + pre(chunk, budget=budget + 200))
    return out


async def cmd_logs(update: Update, context: Ctx) -> None:
    """/logs NAME."""
    await with_name(
        update,
        context,
        "/logs NAME",
        lambda name, _rest: screen_logs(update, context, name, "prod"),
    )


async def cmd_deploy(update: Update, context: Ctx) -> None:
    """/deploy NAME: asks to confirm, naming the commit (the branch head, fetched)."""
    await with_name(
        update,
        context,
        "/deploy NAME",
        lambda name, _rest: screen_confirm_deploy(update, context, name),
    )


async def cmd_test(update: Update, context: Ctx) -> None:
    """/test NAME [SECONDS]."""
    lang = deps(context).lang(chat_of(update))

    async def then(name: str, rest: list[str]) -> None:
        args = {"duration": rest[0]} if rest else {}
        try:
            start_op(context, update, Op.TEST, name, args)
        except ControlPlaneError as exc:
            await show(update, error(lang, exc))
        else:
            await show(update, t(lang, "Started"))

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
            await show(update, t(lang, "Usage: {usage}", usage="/rollback NAME N"))
            return
        n = int(rest[0].lstrip("#"))
        known = sorted(c.n for c in await blocking(deps(context).service.query.commits, name))
        if n not in known:
            await show(update, no_such_commit(lang, name, n, known))
            return
        text = t(lang, "Roll <b>{name}</b> prod back to #{n}?", name=name, n=n)
        await ask(update, context, text, (Cb.ROLLBACK_YES, name, n), (Cb.PROJECT, name))

    await with_name(update, context, "/rollback NAME N", then)


def no_such_commit(lang: str, name: str, n: int, known: list[int]) -> str:
    """Why /rollback NAME N asks nothing: N is not one of the project's numbers."""
    if not known:
        return t(lang, "⚠️ <b>{name}</b> has no numbered commits yet.", name=name)
    return t(
        lang,
        "⚠️ <b>{name}</b> has no commit #{n}: its commits are numbered #{first}–#{last}.",
        name=name,
        n=n,
        first=known[0],
        last=known[-1],
    )


async def on_text(update: Update, context: Ctx) -> None:
    """A message no form and no command took: a hint, and the menu."""
    d = deps(context)
    lang = d.lang(chat_of(update))
    nodes = await blocking(d.service.nodes.shown)
    menu, markup = screens.main_menu(lang, switch=not d.settings.lang, nodes=nodes)
    hint = t(
        lang,
        "I only take answers while a form asks a question. "
        "Use the menu below, or /help for the commands.",
    )
    await show(update, hint + "\n\n" + menu, markup)


async def on_button(update: Update, context: Ctx) -> None:
    """Every button press: answered (a toast when needed), then acted on. Answers and
    edits that meet a network error are retried (retry.py); the action itself runs once."""
    query = update.callback_query
    assert query is not None and query.data is not None
    d = deps(context)
    lang = d.lang(chat_of(update))
    key, *rest = parts(query.data)
    keep = KEEP_PRESSED.set(bool(rest) and rest[-1] == KEEP)
    try:
        await route(update, context, query, key, rest[:-1] if KEEP_PRESSED.get() else rest, lang)
    except TelegramError as exc:  # a screen that could not be shown even as a new message
        logger.warning("a press's screen could not be shown: %s", exc)
        await toast(query, t(lang, "Telegram did not take the new screen; open it again."))
    finally:
        KEEP_PRESSED.reset(keep)


async def route(
    update: Update, context: Ctx, query: CallbackQuery, key: str, rest: list[str], lang: str
) -> None:
    """A press by its prefix through the tables of buttons.py."""
    if key in GLOBAL:
        await answer(query)
        await GLOBAL[key](update, context)
        return
    if key not in PROJECT or not rest:
        await toast(query, t(lang, "That button is out of date; open the menu again."))
        return
    if key in YES:
        claimed = await claim_yes(update, context, lang)
        if claimed is None:
            return
        rest = claimed
    name = rest[0]
    if await project_or_toast(query, deps(context), lang, name) is None:
        return
    if key in SCREENS:
        # nothing to toast: answer first, so the spinner stops before the screen's reads
        # and its edit round trip; a failure is then shown in the message instead
        await answer(query)
        try:
            await PROJECT[key](update, context, name, rest[1:])
        except ControlPlaneError as exc:
            await show(update, error(lang, exc), screens.back_to(lang, name))
        return
    try:
        said = await PROJECT[key](update, context, name, rest[1:])
    except ControlPlaneError as exc:
        reason = plain(text(lang, exc.text))
        await toast(query, reason, alert=len(reason) > 60)
        failed = True
    else:
        await toast(query, said)
        failed = False
    if key in YES and (failed or key not in YES_SHOWS):
        await drop_buttons(query)


async def claim_yes(update: Update, context: Ctx, lang: str) -> list[str] | None:
    """The first press of a confirmation's Yes: its parts after the key, without the token.
    Every other press is refused with a toast, and the buttons are taken off (once)."""
    query = update.callback_query
    assert query is not None and query.data is not None
    # check and mark in one step under the store's lock: of concurrent presses (or a press
    # and its retry) only the first acts
    confirmations = confirm.registry(context.application.bot_data)
    claim = await blocking(confirmations.claim, chat_of(update), query.data)
    if claim.ok:
        return claim.parts[1:]
    await toast(query, t(lang, REFUSED.get(claim.reason, REFUSED["expired"])))
    if claim.clear:
        await drop_buttons(query)
    return None


async def drop_buttons(query: CallbackQuery) -> None:
    """Take a used confirmation's buttons off its message (retried; best effort: the claim
    holds whatever happens to the buttons)."""
    try:
        await retried(
            lambda: query.edit_message_reply_markup(reply_markup=None), "taking buttons off"
        )
    except TelegramError as exc:
        logger.info("could not take the buttons off a used confirmation: %s", exc)


def register(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Commands, conversations (first: they own their entry buttons), then buttons."""
    for conversation in conversations.build():
        app.add_handler(conversation)
    for name, fn in (
        ("start", screen_menu),
        ("menu", screen_menu),
        ("help", screen_help),
        ("projects", screen_projects),
        ("status", cmd_status),
        ("logs", cmd_logs),
        ("deploy", cmd_deploy),
        ("test", cmd_test),
        ("promote", cmd_promote),
        ("rollback", cmd_rollback),
        ("load", screen_load),
    ):
        app.add_handler(CommandHandler(name, fn))
    app.add_handler(CallbackQueryHandler(on_button))
    # last: what nothing above took (free text outside a form, an unknown command)
    app.add_handler(
        MessageHandler(
            filters.TEXT
            & filters.UpdateType.MESSAGE
            & (filters.ChatType.PRIVATE | filters.COMMAND),
            on_text,
        )
    )
