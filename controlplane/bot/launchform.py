"""🚀 Run a third-party repository: a form that asks, one answer at a time, for everything
a stranger's repository needs before its first run, then shows a summary to confirm.

The questions: the URL, the name (from the URL by default), prod and test variables
(KEY=value lines; the messages are deleted, they may hold secrets), the entry file, the
folder, the poll period, the test duration, whether command output goes to the chat, and
the mode (test slot or prod). Each answer is checked when it is given, with the converters
of the CLI, and asked again when refused; /skip takes the default. Nothing is written or
run until ▶️ Launch on the summary (a single-use confirmation, confirm.py) is pressed:
then the facade's launch operation adds the project with its variables and settings, and
the first test run or deploy follows in its own live card.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
)

from controlplane.bot import confirm, screens
from controlplane.bot.callbacks import Cb, cb, parts, pattern
from controlplane.bot.context import Deps, blocking, chat_of, deps
from controlplane.bot.progress import start_op
from controlplane.bot.render import fit
from controlplane.bot.texts import N_, error, t, tn
from controlplane.domain.models import (
    has_credentials,
    parse_assignments,
    parse_interval,
    parse_switch,
    parse_test_duration,
    validate_entry,
    validate_folder,
    validate_name,
    validate_repo_url,
)
from controlplane.domain.variables import default_secret, mask
from controlplane.errors import AlreadyExists, ControlPlaneError, ValidationError
from controlplane.i18n import tr
from controlplane.service.facade import LaunchPlan, Op, check_launch, launch_name

Ctx = ContextTypes.DEFAULT_TYPE
Check = Callable[[Deps, dict[str, Any], str], object]  # blocking; raises when refused


@dataclass(frozen=True)
class Question:
    """One answer of the form: what is asked, how a text is checked (blocking), what
    /skip takes (None: it must be answered), and whether the message is deleted."""

    key: str
    ask: str
    check: Check
    skip: Callable[[dict[str, Any]], str] | None = None
    secret: bool = False


def _url(d: Deps, draft: dict[str, Any], text: str) -> object:
    validate_repo_url(text, allow_file=d.settings.allow_file_urls)
    draft["default_name"] = launch_name(text)
    return None


def _name(d: Deps, draft: dict[str, Any], text: str) -> object:
    d.service.config.check_absent(validate_name(text))
    return None


def _folder(d: Deps, draft: dict[str, Any], text: str) -> object:
    config, name = d.service.config, draft["name"]
    folder = validate_folder(
        text,
        data_dir=d.settings.data_dir,
        allowed_inside=(d.settings.layout.apps_dir,),
        others=config.other_folders(name),
    )
    config.check_folder_free(folder, name)
    return None


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


QUESTIONS = (
    Question("url", N_("Send the <b>repository URL</b> to run. /cancel to stop."), _url),
    Question(
        "name",
        N_("Send its <b>name</b> (a-z, 0-9, - and _), or /skip for <b>{default}</b>."),
        _name,
        skip=lambda draft: str(draft["default_name"]),
    ),
    Question(
        "prod",
        N_(
            "Send its <b>prod variables</b>, one <code>KEY=value</code> a line (the test slot "
            "sees them too), or /skip for none. Your message is deleted."
        ),
        lambda d, draft, text: parse_assignments(_lines(text)),
        skip=lambda draft: "",
        secret=True,
    ),
    Question(
        "test",
        N_(
            "Send its <b>test variables</b> (the test slot only, over the prod ones), one "
            "<code>KEY=value</code> a line, or /skip for none. Your message is deleted."
        ),
        lambda d, draft, text: parse_assignments(_lines(text)),
        skip=lambda draft: "",
        secret=True,
    ),
    Question(
        "entry",
        N_("Send the <b>entry file</b>, or /skip for <b>{default}</b>."),
        lambda d, draft, text: validate_entry(text),
        skip=lambda draft: "main.py",
    ),
    Question(
        "path",
        N_("Send the <b>folder</b> it runs from (absolute), or /skip for <b>{default}</b>."),
        _folder,
        skip=lambda draft: "",
    ),
    Question(
        "poll",
        N_("How often to look for new commits: off, 1m … 7d. /skip for <b>{default}</b>."),
        lambda d, draft, text: parse_interval(text),
        skip=lambda draft: "off",
    ),
    Question(
        "duration",
        N_("How long a test run lasts: 5s to 7d. /skip for <b>{default}</b>."),
        lambda d, draft, text: parse_test_duration(text),
        skip=lambda draft: "60s",
    ),
    Question(
        "output",
        N_("Command output to the chat: on or off. /skip for <b>{default}</b>."),
        lambda d, draft, text: parse_switch(tr("output"), text),
        skip=lambda draft: "on",
    ),
)
FIRST = 20  # the form's states: FIRST + the question's index, then MODE and CONFIRM
MODE, CONFIRM = FIRST + len(QUESTIONS), FIRST + len(QUESTIONS) + 1


def _default(d: Deps, draft: dict[str, Any], question: Question) -> str:
    """What /skip takes, as the question names it."""
    if question.key == "path":
        return str(d.settings.layout.app_folder(draft.get("name", "")))
    return question.skip(draft) if question.skip is not None else ""


async def _ask(update: Update, context: Ctx, index: int, again: str = "") -> int:
    """Ask question `index` (after `again`, why the last answer was refused)."""
    d, draft = deps(context), _draft(context)
    lang = d.lang(chat_of(update))
    question = QUESTIONS[index]
    said = t(lang, question.ask, default=html.escape(_default(d, draft, question)))
    chat = update.effective_chat
    assert chat is not None
    await chat.send_message(fit(f"{again}\n{said}" if again else said), parse_mode="HTML")
    return FIRST + index


def _draft(context: Ctx) -> dict[str, Any]:
    assert context.user_data is not None
    data: dict[str, Any] = context.user_data
    return data


async def start(update: Update, context: Ctx) -> int:
    """🚀 Run a third-party repository: a new form."""
    if update.callback_query is not None:
        await update.callback_query.answer()
    _draft(context).clear()
    return await _ask(update, context, 0)


def answering(index: int) -> Callable[[Update, Ctx], Any]:
    """The handler of question `index`'s answers (and its /skip)."""

    async def handler(update: Update, context: Ctx) -> int:
        return await _answer(update, context, index)

    return handler


