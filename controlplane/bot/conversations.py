"""Conversations: adding a project, setting variables, a typed test duration, launching
a third-party repository (the form of launchform.py). Every step is validated with the
same converters as the CLI and the reason is shown; /cancel works at any point; nothing
is written half-way. Adding and launching run as operations of the executor (through the
facade), like the CLI's."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from controlplane.bot import launchform, screens, variables
from controlplane.bot.callbacks import Cb, parts, pattern
from controlplane.bot.context import blocking, chat_of, deps
from controlplane.bot.progress import start_op
from controlplane.bot.render import fit
from controlplane.bot.texts import N_, error, t, tn
from controlplane.bot.views import show_projects
from controlplane.domain.kinds import slot_name
from controlplane.domain.models import (
    has_credentials,
    parse_test_duration,
    validate_branch,
    validate_folder,
    validate_name,
    validate_repo_url,
)
from controlplane.errors import AlreadyExists, ControlPlaneError, ValidationError
from controlplane.i18n import Size
from controlplane.service.facade import NewProject, Op

Ctx = ContextTypes.DEFAULT_TYPE
NAME, REPO, PATH, BRANCH, VALUES, DURATION, SEARCH = range(7)  # launchform's: from 20
# The buttons that open a conversation: app.ChatOrder runs their presses in the chat's
# order, so a quick answer meets the state they set (never the state before them)
ENTRIES = frozenset(
    {
        Cb.ADD,
        Cb.LAUNCH,
        Cb.LAUNCH_MODE,
        Cb.LAUNCH_YES,
        Cb.LAUNCH_NO,
        Cb.ADD_VARS,
        Cb.TAKE_OVER,
        Cb.TYPED_DURATION,
        Cb.SEARCH,
    }
)
TEXT = filters.TEXT & ~filters.COMMAND
# Paths and URLs may start with '/', which a client can mark as a command: any text but
# /cancel and /skip is an answer there.
ANSWER = filters.TEXT & ~filters.Regex(r"^/(cancel|skip)(@\w+)?\s*$")


def lang_of(update: Update, context: Ctx) -> str:
    return deps(context).lang(chat_of(update))


async def say(update: Update, context: Ctx, key: str, **values: Any) -> None:
    chat = update.effective_chat
    assert chat is not None
    await chat.send_message(t(lang_of(update, context), key, **values), parse_mode="HTML")


async def fail(update: Update, context: Ctx, exc: ControlPlaneError, again: str = "") -> None:
    """Why the answer was not taken (or the work failed), in the chat's language, within
    Telegram's length (a long value echoed is cut); `again`: the question asked again."""
    chat = update.effective_chat
    assert chat is not None
    lang = lang_of(update, context)
    said = error(lang, exc) + ("\n" + t(lang, again) if again else "")
    await chat.send_message(fit(said), parse_mode="HTML")


def opens_conversation(data: str | None) -> bool:
    """Whether a press's callback data is a button that opens (or answers) a conversation."""
    return data is not None and parts(data)[0] in ENTRIES


async def answer(update: Update) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer()


async def cancel(update: Update, context: Ctx) -> int:
    """/cancel: leave any conversation; nothing was written."""
    context.user_data.clear() if context.user_data is not None else None
    await say(update, context, N_("Cancelled."))
    return ConversationHandler.END


def draft(context: Ctx) -> dict[str, Any]:
    assert context.user_data is not None
    return context.user_data


# -- add a project -----------------------------------------------------------------------
# Each answer is checked when it is given (a name taken, a folder with files in it); a
# refused one is asked again, keeping the answers before it.

ASK_NAME = N_("Send its <b>name</b> (a-z, 0-9, - and _). /cancel to stop.")
ASK_NAME_AGAIN = N_("⚠️ A project named <b>{name}</b> exists already: send another name.")
ASK_REPO = N_("Send the <b>repository URL</b> (https://…, git@host:owner/repo).")
ASK_PATH = N_("Send the <b>project folder</b> the app runs from (absolute, e.g. /srv/{name}).")
ASK_PATH_AGAIN = N_("Send another <b>project folder</b>.")
ASK_BRANCH = N_("Send the <b>branch</b>, or /skip for main.")


