"""A project's variables in the chat: a slot's list, one variable's screen (🔒 secret or 🔓
plain, 🗑 delete after a confirmation), and what the chat says after a save or a delete.

Nothing restarts by itself: after a change the chat says when it applies and, while the
slot runs, offers 🔄 Restart now (a single-use confirmation, see confirm.py; prod's restart
is watched by the health window) or ⏭ At the next restart. A variable only the build reads
(PIP_*, UV_*) applies at the next build and offers no restart. Secrets are masked on these
screens; plain values are shown as they are.
"""

from __future__ import annotations

import html

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from controlplane.bot import confirm
from controlplane.bot.callbacks import CALLBACK_LIMIT, Cb, cb
from controlplane.bot.context import blocking, chat_of, deps
from controlplane.bot.progress import start_op
from controlplane.bot.screens import Screen, button
from controlplane.bot.texts import N_, Html, t
from controlplane.bot.views import ask, show
from controlplane.domain.kinds import slot_name
from controlplane.domain.variables import Variable, mask
from controlplane.errors import NotFound
from controlplane.service.configure import VariableChange
from controlplane.service.facade import Op

Ctx = ContextTypes.DEFAULT_TYPE
VARS_OF = {"prod": N_("Prod variables"), "test": N_("Test variables")}
TOKEN_ROOM = 9  # '|' and a confirmation's token (confirm.py) after a Yes button's parts
SHOWN_MAX = 200  # a plain value longer than this is clipped on the screens


def shown(var: Variable) -> str:
    """A value as the screens show it (HTML): a secret masked, a plain value as it is."""
    if var.secret:
        return f"{html.escape(mask(var.value), quote=False)} 🔒"
    value = var.value if len(var.value) <= SHOWN_MAX else var.value[:SHOWN_MAX] + "…"
    return f"<code>{html.escape(value, quote=False)}</code>"


def fits(name: str, slot: str, key: str) -> bool:
    """Whether the variable's buttons (its delete confirmation the longest) fit Telegram's
    64 bytes."""
    return len(cb(Cb.VAR_DELETE_YES, name, slot).encode()) + len(key.encode()) + 1 + TOKEN_ROOM <= (
        CALLBACK_LIMIT
    )


def list_screen(lang: str, name: str, slot: str, variables: list[Variable]) -> Screen:
    """A slot's variables: plain values shown, secrets masked; a button per variable."""
    other = "test" if slot == "prod" else "prod"
    text = t(
        lang,
        "<b>{name}</b> {slot} variables (🔒 secrets masked):"
        if variables
        else N_("<b>{name}</b> has no {slot} variables yet."),
        name=name,
        slot=slot_name(slot),
    )
    if variables:
        text += "\n" + "\n".join(
            f"<code>{html.escape(v.name)}</code> = {shown(v)}" for v in variables
        )
    keys = [
        button(("🔒 " if v.secret else "") + v.name, Cb.VAR, name, slot, v.name)
        for v in variables
        if fits(name, slot, v.name)
    ]
    if len(keys) < len(variables):
        text += "\n" + t(lang, "Names too long for a button: change them with `controlplane env`.")
    rows = [keys[i : i + 2] for i in range(0, len(keys), 2)]
    rows.append([button(t(lang, "➕ Add KEY=VALUE"), Cb.ADD_VARS, name, slot)])
    rows.append(
        [
            button(t(lang, VARS_OF[other]), Cb.CONFIG, name, other),
            button(t(lang, "⬅️ Back"), Cb.PROJECT, name),
        ]
    )
    return text, InlineKeyboardMarkup(rows)


def variable_screen(lang: str, name: str, slot: str, var: Variable) -> Screen:
    """One variable: its value (masked when secret), what it is and why, its buttons."""
    lines = [
        t(
            lang,
            "<code>{var}</code> of <b>{name}</b> {slot} = {value}",
            var=var.name,
            name=name,
            slot=slot_name(slot),
            value=Html(shown(var)),
        ),
        t(lang, "🔒 Secret: masked in everything the bot sends and in the logs.")
        if var.secret
        else t(lang, "🔓 Plain: shown as it is."),
    ]
    if not var.marked:
        lines.append(t(lang, "(chosen by its name or value; mark it to change that)"))
    if var.build_only:
        lines.append(
            t(lang, "Only the build reads it: a change applies at the next build, never restarts.")
        )
    mark = (
        button(t(lang, "🔓 Mark plain"), Cb.VAR_MARK, name, slot, var.name, "p")
        if var.secret
        else button(t(lang, "🔒 Mark secret"), Cb.VAR_MARK, name, slot, var.name, "s")
    )
    rows = [
        [mark, button(t(lang, "🗑 Delete"), Cb.VAR_DELETE, name, slot, var.name)],
        [button(t(lang, "⬅️ Back"), Cb.CONFIG, name, slot)],
    ]
    return "\n".join(lines), InlineKeyboardMarkup(rows)


