"""Screens with data: each reads through the service facade (off the event loop) and
shows its screen, editing the pressed message in place or sending a new one for a command.
Secrets in logs are removed by the bot's redactor before anything is shown or sent."""

from __future__ import annotations

import contextlib
import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from telegram import InlineKeyboardMarkup, InputFile, Update
from telegram.error import BadRequest, NetworkError
from telegram.ext import ContextTypes

from controlplane.bot import confirm, screens
from controlplane.bot.callbacks import Cb, parts
from controlplane.bot.context import Deps, blocking, chat_of, deps
from controlplane.bot.follows import FOLLOW_SECONDS
from controlplane.bot.render import fit, pre
from controlplane.bot.retry import retried
from controlplane.bot.texts import Html, t, tn
from controlplane.domain.history import CommitRow
from controlplane.domain.kinds import slot_name
from controlplane.errors import ControlPlaneError
from controlplane.i18n import LANGS
from controlplane.service.facade import Op

if TYPE_CHECKING:
    from controlplane.service.queries import Queries

logger = logging.getLogger(__name__)
Ctx = ContextTypes.DEFAULT_TYPE
LOG_LINES = 30
LOG_FILE_MAX = 20 * 2**20
# Set by on_button for the press of a button marked KEEP (callbacks.py): the pressed
# message is a notification that stays as it is, and the screen comes as a new message.
KEEP_PRESSED: ContextVar[bool] = ContextVar("keep_pressed", default=False)


async def show(update: Update, text: str, markup: Any = None) -> None:
    """Edit the pressed message in place, or send a new one for a command, for a press on a
    notification (KEEP_PRESSED), or when the edit meets network errors for good: the admin
    is left a message, never a spinner."""
    query = update.callback_query
    if query is not None and query.message is not None and not KEEP_PRESSED.get():
        try:
            await retried(
                lambda: query.edit_message_text(fit(text), parse_mode="HTML", reply_markup=markup),
                "editing a screen",
            )
            return
        except BadRequest as exc:
            if "not modified" in str(exc):
                return
            if "can't be edited" not in str(exc) and "not found" not in str(exc):
                raise
        except NetworkError as exc:  # failed for good: the screen comes as a new message
            logger.warning("could not edit a screen, sending it instead: %s", exc)
    chat = update.effective_chat
    assert chat is not None
    await retried(
        lambda: chat.send_message(fit(text), parse_mode="HTML", reply_markup=markup),
        "sending a screen",
    )


async def ask(
    update: Update, context: Ctx, text: str, yes: tuple[object, ...], no: tuple[object, ...]
) -> None:
    """A confirmation screen whose Yes acts once (a token in its data, see confirm.py) and
    does what `yes` names, nothing newer."""
    lang = deps(context).lang(chat_of(update))
    confirmations = confirm.registry(context.application.bot_data)
    once = await blocking(confirmations.issue, chat_of(update), yes)
    await show(update, *screens.confirm(lang, text, once, no))


async def screen_menu(update: Update, context: Ctx) -> None:
    """The main menu (/start, /menu); its 🌐 only when CONTROLPLANE_LANG leaves a choice."""
    d = deps(context)
    nodes = await blocking(d.service.nodes.shown)  # 🖥 only with a swarm (cached)
    lang = d.lang(chat_of(update))
    text, markup = screens.main_menu(lang, switch=not d.settings.lang, nodes=nodes)
    await show(update, text, markup)


async def screen_lang(update: Update, context: Ctx) -> None:
    """🌐: the language picker; a language pressed there becomes the chat's, remembered in
    the store, and the main menu comes back in it."""
    d = deps(context)
    chat = chat_of(update)
    query = update.callback_query
    chosen = parts(query.data)[1:] if query is not None and query.data else []
    if d.settings.lang:  # CONTROLPLANE_LANG leaves no choice (an old 🌐 button)
        await screen_menu(update, context)
    elif chosen and chosen[0] in LANGS:
        await blocking(d.choose, chat, chosen[0])
        await screen_menu(update, context)
    else:
        await show(update, *screens.lang_menu(d.lang(chat)))


