"""The bot in serve's safe mode (service/safemode.py): the store cannot be opened, so there
are no projects to show and nothing may change. It tells each admin once, at entry, what
is wrong and the way out, and answers every message and button press of an admin with the
same, in the admin's Telegram language (the languages chats chose are in the store).
Strangers get nothing, as from the normal bot, and the admins hear of them the same way.

`SafeBotRunner` is a BotRunner (bot/app.py) with this application instead of the normal
one: Telegram is retried the same way, and serve's BotWatch keeps it alive the same way.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    ContextTypes,
    ExtBot,
    TypeHandler,
)
from telegram.request import HTTPXRequest

from controlplane.bot.app import BotRunner, StateSink
from controlplane.bot.context import chat_of
from controlplane.bot.strangers import StrangerReports, report
from controlplane.bot.texts import Html, pick_lang, plain, t
from controlplane.domain.backoff import Backoff
from controlplane.service.storecheck import Problem
from controlplane.settings import Settings

logger = logging.getLogger(__name__)

Problems = Callable[[], list[Problem]]


def safe_text(lang: str, problems: list[Problem]) -> str:
    """The message an admin gets in safe mode: what is wrong and the way out (HTML)."""
    found = "\n\n".join(
        t(lang, "❌ {what}\n👉 <b>Way out:</b> {way_out}", what=p.what, way_out=p.way_out)
        for p in problems
    )
    return t(
        lang,
        "🛟 <b>Safe mode</b>: the store cannot be opened, so the control plane changes "
        "nothing until it can. Your apps keep running as they were.\n\n{problems}\n\nOnce "
        "it is fixed, the control plane comes back by itself within seconds, without "
        "restarting the apps.",
        problems=Html(found),
    )


class SafeBot:
    """What the safe bot's handlers need: the settings, the problems as serve last found
    them, the admins told already (kept by serve across restarts of the bot)."""

    def __init__(self, settings: Settings, problems: Problems, told: set[int]) -> None:
        self.settings = settings
        self.problems = problems
        self.told = told
        self.strangers = StrangerReports()

    def lang(self, telegram_code: str | None = None) -> str:
        return pick_lang(self.settings.lang, None, telegram_code)

    def is_admin(self, update: Update) -> bool:
        chat, user = chat_of(update), update.effective_user
        admins = self.settings.admin_chat_ids
        return bool(chat and chat in admins and (user is None or chat < 0 or user.id in admins))


def safe_of(context: ContextTypes.DEFAULT_TYPE) -> SafeBot:
    value = context.application.bot_data["safe"]
    assert isinstance(value, SafeBot)
    return value


async def gate(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Admins pass; anyone else gets no answer, logged and reported to the admins."""
    safe = safe_of(context)
    if safe.is_admin(update):
        return
    chat, user = chat_of(update), update.effective_user
    who = f"@{user.username}" if user and user.username else (user.full_name if user else "?")
    logger.warning("update from a stranger in safe mode: chat %s (%s) ignored", chat, who)
    bot = context.bot

    async def send(chat_id: int, text: str) -> object:
        return await bot.send_message(chat_id, text, parse_mode="HTML")

    admins = sorted(safe.settings.admin_chat_ids)
    first = safe.strangers.note(user.id if user else chat, who, chat, time.monotonic())
    if first is not None:
        context.application.create_task(
            report(send, admins, lambda _: safe.lang(), [first], summary=False),
            name="stranger-report",
        )
    elif safe.strangers.due() is not None:
        safe.strangers.schedule(send, admins, lambda _: safe.lang())
    raise ApplicationHandlerStop


async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Whatever an admin sends or presses: the problem and the way out."""
    safe = safe_of(context)
    user = update.effective_user
    lang = safe.lang(user.language_code if user else None)
    query = update.callback_query
    if query is not None:
        await query.answer(plain(t(lang, "🛟 Safe mode: the store cannot be opened")))
    chat = chat_of(update)
    if chat:
        await context.bot.send_message(chat, safe_text(lang, safe.problems()), parse_mode="HTML")


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    logger.error("safe mode: error while answering an update", exc_info=context.error)


def build_safe_application(
    safe: SafeBot,
) -> Application[Any, Any, Any, Any, Any, Any]:
    s = safe.settings
    assert s.telegram_token is not None
    bot = ExtBot(
        token=s.telegram_token,
        base_url=f"{s.telegram_api_url}/bot",
        base_file_url=f"{s.telegram_api_url}/file/bot",
        request=HTTPXRequest(proxy=s.telegram_proxy),
        get_updates_request=HTTPXRequest(proxy=s.telegram_proxy, read_timeout=40),
        rate_limiter=AIORateLimiter(max_retries=5),
    )
    app = ApplicationBuilder().bot(bot).build()
    app.bot_data["safe"] = safe
    app.add_handler(TypeHandler(Update, gate), group=-1)
    app.add_handler(TypeHandler(Update, answer))
    app.add_error_handler(on_error)
    return app


class SafeBotRunner(BotRunner):
    """A BotRunner (its thread, its retries of Telegram, its states) running the safe
    bot: once polling, it tells the admins not told yet, then answers until stopped."""

    def __init__(
        self,
        settings: Settings,
        problems: Problems,
        told: set[int],
        on_state: StateSink | None = None,
        *,
        waits: Backoff | None = None,
    ) -> None:
        # BotRunner's attributes but its Deps: there is no service in safe mode
        self.safe = SafeBot(settings, problems, told)
        self.app = build_safe_application(self.safe)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._thread_main, name="safe-bot", daemon=True)
        self._ready = threading.Event()
        self._on_state = on_state
        self.waits = waits or Backoff(base=1.0, cap=60.0, jitter=0.5)
        self.rejected = Backoff(60.0, 300.0, jitter=0.5)
        self.error: str | None = None
        token = settings.telegram_token or ""
        self.redact: Callable[[str], str] = lambda text: text.replace(token, "***")

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self._stop = asyncio.Event()
        self._report("starting")
        if not await self._start_polling():
            await self._shutdown()
            return
        await self._tell_admins()
        self._ready.set()
        self._report("polling")
        logger.info("safe bot polling")
        await self._until_stopped()
        await self._shutdown()

    async def _tell_admins(self) -> None:
        """Each admin not told yet in this stay in safe mode hears it once."""
        lang = self.safe.lang()
        for admin in sorted(self.safe.settings.admin_chat_ids - self.safe.told):
            try:
                await self.app.bot.send_message(
                    admin, safe_text(lang, self.safe.problems()), parse_mode="HTML"
                )
            except TelegramError as exc:
                logger.warning("safe mode: could not tell %s: %s", admin, self.redact(str(exc)))
                continue
            self.safe.told.add(admin)
