"""The bot application inside `serve`: long polling in its own thread and event loop.

Every request passes through one redactor (bot/redaction.py: RedactingRequest), so no
known secret value leaves the box in any form, buttons and files included. Updates from
chats that are not admins are stopped before any handler (a TypeHandler in group -1), on
every kind of update, button presses included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import BotCommand, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    BaseUpdateProcessor,
    ContextTypes,
    ExtBot,
    TypeHandler,
)
from telegram.request import HTTPXRequest

from controlplane.bot import conversations, handlers, progress
from controlplane.bot.context import Deps, chat_of, deps
from controlplane.bot.notifier import Notifier
from controlplane.bot.redaction import RedactingRequest
from controlplane.bot.retry import answer
from controlplane.bot.strangers import StrangerReports, report
from controlplane.bot.texts import N_, plain, t
from controlplane.domain.backoff import Backoff
from controlplane.errors import ControlPlaneError
from controlplane.i18n import DEFAULT, LANGS
from controlplane.service.alarms import Part
from controlplane.service.botlife import redactor
from controlplane.service.facade import Service
from controlplane.settings import Settings

logger = logging.getLogger(__name__)

COMMANDS = {  # the command menu: each command and what it does
    "projects": N_("your projects"),
    "status": N_("state of a project"),
    "deploy": N_("deploy to prod"),
    "test": N_("test deploy"),
    "promote": N_("promote the tested release"),
    "rollback": N_("roll prod back to commit N"),
    "logs": N_("last lines of a project's log"),
    "load": N_("system load"),
    "help": N_("help"),
    "cancel": N_("stop what you are typing"),
}


async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Admins pass; anyone else gets no answer and no effect, logged and reported."""
    d = deps(context)
    chat = chat_of(update)
    user = update.effective_user
    admins = d.settings.admin_chat_ids
    # a listed group lets its members in; in a private chat the person must be the admin
    if chat and chat in admins and (user is None or chat < 0 or user.id in admins):
        if user is not None and user.language_code:
            # the first seen is kept: a group's members may each speak another language
            d.telegram.setdefault(chat, user.language_code)
        return
    who = f"@{user.username}" if user and user.username else (user.full_name if user else "?")
    logger.warning(
        "update from a stranger: chat %s user %s (%s) ignored", chat, user.id if user else None, who
    )
    report_stranger(context, d, user.id if user is not None else chat, who, chat)
    raise ApplicationHandlerStop


def report_stranger(
    context: ContextTypes.DEFAULT_TYPE, d: Deps, key: int, who: str, chat: int
) -> None:
    """Record the stranger; the reports go out from tasks, never awaited here, so a flood
    of strangers neither waits on Telegram nor exceeds its limits (see strangers.py)."""
    reports = context.application.bot_data.setdefault("stranger_reports", StrangerReports())
    assert isinstance(reports, StrangerReports)
    bot = context.bot

    async def send(chat_id: int, text: str) -> object:
        return await bot.send_message(chat_id, text, parse_mode="HTML")

    admins = sorted(d.settings.admin_chat_ids)
    first = reports.note(key, who, chat, time.monotonic())  # one person, however many chats
    if first is not None:
        context.application.create_task(
            report(send, admins, d.lang, [first], summary=False), name="stranger-report"
        )
    elif reports.due() is not None:
        reports.schedule(send, admins, d.lang)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An exception in a handler (or a task of the bot): logged with its traceback and
    reported to the admins, grouped (service/alarms.py); the person whose press or
    message met it is told that it failed, so no button is left spinning."""
    error = context.error
    if error is None:
        return
    d = deps(context)
    d.service.alarms.report(Part.BOT_HANDLER, error)  # never raises
    if isinstance(update, Update):
        await tell_failed(update, d)


async def tell_failed(update: Update, d: Deps) -> None:
    """'That failed' as the press's toast, or as an answer to the message."""
    said = t(
        d.lang(chat_of(update)),
        "⚠️ That failed: an internal error. The admins get a report; the traceback is in "
        "serve's log.",
    )
    try:
        if update.callback_query is not None:
            await answer(update.callback_query, plain(said)[:200], alert=True)  # never raises
        elif update.effective_message is not None:
            await update.effective_message.reply_text(said, parse_mode="HTML")
    except TelegramError as exc:
        logger.warning("could not tell the chat that its update failed: %s", exc)