async def screen_help(update: Update, context: Ctx) -> None:
    """The list of commands (/help)."""
    await show(
        update,
        t(
            deps(context).lang(chat_of(update)),
            "<b>Commands</b>\n"
            "/start — the menu\n"
            "/projects [TEXT] — your projects (those whose name contains TEXT)\n"
            "/add — add a project\n"
            "/status NAME — state of a project\n"
            "/deploy NAME — deploy the branch head to prod\n"
            "/test NAME [SECONDS] — test deploy\n"
            "/promote NAME — promote the tested release\n"
            "/rollback NAME N — prod back to commit N\n"
            "/logs NAME — last 30 lines\n"
            "/load — system load\n"
            "/skip — keep the default of a question that offers it\n"
            "/cancel — stop what you are typing",
        ),
    )


async def screen_projects(update: Update, context: Ctx) -> None:
    """📦 Projects, a page of them (the page and a search ride on ◀️ ▶️: 'pl|2|shop');
    /projects TEXT: those whose name holds TEXT."""
    query = update.callback_query
    values = parts(query.data)[1:] if query is not None and query.data else []
    if query is None:  # a command: /projects [TEXT]
        values = ["0", " ".join(context.args or [])]
    page = int(values[0]) if values and values[0].isascii() and values[0].isdigit() else 0
    await show_projects(update, context, page, values[1] if len(values) > 1 else "")


async def show_projects(update: Update, context: Ctx, page: int, search: str) -> None:
    d = deps(context)
    listing = await blocking(projects_listing, d.service.query, page, search)
    await show(update, *screens.projects_list(d.lang(chat_of(update)), listing))


def projects_listing(query: Queries, page: int, search: str) -> screens.Listing:
    """A page of the projects list: the names from the store, then the state of the page's
    projects only (10 state files and 10 getProcessInfo, however many projects there are)."""
    return screens.list_page(
        query.projects(),
        page,
        search,
        lambda shown: query.projects_overview([p.name for p in shown]),
    )


async def screen_project(update: Update, context: Ctx, name: str) -> None:
    d = deps(context)
    project = await blocking(d.service.query.project, name)
    state = await blocking(d.service.query.state, name)
    await show(update, *screens.project_menu(d.lang(chat_of(update)), project, state))


async def screen_status(update: Update, context: Ctx, name: str) -> None:
    d = deps(context)
    lang = d.lang(chat_of(update))
    text = await blocking(d.service.query.status_text, name, lang)  # plain: escaped by pre
    await show(
        update,
        t(lang, "<b>{name}</b>", name=name) + "\n" + pre(text.splitlines(), budget=3800),
        screens.back_to(lang, name),
    )


def log_tail(d: Deps, name: str, slot: str, lang: str, n: int = LOG_LINES) -> list[str]:
    """The slot's last lines, stdout and stderr told apart, secrets removed."""
    return d.redactor()(d.service.query.log_tail_text(name, slot, n, lang)).splitlines()


async def screen_logs(update: Update, context: Ctx, name: str, slot: str) -> None:
    d = deps(context)
    lang = d.lang(chat_of(update))
    lines = await blocking(log_tail, d, name, slot, lang)
    title = (
        tn(
            lang,
            "<b>{name}</b> {slot}: last {n} line",
            "<b>{name}</b> {slot}: last {n} lines",
            len(lines),
            name=name,
            slot=slot_name(slot),
        )
        if lines
        else t(
            lang, "<b>{name}</b> {slot} has printed nothing yet.", name=name, slot=slot_name(slot)
        )
    )
    markup = InlineKeyboardMarkup(
        [
            [
                screens.button(t(lang, "👁 Follow"), Cb.FOLLOW, name, slot, FOLLOW_SECONDS),
                screens.button(t(lang, "📎 Full log"), Cb.LOG_FILE, name, slot),
            ],
            [screens.button(t(lang, "⬅️ Back"), Cb.PROJECT, name)],
        ]
    )
    await show(update, title + "\n" + pre(lines), markup)


async def send_logfile(update: Update, context: Ctx, name: str, slot: str) -> None:
    """The full log (stdout and stderr) as a file, with every secret removed."""
    d = deps(context)

    def read() -> bytes:
        return d.redactor()(d.service.query.log_file_text(name, slot, LOG_FILE_MAX)).encode()

    data = await blocking(read)
    chat = update.effective_chat
    assert chat is not None
    if not data:
        await chat.send_message(t(d.lang(chat.id), "Nothing to show yet."))
        return
    await chat.send_document(InputFile(data, filename=f"{name}-{slot}.log"))