async def _answer(update: Update, context: Ctx, index: int) -> int:
    d, draft, question = deps(context), _draft(context), QUESTIONS[index]
    message = update.effective_message
    typed = (message.text or "").strip() if message is not None else ""
    skipped = typed.startswith("/skip")
    if question.secret or (question.key == "url" and has_credentials(typed)):
        await _delete(update)
    if skipped and question.skip is None:
        return await _ask(update, context, index)
    text = question.skip(draft) if skipped and question.skip is not None else typed
    try:
        if text:  # "": /skip of the variables (none) or of the folder ($DATA/apps/NAME)
            await blocking(question.check, d, draft, text)
    except AlreadyExists:
        lang = d.lang(chat_of(update))
        taken = t(lang, "⚠️ A project named <b>{name}</b> exists already.", name=text)
        return await _ask(update, context, index, taken)
    except ControlPlaneError as exc:
        return await _ask(update, context, index, error(d.lang(chat_of(update)), exc))
    draft[question.key] = text
    if index + 1 < len(QUESTIONS) and "mode" not in draft:
        return await _ask(update, context, index + 1)
    return await _ask_mode(update, context)  # or back to it: the one answer refused at the end


async def _delete(update: Update) -> None:
    """Delete the answer (it may hold a secret); best effort."""
    message = update.effective_message
    if message is not None:
        with contextlib.suppress(TelegramError):
            await message.delete()


