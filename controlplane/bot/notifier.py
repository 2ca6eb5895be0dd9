"""Delivers the engine's events to every admin chat, each exactly once.

Each admin chat is its own outbox consumer (`bot:CHAT`) and reads each event in its own
language (the chat's choice is loaded when the bot starts, so it holds before its admin
writes). An event is acknowledged for a chat only after Telegram accepted the message, so
after a Telegram outage or a restart every pending event is delivered once, none twice.
Repeats in a row are collapsed into one message with a count. Sending goes through PTB's
rate limiter (per-chat limits, retry_after).

Its own failures are reported to the admins (service/alarms.py, grouped): a message
Telegram refuses (a chat that blocked the bot) is skipped; one whose sending fails for
another reason is tried again at the next passes and skipped after MAX_TRIES; a pass that
fails as a whole is followed by the next. A report that cannot be delivered is only
logged, so a notifier that cannot send never reports about its own reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from controlplane.bot.callbacks import KEEP, Cb, cb
from controlplane.bot.context import Deps, blocking
from controlplane.bot.render import fit
from controlplane.bot.texts import t, text
from controlplane.domain.backoff import Backoff
from controlplane.domain.kinds import EventKind
from controlplane.i18n import Text, tr
from controlplane.service.alarms import Part
from controlplane.service.facade import Event

logger = logging.getLogger(__name__)

MAX_AGE = 86400.0
MAX_TRIES = 3  # sends of a message that fail (not refused by Telegram) before it is skipped
Send = Callable[..., Awaitable[object]]  # bot.send_message's way
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
    EventKind.ALARM: "🚨",
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


def commit_buttons(event: Event, lang: str) -> InlineKeyboardMarkup | None:
    """A new-commit notice offers to test or deploy its newest commit (what the policy
    does not do already: the notice says so) and the project's history; the screens they
    open come as new messages (KEEP), so the notice keeps its list of commits."""
    n, policy, name = event.data.get("n"), event.data.get("policy"), event.project
    if not isinstance(n, int) or not name:
        return None
    row = []
    if policy == "notify":
        row.append(
            InlineKeyboardButton(
                t(lang, "🧪 Test #{n}", n=n), callback_data=cb(Cb.TEST_RUN, name, "", n)
            )
        )
    if policy in ("notify", "test"):
        row.append(
            InlineKeyboardButton(
                t(lang, "🚀 Deploy #{n}", n=n), callback_data=cb(Cb.DEPLOY, name, n, KEEP)
            )
        )
    history = cb(Cb.ROLLBACK_LIST, name, 0, KEEP)
    row.append(InlineKeyboardButton(t(lang, "📜 History"), callback_data=history))
    return InlineKeyboardMarkup([row])


def event_buttons(event: Event, lang: str) -> InlineKeyboardMarkup | None:
    """A verdict comes with what to do next; a new-commit notice too (commit_buttons)."""
    if event.kind == EventKind.NEW_COMMIT:
        return commit_buttons(event, lang)
    if event.kind != EventKind.VERDICT or not event.project or "n" not in event.data:
        return None
    row = [InlineKeyboardButton(t(lang, "🗑 Discard"), callback_data=cb(Cb.DISCARD, event.project))]
    if event.data.get("promotable", event.data.get("passed")):  # older events: "passed"
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

    def __init__(self, app: Any, d: Deps, *, every: float = 5.0, send: Send | None = None) -> None:
        self.app = app
        self.deps = d
        self.every = every
        self.send: Send = send or app.bot.send_message
        self._tries: dict[tuple[int, int], int] = {}  # (chat, seq) → failed sends
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
            except Exception as exc:  # the store unreadable, a bug: the next pass runs
                self.deps.service.alarms.report(Part.NOTIFIER, exc)
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
                await self.send(
                    chat,
                    event_text(batch, lang),
                    parse_mode="HTML",
                    reply_markup=event_buttons(batch.first, lang),
                )
            except (RetryAfter, NetworkError) as exc:
                if isinstance(exc, BadRequest):
                    self._refused(chat, batch, exc)
                    await self._ack(consumer, batch)
                    continue
                self._backoff.failed()
                self._unavailable = True
                logger.warning("Telegram unavailable (%s); events wait", exc)
                return sent
            except (Forbidden, TelegramError) as exc:
                self._refused(chat, batch, exc)
            except Exception as exc:  # not Telegram's answer: a bug, tried again a few times
                if not self._failed(chat, batch, exc):
                    return sent  # this chat's next messages wait behind it, in order
            await self._ack(consumer, batch)
            self._backoff.succeeded()
            sent += 1
        return sent

    def _refused(self, chat: int, batch: Batch, exc: Exception) -> None:
        """Telegram refused the message (the chat blocked the bot, bad HTML): it is
        skipped and reported, unless it was itself a report (no report about a report)."""
        did = tr("The message to chat {chat} was skipped; the others go on.", chat=str(chat))
        self._alarm(batch, exc, did)

    def _failed(self, chat: int, batch: Batch, exc: Exception) -> bool:
        """A send that failed for another reason: True when the message is to be skipped
        (after MAX_TRIES), False when it is tried again at the next pass; reported either way."""
        key = (chat, batch.first.seq)
        tries = self._tries[key] = self._tries.get(key, 0) + 1
        skip = tries >= MAX_TRIES
        if skip:
            del self._tries[key]
            did = tr(
                "The message to chat {chat} was skipped after {n} failed tries; the others go on.",
                chat=str(chat),
                n=tries,
            )
        else:
            did = tr("The message is tried again at the next delivery pass, in a few seconds.")
        self._alarm(batch, exc, did)
        return skip

    def _alarm(self, batch: Batch, exc: Exception, did: Text) -> None:
        """Report a delivery failure; a report's own failure is logged only, so a notifier
        that cannot send never makes reports about its reports."""
        if batch.first.kind == EventKind.ALARM:
            logger.error("error report %s cannot be sent: %r", batch.first.seq, exc)
            return
        self.deps.service.alarms.report(Part.NOTIFIER, exc, did)

    async def _ack(self, consumer: str, batch: Batch) -> None:
        for event in batch.events:
            await blocking(self.deps.service.ack_event, consumer, event.seq)
