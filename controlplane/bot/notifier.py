"""Delivers the engine's events to every admin chat, each exactly once.

Each admin chat is its own outbox consumer (`bot:CHAT`) and reads each event in its own
language (the chat's choice is loaded when the bot starts, so it holds before its admin
writes). An event is acknowledged for a chat only after Telegram accepted the message, so
after a Telegram outage or a restart every pending event is delivered once, none twice.
Repeats in a row are collapsed into one message with a count. Sending goes through PTB's
rate limiter (per-chat limits, retry_after).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from controlplane.bot.callbacks import Cb, cb
from controlplane.bot.context import Deps, blocking
from controlplane.bot.render import fit
from controlplane.bot.texts import t, text
from controlplane.domain.backoff import Backoff
from controlplane.domain.kinds import EventKind
from controlplane.service.facade import Event

logger = logging.getLogger(__name__)

MAX_AGE = 86400.0
ICONS: dict[str, str] = {  # by kind (a stored event's kind is a plain string)
    EventKind.NEW_COMMIT: "🆕",
    EventKind.VERDICT: "🧪",
    EventKind.PROMOTED: "✅",
    EventKind.DEPLOYED: "🚢",
    EventKind.ROLLED_BACK: "⏪",
    EventKind.REVERTED: "↩️",
    EventKind.CRASH_LOOP: "💥",
    EventKind.POLL_OUTAGE: "📡",
    EventKind.POLL_RECOVERED: "📡",
    EventKind.INTERRUPTED: "⚠️",
    EventKind.STARTED: "🔁",
    EventKind.BOT_BACK: "🤖",
    EventKind.BUILD_FAILED: "❌",
    EventKind.DISCARDED: "🗑",
    EventKind.ERROR: "⚠️",
    EventKind.LOAD_WARNING: "📊",
    EventKind.LOAD_OK: "📊",
}


@dataclass(frozen=True)
class Batch:
    """Events in a row that say the same thing."""

    events: tuple[Event, ...]

    @property
    def first(self) -> Event:
        return self.events[0]


def collapse(events: list[Event]) -> list[Batch]:
    """Consecutive events with the same kind, project and text become one batch."""
    batches: list[list[Event]] = []
    for event in events:
        last = batches[-1][-1] if batches else None
        if last and (last.kind, last.project, last.text) == (event.kind, event.project, event.text):
            batches[-1].append(event)
        else:
            batches.append([event])
    return [Batch(tuple(b)) for b in batches]


def event_text(batch: Batch, lang: str) -> str:
    """The event in the chat's language (an event stored before events carried their
    message shows its English text), with the count of repeats."""
    event = batch.first
    repeat = t(lang, " (×{count})", count=len(batch.events)) if len(batch.events) > 1 else ""
    return fit(f"{ICONS.get(event.kind, 'ℹ️')} {text(lang, event.message)}{repeat}")


def event_buttons(event: Event, lang: str) -> InlineKeyboardMarkup | None:
    """A verdict comes with what to do next."""
    if event.kind != EventKind.VERDICT or not event.project or "n" not in event.data:
        return None
    row = [InlineKeyboardButton(t(lang, "🗑 Discard"), callback_data=cb(Cb.DISCARD, event.project))]
    if event.data.get("passed"):
        row.insert(
            0,
            InlineKeyboardButton(
                t(lang, "✅ Promote #{n}", n=event.data["n"]),
                callback_data=cb(Cb.PROMOTE, event.project),
            ),
        )
    return InlineKeyboardMarkup([row])


class Notifier:
    """The delivery loop; woken by each new event, and every few seconds anyway."""

    def __init__(self, app: Any, d: Deps, *, every: float = 5.0) -> None:
        self.app = app
        self.deps = d
        self.every = every
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._subscriber: Callable[[Event], None] | None = None
        self._backoff = Backoff(base=2.0, cap=60.0)  # while Telegram is unreachable
        self._unavailable = False

    def start(self) -> None:
        loop = asyncio.get_running_loop()

        def wake(_event: Event) -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._wake.set)

        self._subscriber = wake
        self.deps.service.subscribe(wake)
        self._task = asyncio.create_task(self._run(), name="notifier")

    async def stop(self) -> None:
        if self._subscriber is not None:
            self.deps.service.unsubscribe(self._subscriber)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.deliver_once()
            except Exception:
                logger.exception("notifier pass failed")
            if self._backoff.wait:
                # Telegram is down: new events must not bring the next try forward, or each
                # one doubles the delay and delivery lags far behind the outage's end.
                await asyncio.sleep(self._backoff.wait)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.every)
            self._wake.clear()

    async def deliver_once(self) -> int:
        """Send what each admin has not had yet; returns how many messages went out."""
        sent, self._unavailable = 0, False
        for chat in sorted(self.deps.settings.admin_chat_ids):
            sent += await self._deliver_to(chat)
        if not self._unavailable:
            self._backoff.succeeded()  # no send failed (also when there was nothing to send)
        return sent

    async def _deliver_to(self, chat: int) -> int:
        consumer = f"bot:{chat}"
        pending = await blocking(self.deps.service.pending_events, consumer)
        lang = self.deps.lang(chat)
        sent = 0
        for batch in collapse(pending):
            if time.time() - batch.first.at > MAX_AGE:
                await self._ack(consumer, batch)  # too old to be news
                continue
            try:
                await self.app.bot.send_message(
                    chat,
                    event_text(batch, lang),
                    parse_mode="HTML",
                    reply_markup=event_buttons(batch.first, lang),
                )
            except (RetryAfter, NetworkError) as exc:
                if isinstance(exc, BadRequest):
                    logger.error("event %s cannot be sent to %s: %s", batch.first.seq, chat, exc)
                    await self._ack(consumer, batch)
                    continue
                self._backoff.failed()
                self._unavailable = True
                logger.warning("Telegram unavailable (%s); events wait", exc)
                return sent
            except (Forbidden, TelegramError) as exc:
                logger.error("event %s cannot be sent to %s: %s", batch.first.seq, chat, exc)
            await self._ack(consumer, batch)
            self._backoff.succeeded()
            sent += 1
        return sent

    async def _ack(self, consumer: str, batch: Batch) -> None:
        for event in batch.events:
            await blocking(self.deps.service.ack_event, consumer, event.seq)