async def add_start(update: Update, context: Ctx) -> int:
    await answer(update)
    draft(context).clear()
    lang = lang_of(update, context)
    chat = update.effective_chat
    assert chat is not None
    said = t(lang, "New project.") + " " + t(lang, ASK_NAME)
    await chat.send_message(said, parse_mode="HTML")
    return NAME


async def add_name(update: Update, context: Ctx) -> int:
    text = (update.effective_message.text or "").strip() if update.effective_message else ""
    try:
        name = validate_name(text)
        await blocking(deps(context).service.config.check_absent, name)
    except AlreadyExists:
        await say(update, context, ASK_NAME_AGAIN, name=text)
        return NAME
    except ControlPlaneError as exc:
        await fail(update, context, exc, ASK_NAME)
        return NAME
    draft(context)["name"] = name
    await say(update, context, ASK_REPO)
    return REPO


async def add_repo(update: Update, context: Ctx) -> int:
    text = await _url_answer(update)
    d = deps(context)
    try:
        validate_repo_url(text, allow_file=d.settings.allow_file_urls)
    except ControlPlaneError as exc:
        await fail(update, context, exc, ASK_REPO)
        return REPO
    draft(context)["repo"] = text
    await say(update, context, ASK_PATH, name=draft(context)["name"])
    return PATH


async def add_path(update: Update, context: Ctx) -> int:
    text = (update.effective_message.text or "").strip() if update.effective_message else ""
    d, name = deps(context), draft(context)["name"]

    def check() -> Any:
        config = d.service.config
        folder = validate_folder(
            text,
            data_dir=d.settings.data_dir,
            allowed_inside=(d.settings.apps_dir,),
            others=config.other_folders(name),
        )
        return config.folder_to_take_over(folder, name)

    try:
        theirs = await blocking(check)
    except ControlPlaneError as exc:
        await fail(update, context, exc, ASK_PATH_AGAIN)
        return PATH
    draft(context).update(path=text, take_over=False)
    if theirs is not None:
        await _offer_take_over(update, context, text, theirs)
        return PATH
    await say(update, context, ASK_BRANCH)
    return BRANCH


async def _offer_take_over(update: Update, context: Ctx, folder: str, theirs: Any) -> None:
    """A folder with someone's files: say how many and how much, offer 📦 to move them
    to a backup (the next answer, another folder, is taken as well)."""
    lang, chat = lang_of(update, context), update.effective_chat
    assert chat is not None
    said = tn(
        lang,
        "⚠️ <code>{folder}</code> holds files the control plane did not put there: {n} "
        "file, {size}. 📦 moves them to a dated backup under <code>{backups}</code> (never "
        "deleted) and uses the folder. Send another project folder, or press 📦.",
        "⚠️ <code>{folder}</code> holds files the control plane did not put there: {n} "
        "files, {size}. 📦 moves them to a dated backup under <code>{backups}</code> (never "
        "deleted) and uses the folder. Send another project folder, or press 📦.",
        theirs.files,
        folder=folder,
        size=Size(theirs.size),
        backups=str(deps(context).settings.layout.backups_dir),
    )
    press = tn(
        lang,
        "📦 Move {n} file ({size}) to a backup",
        "📦 Move {n} files ({size}) to a backup",
        theirs.files,
        size=Size(theirs.size),
    )
    markup = InlineKeyboardMarkup([[screens.button(press, Cb.TAKE_OVER)]])
    await chat.send_message(fit(said), parse_mode="HTML", reply_markup=markup)


async def add_take_over(update: Update, context: Ctx) -> int:
    """📦 pressed: the folder given last is taken over when the project is added."""
    await answer(update)
    if not draft(context).get("path"):
        await say(update, context, ASK_PATH_AGAIN)
        return PATH
    draft(context)["take_over"] = True
    await say(update, context, ASK_BRANCH)
    return BRANCH