def change_text(lang: str, change: VariableChange, *, removed: bool) -> str:
    """What a save or a delete did, and when it applies."""
    keys, name, slot = ", ".join(change.keys), change.name, slot_name(change.slot)
    head = (
        t(lang, "Deleted {keys} from <b>{name}</b> {slot}.", keys=keys, name=name, slot=slot)
        if removed
        else t(lang, "Saved {keys} for <b>{name}</b> {slot}.", keys=keys, name=name, slot=slot)
    )
    if change.build_only:
        when = t(
            lang, "Only the build reads them: the next build uses them; the app keeps running."
        )
    elif change.running:
        when = t(
            lang,
            "The running app keeps the old values until it restarts. Restart {slot} now, or let "
            "the change apply at its next restart (a deploy, a rollback, 🔄 Restart)?",
            slot=slot,
        )
    else:
        when = t(lang, "{slot} is not running: the change applies when it starts.", slot=slot)
    return f"{head}\n{when}"


async def tell_change(
    update: Update, context: Ctx, change: VariableChange, *, removed: bool, note: str = ""
) -> None:
    """Say what a change did (a new message, or the pressed one edited) with the restart
    choice while it applies only at a restart of a running slot."""
    lang = deps(context).lang(chat_of(update))
    text = change_text(lang, change, removed=removed) + (f"\n{note}" if note else "")
    rows = [[button(t(lang, "⬅️ Back"), Cb.CONFIG, change.name, change.slot)]]
    if change.restart_offered:
        confirmations = confirm.registry(context.application.bot_data)
        yes = (Cb.VAR_RESTART_YES, change.name, change.slot)
        once = await blocking(confirmations.issue, chat_of(update), yes)
        later = button(t(lang, "⏭ At the next restart"), Cb.VAR_LATER, change.name, change.slot)
        restart = InlineKeyboardButton(t(lang, "🔄 Restart now"), callback_data=cb(*once))
        rows.insert(0, [restart, later])
    markup = InlineKeyboardMarkup(rows)
    await show(update, text, markup)


def _slot_key(rest: list[str]) -> tuple[str, str]:
    slot = "test" if rest and rest[0] == "test" else "prod"
    return slot, rest[1] if len(rest) > 1 else ""


async def screen_config(update: Update, context: Ctx, name: str, slot: str) -> None:
    d = deps(context)
    variables = await blocking(d.service.config.env_variables, name, slot)
    await show(update, *list_screen(d.lang(chat_of(update)), name, slot, variables))


async def b_config(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    await screen_config(update, context, name, "test" if rest and rest[0] == "test" else "prod")
    return None


async def b_var(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """One variable's screen; the slot's list when it is gone."""
    d = deps(context)
    slot, key = _slot_key(rest)
    variables = await blocking(d.service.config.env_variables, name, slot)
    found = [v for v in variables if v.name == key]
    if not found:
        await show(update, *list_screen(d.lang(chat_of(update)), name, slot, variables))
        return None
    await show(update, *variable_screen(d.lang(chat_of(update)), name, slot, found[0]))
    return None


async def b_var_mark(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """🔒 Mark secret / 🔓 Mark plain: the mark changes, the value stays; nothing restarts."""
    d = deps(context)
    slot, key = _slot_key(rest)
    secret = len(rest) > 2 and rest[2] == "s"
    await blocking(d.service.config.env_mark, name, slot, [key], secret)
    await b_var(update, context, name, rest)
    lang = d.lang(chat_of(update))
    if secret:
        return t(lang, "{var} is a secret now: masked everywhere.", var=key)
    return t(lang, "{var} is plain now: shown as it is.", var=key)


async def b_var_delete(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """🗑 Delete: asks first (a single-use confirmation bound to this variable)."""
    slot, key = _slot_key(rest)
    lang = deps(context).lang(chat_of(update))
    text = t(
        lang, "Delete {var} from <b>{name}</b> {slot}?", var=key, name=name, slot=slot_name(slot)
    )
    await ask(
        update, context, text, (Cb.VAR_DELETE_YES, name, slot, key), (Cb.VAR, name, slot, key)
    )
    return None


async def b_var_delete_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """The confirmed delete: the message then says what it did and offers the restart."""
    d = deps(context)
    slot, key = _slot_key(rest)
    try:
        change = await blocking(d.service.config.env_unset, name, slot, [key])
    except NotFound:  # gone already: the list shows what is there
        await screen_config(update, context, name, slot)
        return None
    await tell_change(update, context, change, removed=True)
    return None


async def b_var_restart_yes(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """🔄 Restart now: the slot restarts with its variables; prod with the health window."""
    slot = "test" if rest and rest[0] == "test" else "prod"
    start_op(context, update, Op.RESTART, name, {"slot": slot, "watch": slot == "prod"})
    return t(deps(context).lang(chat_of(update)), "Started")


async def b_var_later(update: Update, context: Ctx, name: str, rest: list[str]) -> str | None:
    """⏭ At the next restart: nothing restarts now; the message says so."""
    slot = "test" if rest and rest[0] == "test" else "prod"
    lang = deps(context).lang(chat_of(update))
    text = t(
        lang,
        "⏭ <b>{name}</b> {slot} keeps running; the change applies at its next restart.",
        name=name,
        slot=slot_name(slot),
    )
    await show(
        update, text, InlineKeyboardMarkup([[button(t(lang, "⬅️ Back"), Cb.CONFIG, name, slot)]])
    )
    return None