async def _ask_mode(update: Update, context: Ctx) -> int:
    lang = deps(context).lang(chat_of(update))
    markup = InlineKeyboardMarkup(
        [
            [
                screens.button(t(lang, "🧪 Test"), Cb.LAUNCH_MODE, "test"),
                screens.button(t(lang, "🚢 Prod"), Cb.LAUNCH_MODE, "prod"),
            ]
        ]
    )
    chat = update.effective_chat
    assert chat is not None
    said = t(lang, "Run it first in the test slot, or straight in prod?")
    await chat.send_message(said, parse_mode="HTML", reply_markup=markup)
    return MODE


def plan_of(d: Deps, draft: dict[str, Any]) -> LaunchPlan:
    """Every answer checked again, together (blocking): another project may have taken
    the name or the folder meanwhile."""
    return check_launch(
        d.service.config,
        draft["url"],
        name=draft["name"],
        path=draft["path"] or None,
        entry=draft["entry"],
        prod=_lines(draft["prod"]),
        test=_lines(draft["test"]),
        poll=draft["poll"],
        test_duration=draft["duration"],
        output=draft["output"],
    )


async def mode(update: Update, context: Ctx) -> int:
    """🧪 Test or 🚢 Prod: the summary, with ▶️ Launch and ✖️ Cancel."""
    query = update.callback_query
    assert query is not None and query.data is not None
    await query.answer()
    d, draft = deps(context), _draft(context)
    if "output" not in draft:  # a press of an old form's button
        return ConversationHandler.END
    draft["mode"] = "test" if ([*parts(query.data), ""])[1] == "test" else "prod"
    try:
        plan = await blocking(plan_of, d, draft)
    except ControlPlaneError as exc:
        return await _refused(update, context, exc)
    lang = d.lang(chat_of(update))
    once = await blocking(
        confirm.registry(context.application.bot_data).issue,
        chat_of(update),
        (Cb.LAUNCH_YES, plan.new.name),
    )
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(t(lang, "▶️ Launch"), callback_data=cb(*once)),
                screens.button(t(lang, "✖️ Cancel"), Cb.LAUNCH_NO),
            ]
        ]
    )
    chat = update.effective_chat
    assert chat is not None
    await chat.send_message(
        fit(summary(lang, plan, draft["mode"])), parse_mode="HTML", reply_markup=markup
    )
    return CONFIRM


async def _refused(update: Update, context: Ctx, exc: ControlPlaneError) -> int:
    """The last check refused an earlier answer: ask that one again, keeping the rest."""
    lang = deps(context).lang(chat_of(update))
    if isinstance(exc, AlreadyExists):
        taken = t(
            lang, "⚠️ A project named <b>{name}</b> exists already.", name=_draft(context)["name"]
        )
        return await _ask(update, context, 1, taken)
    field = str(exc.field) if isinstance(exc, ValidationError) else ""
    return await _ask(update, context, 5 if field == "folder" else 0, error(lang, exc))


def _variables(lang: str, values: dict[str, str]) -> str:
    """KEY=value, secrets masked by the rule of domain/variables.py."""
    if not values:
        return t(lang, "none")
    shown = [f"{k}={mask(v) if default_secret(k, v) else v}" for k, v in sorted(values.items())]
    return "<code>" + html.escape(", ".join(shown)) + "</code>"