def in_order(update: Update) -> bool:
    """A message, or a press that opens a conversation (see ChatOrder)."""
    query = update.callback_query
    return update.message is not None or (
        query is not None and conversations.opens_conversation(query.data)
    )


class ChatOrder(BaseUpdateProcessor):
    """Updates run concurrently, except that one chat's messages run one after another in
    the order they came: a conversation's next answer (a fast typist, a long paste that
    Telegram splits into several messages) must meet the state the previous one left.
    A press of a button that opens a conversation is in that order too: its prompt is on
    screen before the conversation's state is set, and an answer typed at once must wait
    for it. Other presses stay concurrent (a press never waits behind a slow screen)."""

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}  # chat → updates holding or waiting for its lock

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None or not isinstance(update, Update) or not in_order(update):
            await coroutine
            return
        lock = self._locks.setdefault(chat.id, asyncio.Lock())
        self._users[chat.id] = self._users.get(chat.id, 0) + 1
        try:
            async with lock:
                await coroutine
        finally:
            self._users[chat.id] -= 1
            if not self._users[chat.id]:  # nobody waits: the chat's lock goes
                del self._users[chat.id], self._locks[chat.id]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to free."""


def build_application(d: Deps) -> Application[Any, Any, Any, Any, Any, Any]:
    """The PTB application with our bot class, API root, proxy and handlers."""
    s = d.settings
    assert s.telegram_token is not None
    request = RedactingRequest(d.redactor, proxy=s.telegram_proxy, connection_pool_size=16)
    updates_request = HTTPXRequest(proxy=s.telegram_proxy, read_timeout=40)
    bot = ExtBot(
        token=s.telegram_token,
        base_url=f"{s.telegram_api_url}/bot",
        base_file_url=f"{s.telegram_api_url}/file/bot",
        request=request,
        get_updates_request=updates_request,
        rate_limiter=AIORateLimiter(max_retries=5),
    )
    app = ApplicationBuilder().bot(bot).concurrent_updates(ChatOrder()).build()
    app.bot_data["deps"] = d
    app.add_handler(TypeHandler(Update, gate), group=-1)
    handlers.register(app)
    app.add_error_handler(on_error)
    return app


async def set_commands(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """The command menu in English (the default) and in every other language, for the
    admins whose Telegram speaks it."""
    for lang in LANGS:
        commands = [BotCommand(c, plain(t(lang, about))) for c, about in COMMANDS.items()]
        await app.bot.set_my_commands(commands, language_code=None if lang == DEFAULT else lang)


def quiet_http_logs() -> None:
    """httpx logs every request URL at INFO, and the URL holds the bot token."""
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


StateSink = Callable[[str, str, float | None], None]  # (state, why, next try at: wall time)
REJECTED_WAITS = (60.0, 300.0)  # s: a rejected token is tried again every few minutes


class BotRunner:
    """Runs the bot in a thread of its own. `settings` are the bot's (token, API root,
    admins, language); everything else is the facade's.

    It never gives up while it runs: Telegram unreachable at start (DNS not ready after a
    boot, an outage) is tried again with a growing delay (1 s … 60 s, with jitter), a
    rejected token every few minutes. Each change is told to `on_state` ("starting",
    "retrying", "token_rejected", "polling") with the reason, redacted, and the time of the
    next try. If the thread itself dies, `alive` turns False and `error` holds why:
    serve's BotWatch (service/botlife.py) then starts a new runner."""

    def __init__(
        self,
        settings: Settings,
        service: Service,
        on_state: StateSink | None = None,
        *,
        waits: Backoff | None = None,
        rejected: Backoff | None = None,
    ) -> None:
        self.deps = Deps(settings=settings, service=service)
        self.app = build_application(self.deps)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None  # the bot's main task, while it runs
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._thread_main, name="bot", daemon=True)
        self._ready = threading.Event()
        self._on_state = on_state
        self.waits = waits or Backoff(base=1.0, cap=60.0, jitter=0.5)
        self.rejected = rejected or Backoff(*REJECTED_WAITS, jitter=0.5)
        self.error: str | None = None  # why the thread ended, redacted
        self.redact = redactor(settings, service)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def start(self, timeout: float = 30.0) -> None:
        """Start the thread; wait up to `timeout` for polling (0: do not wait)."""
        quiet_http_logs()
        self._thread.start()
        if timeout:
            self._ready.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        if self.loop is not None and self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def _report(self, state: str, why: str = "", next_try: float | None = None) -> None:
        if self._on_state is None:
            return
        try:
            self._on_state(state, why, next_try)
        except Exception:  # telling must never stop the bot
            logger.exception("the bot's state could not be recorded")

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # the bot must never take serve down with it
            self.error = self.redact(f"{type(exc).__name__}: {exc}".rstrip(": "))
            trace = self.redact("".join(traceback.format_exception(exc))[-2000:])
            logger.error("bot stopped: %s", trace)
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self._stop = asyncio.Event()
        self._report("starting")
        await self._load_langs()
        if not await self._start_polling():
            await self._shutdown()
            return
        notifier = Notifier(self.app, self.deps)
        notifier.start()
        # issue #15 item 7 (progress.py): the cards a restart left at ⏳ are ended or taken up
        await progress.take_up_cards(self.app, self.deps)
        self._ready.set()
        self._report("polling")
        logger.info("bot polling")
        try:
            await self._until_stopped()
        finally:
            await notifier.stop()
        await self._shutdown()

    async def _until_stopped(self, every: float = 5.0) -> None:
        """Wait for stop; PTB's polling gives up for good on a token rejected while it
        polls (a revoked token): that ends this runner, and serve starts a new one."""
        assert self._stop is not None and self.app.updater is not None
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), every)
            polling = getattr(self.app.updater, "_Updater__polling_task", None)
            if isinstance(polling, asyncio.Task) and polling.done() and not self._stop.is_set():
                failure = None if polling.cancelled() else polling.exception()
                raise RuntimeError(f"polling stopped: {failure!r}")

    async def _shutdown(self) -> None:
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def _load_langs(self) -> None:
        """The languages the chats chose, before any notification goes out."""
        try:
            self.deps.chosen.update(await asyncio.to_thread(self.deps.service.query.chat_langs))
        except ControlPlaneError as exc:  # the store unreadable: Telegram's languages then
            logger.warning("the chats' languages cannot be read: %s", exc)

    async def _start_polling(self) -> bool:
        """Reach Telegram (getMe), then poll; until it answers keep trying with a growing
        delay, a rejected token slowly. False: asked to stop before it answered."""
        assert self._stop is not None
        while not self._stop.is_set():
            try:
                await self.app.initialize()
                await set_commands(self.app)
                await self.app.start()
                assert self.app.updater is not None
                await self.app.updater.start_polling(
                    poll_interval=0.0,
                    timeout=30,
                    drop_pending_updates=False,
                    allowed_updates=Update.ALL_TYPES,
                )
                return True
            except InvalidToken as exc:
                delay = self._failed("token_rejected", exc, self.rejected)
            except TelegramError as exc:
                delay = self._failed("retrying", exc, self.waits)
            if self.app.running:
                await self.app.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
        return False

    def _failed(self, state: str, exc: TelegramError, waits: Backoff) -> float:
        delay = waits.failed(random.random())  # noqa: S311 - spreading retries, not secrets
        why = self.redact(f"{type(exc).__name__}: {exc}")
        what = "rejected the token" if state == "token_rejected" else "unreachable"
        logger.warning("Telegram %s (%s); trying again in %.0f s", what, why, delay)
        self._report(state, why, time.time() + delay)
        return delay