async def add_branch(update: Update, context: Ctx) -> int:
    message = update.effective_message
    text = (
        "main"
        if message is None or (message.text or "").startswith("/skip")
        else (message.text or "").strip()
    )
    try:
        branch = validate_branch(text)
    except ControlPlaneError as exc:
        await fail(update, context, exc, ASK_BRANCH)
        return BRANCH
    info = dict(draft(context), branch=branch)
    config = deps(context).service.config
    fields = {k: info[k] for k in ("name", "repo", "path", "branch")}
    fields["take_over"] = bool(info.get("take_over"))
    try:  # all of it again: another project may have taken the name or folder meanwhile
        new = await blocking(lambda: config.check_new(**fields))
    except ControlPlaneError as exc:
        return await _ask_again(update, context, exc)
    draft(context).clear()
    await say(update, context, N_("Checking the repository…"))
    context.application.create_task(_add(update, context, info["name"], new))
    return ConversationHandler.END


async def _ask_again(update: Update, context: Ctx, exc: ControlPlaneError) -> int:
    """The last check refused an earlier answer: ask for that one again, keeping the rest."""
    if isinstance(exc, AlreadyExists):
        await say(update, context, ASK_NAME_AGAIN, name=draft(context)["name"])
        return NAME
    field = exc.field if isinstance(exc, ValidationError) else None
    if field is not None and str(field) == "folder":
        await fail(update, context, exc, ASK_PATH_AGAIN)
        return PATH
    await fail(update, context, exc, ASK_BRANCH)
    return BRANCH


async def _add(update: Update, context: Ctx, name: str, new: NewProject) -> None:
    svc = deps(context).service
    try:
        adding = await blocking(svc.add, new)
        added = await blocking(adding.result)
    except ControlPlaneError as exc:
        await fail(update, context, exc)
        await say(update, context, N_("Nothing was added. Start again with /add."))
        return
    for warning in added.warnings:
        await say(update, context, N_("⚠️ {warning}"), warning=warning)
    if added.moved is not None:
        await say(update, context, N_("📦 {moved}"), moved=added.moved)
    lang, head = lang_of(update, context), added.head
    text = tn(
        lang,
        "✅ Added <b>{name}</b>: numbered {n} commit, head #{n} {sha} {subject}.",
        "✅ Added <b>{name}</b>: numbered {n} commits, head #{n} {sha} {subject}.",
        head.n,
        name=name,
        sha=head.short,
        subject=head.subject,
    )
    state = await blocking(svc.query.state, name)
    menu_text, markup = screens.project_menu(lang, added.project, state)
    chat = update.effective_chat
    assert chat is not None
    await chat.send_message(text + "\n\n" + menu_text, parse_mode="HTML", reply_markup=markup)


# -- variables ----------------------------------------------------------------------------


async def vars_start(update: Update, context: Ctx) -> int:
    await answer(update)
    query = update.callback_query
    assert query is not None and query.data is not None
    _key, name, slot = ([*parts(query.data), "", ""])[:3]
    draft(context).update(name=name, slot="test" if slot == "test" else "prod")
    await say(
        update,
        context,
        N_(
            "Send one or more lines <code>KEY=VALUE</code> for <b>{name}</b> {slot}. "
            "Your message is deleted once saved. /cancel to stop."
        ),
        name=name,
        slot=slot_name(draft(context)["slot"]),
    )
    return VALUES


async def vars_values(update: Update, context: Ctx) -> int:
    message = update.effective_message
    assert message is not None
    d = deps(context)
    name, slot = draft(context)["name"], draft(context)["slot"]
    lines = [line for line in (message.text or "").splitlines() if line.strip()]
    try:
        change = await blocking(d.service.config.env_set, name, slot, lines)
    except ControlPlaneError as exc:
        await _delete(update)  # the values may be secrets even when a line is bad
        await fail(update, context, exc)
        return VALUES
    await _delete(update)
    draft(context).clear()
    note = t(lang_of(update, context), "Your message was deleted.")
    await variables.tell_change(update, context, change, removed=False, note=note)
    return ConversationHandler.END