async def send_buildlog(update: Update, context: Ctx, name: str, n: int) -> None:
    """Commit #n's newest build log as a file (📎 on the history), every secret removed."""
    d = deps(context)

    def read() -> bytes:
        return d.redactor()(d.service.query.build_log_file_text(name, n, LOG_FILE_MAX)).encode()

    data = await blocking(read)
    chat = update.effective_chat
    assert chat is not None
    if not data:
        text = t(
            d.lang(chat.id),
            "No build log of #{n}: it went with its release when that was pruned.",
            n=n,
        )
        await chat.send_message(text, parse_mode="HTML")
        return
    await chat.send_document(InputFile(data, filename=f"{name}-build-{n}.log"))


async def screen_confirm_promote(update: Update, context: Ctx, name: str) -> None:
    d = deps(context)
    lang = d.lang(chat_of(update))
    state = await blocking(d.service.query.state, name)
    if state.test is None:
        await show(update, t(lang, "⚠️ {name}: no tested release to promote", name=name))
        return
    keys = await blocking(d.service.query.variables_diff, name)
    diff = (
        t(lang, "\nVariables that differ between test and prod: {keys}", keys=", ".join(keys))
        if keys
        else t(lang, "\nTest and prod variables are the same.")
    )
    text = t(
        lang,
        "Promote #{n} of <b>{name}</b> to <b>prod</b>?{diff}",
        name=name,
        n=state.test,
        diff=Html(diff),
    )
    await ask(update, context, text, (Cb.PROMOTE_YES, name, state.test), (Cb.PROJECT, name))


def newest_commit(d: Deps, name: str) -> CommitRow | None:
    """The branch head, fetched now (as a deploy of the head would) when the project is
    idle; else the newest commit known."""
    service = d.service
    with contextlib.suppress(ControlPlaneError):
        service.submit(Op.SYNC, name, {}).join()
    commits = service.query.commits(name)
    head = service.query.state(name).head
    return next(
        (c for c in commits if c.sha == head), max(commits, key=lambda c: c.n, default=None)
    )


async def screen_confirm_deploy(update: Update, context: Ctx, name: str) -> None:
    """ "Deploy #N sha to prod?": its Yes deploys that commit, even after a newer one came."""
    d = deps(context)
    commit = await blocking(newest_commit, d, name)
    if commit is None:
        lang = d.lang(chat_of(update))
        text = t(lang, "Deploy the branch head of <b>{name}</b> to <b>prod</b>?", name=name)
        await ask(update, context, text, (Cb.DEPLOY_YES, name), (Cb.PROJECT, name))
        return
    await confirm_deploy(update, context, name, commit)


async def screen_confirm_deploy_of(update: Update, context: Ctx, name: str, n: int) -> bool:
    """ "Deploy #n sha to prod?" for a commit named already (a new-commit notice's
    button); False when the project has no commit #n."""
    known = await blocking(deps(context).service.query.commits, name)
    commit = next((c for c in known if c.n == n), None)
    if commit is None:
        return False
    await confirm_deploy(update, context, name, commit)
    return True


async def confirm_deploy(update: Update, context: Ctx, name: str, commit: CommitRow) -> None:
    lang = deps(context).lang(chat_of(update))
    text = t(
        lang,
        "Deploy #{n} {sha} of <b>{name}</b> to <b>prod</b>?\n{subject}",
        n=commit.n,
        sha=commit.sha[:7],
        name=name,
        subject=commit.subject,
    )
    await ask(update, context, text, (Cb.DEPLOY_YES, name, commit.n), (Cb.PROJECT, name))


async def screen_load(update: Update, context: Ctx) -> None:
    d = deps(context)
    lang = d.lang(chat_of(update))
    report = await blocking(d.service.query.load, hour=True)
    text = report.text(lang)
    markup = InlineKeyboardMarkup([[screens.button(t(lang, "⬅️ Back"), Cb.MENU)]])
    await show(update, pre(text.splitlines(), budget=3900), markup)