def summary(lang: str, plan: LaunchPlan, first: str) -> str:
    """What ▶️ Launch will do, every answer named."""
    new = plan.new
    return t(
        lang,
        N_(
            "🌍 Launch <b>{name}</b>?\n"
            "Repository: <code>{repo}</code> ({branch})\n"
            "Folder: <code>{folder}</code>\n"
            "Entry: <code>{entry}</code>\n"
            "Prod variables: {prod}\n"
            "Test variables: {test}\n"
            "Poll: {poll} · test run: {duration} · output to chat: {output}\n"
            "First run: {first}\n"
            "Nothing runs until you press ▶️ Launch."
        ),
        name=new.name,
        repo=html.escape(new.repo),
        branch=html.escape(new.branch or t(lang, "main, else master")),
        folder=html.escape(new.path),
        entry=html.escape(new.entry),
        prod=_variables(lang, plan.env.get("prod", {})),
        test=_variables(lang, plan.env.get("test", {})),
        poll=screens.interval(lang, plan.poll),
        duration=screens.interval(lang, plan.test_duration),
        output=t(lang, "on") if plan.output else t(lang, "off"),
        first=t(lang, "🧪 the test slot") if first == "test" else t(lang, "🚢 prod"),
    )


async def launch(update: Update, context: Ctx) -> int:
    """▶️ Launch: claimed once (confirm.py), checked again, then launched."""
    from controlplane.bot.handlers import claim_yes, drop_buttons

    query = update.callback_query
    assert query is not None
    d, draft = deps(context), dict(_draft(context))
    lang = d.lang(chat_of(update))
    if await claim_yes(update, context, lang) is None:
        return CONFIRM if "mode" in draft else ConversationHandler.END
    await query.answer()
    await drop_buttons(query)
    try:
        plan = await blocking(plan_of, d, draft)
    except ControlPlaneError as exc:
        return await _refused(update, context, exc)
    _draft(context).clear()
    context.application.create_task(_launch(update, context, plan, draft["mode"] == "test"))
    return ConversationHandler.END


async def cancel(update: Update, context: Ctx) -> int:
    """✖️ Cancel on the summary: nothing was written."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    _draft(context).clear()
    lang = deps(context).lang(chat_of(update))
    await query.edit_message_text(t(lang, "Cancelled: nothing was launched."))
    return ConversationHandler.END


async def _launch(update: Update, context: Ctx, plan: LaunchPlan, test: bool) -> None:
    d = deps(context)
    lang = d.lang(chat_of(update))
    chat = update.effective_chat
    assert chat is not None
    try:
        adding = await blocking(d.service.launch, plan)
        added = await blocking(adding.result)
    except ControlPlaneError as exc:
        said = error(lang, exc) + "\n" + t(lang, "Nothing was launched.")
        await chat.send_message(fit(said), parse_mode="HTML")
        return
    head = added.head
    said = tn(
        lang,
        "🌍 Launched <b>{name}</b>: numbered {n} commit, head #{n} {sha} {subject}.",
        "🌍 Launched <b>{name}</b>: numbered {n} commits, head #{n} {sha} {subject}.",
        head.n,
        name=plan.new.name,
        sha=head.short,
        subject=html.escape(head.subject),
    )
    await chat.send_message(fit(said), parse_mode="HTML")
    try:
        start_op(context, update, Op.TEST if test else Op.DEPLOY, plan.new.name, {})
    except ControlPlaneError as exc:
        await chat.send_message(fit(error(lang, exc)), parse_mode="HTML")


def conversation(answer_filter: Any) -> tuple[list[Any], dict[object, list[Any]]]:
    """The form's entry points and states, for conversations.build()."""
    states: dict[object, list[Any]] = {
        FIRST + i: [
            MessageHandler(answer_filter, answering(i)),
            CommandHandler("skip", answering(i)),
        ]
        for i in range(len(QUESTIONS))
    }
    states[MODE] = [CallbackQueryHandler(mode, pattern=pattern(Cb.LAUNCH_MODE))]
    states[CONFIRM] = [
        CallbackQueryHandler(launch, pattern=pattern(Cb.LAUNCH_YES)),
        CallbackQueryHandler(cancel, pattern=pattern(Cb.LAUNCH_NO)),
        CallbackQueryHandler(mode, pattern=pattern(Cb.LAUNCH_MODE)),
    ]
    return [CallbackQueryHandler(start, pattern=pattern(Cb.LAUNCH))], states