async def _url_answer(update: Update) -> str:
    """A repository URL as typed; a message holding a password or a token (any scheme,
    refused or not) is deleted at once, so it does not stay in the chat. The reply to a
    refused URL shows it masked (validate_repo_url)."""
    text = (update.effective_message.text or "").strip() if update.effective_message else ""
    if has_credentials(text):
        await _delete(update)
    return text


async def _delete(update: Update) -> None:
    message = update.effective_message
    if message is not None:
        with contextlib.suppress(TelegramError):
            await message.delete()


# -- a typed test duration ------------------------------------------------------------------


async def duration_start(update: Update, context: Ctx) -> int:
    await answer(update)
    query = update.callback_query
    assert query is not None and query.data is not None
    draft(context)["name"] = ([*parts(query.data), ""])[1]
    await say(
        update,
        context,
        N_("Send the duration, from 5s to 7d: for example 90, 45s, 10m, 3d. /cancel to stop."),
    )
    return DURATION


async def duration_value(update: Update, context: Ctx) -> int:
    text = (update.effective_message.text or "").strip() if update.effective_message else ""
    try:
        seconds = parse_test_duration(text)
    except ControlPlaneError as exc:
        await fail(update, context, exc)
        return DURATION
    name = draft(context).pop("name")
    try:
        start_op(context, update, Op.TEST, name, {"duration": str(seconds)})
    except ControlPlaneError as exc:
        await fail(update, context, exc)
    return ConversationHandler.END


# -- a search of the projects list --------------------------------------------------------


async def search_start(update: Update, context: Ctx) -> int:
    await answer(update)
    await say(update, context, N_("Send part of a project's name. /cancel to stop."))
    return SEARCH


async def search_text(update: Update, context: Ctx) -> int:
    """The projects whose name holds the text (the same list as /projects TEXT)."""
    text = (update.effective_message.text or "").strip() if update.effective_message else ""
    await show_projects(update, context, 0, text)
    return ConversationHandler.END


# -- a third-party repository: launchform.py ------------------------------------------


def build() -> list[ConversationHandler[Any]]:
    """The conversations; /cancel leaves any of them."""
    fallbacks: list[Any] = [CommandHandler("cancel", cancel)]
    specs: list[tuple[list[Any], dict[object, list[Any]]]] = [
        (
            [
                CallbackQueryHandler(add_start, pattern=pattern(Cb.ADD)),
                CommandHandler("add", add_start),
            ],
            {
                NAME: [MessageHandler(TEXT, add_name)],
                REPO: [MessageHandler(ANSWER, add_repo)],
                PATH: [
                    MessageHandler(ANSWER, add_path),
                    CallbackQueryHandler(add_take_over, pattern=pattern(Cb.TAKE_OVER)),
                ],
                BRANCH: [MessageHandler(TEXT, add_branch), CommandHandler("skip", add_branch)],
            },
        ),
        (
            [CallbackQueryHandler(vars_start, pattern=pattern(Cb.ADD_VARS))],
            {VALUES: [MessageHandler(TEXT, vars_values)]},
        ),
        (
            [CallbackQueryHandler(duration_start, pattern=pattern(Cb.TYPED_DURATION))],
            {DURATION: [MessageHandler(TEXT, duration_value)]},
        ),
        (
            [CallbackQueryHandler(search_start, pattern=pattern(Cb.SEARCH))],
            {SEARCH: [MessageHandler(TEXT, search_text)]},
        ),
        launchform.conversation(ANSWER),
    ]
    handlers = []
    with warnings.catch_warnings():
        # per_message=False is intended: a conversation follows the chat, not one message
        warnings.simplefilter("ignore", PTBUserWarning)
        for entry, states in specs:
            handlers.append(
                ConversationHandler(
                    entry_points=entry, states=states, fallbacks=fallbacks, allow_reentry=True
                )
            )
    return handlers
