"""Live log views (👁 Follow): one message per chat and slot, edited with the slot's new lines.

Everything runs on the bot's event loop and no thread is held while a view is open: one
task per chat looks at the followed log files every `tick` (a short bounded read in a
worker thread, so a flooding app never blocks the loop), keeps each view's newest lines,
and edits the views' messages in turn, at most one edit per chat every `every` seconds
whatever the number of views: Telegram allows about one message a second in a chat, and
the admin's own presses need the rest. A second press on a slot already followed in that
chat extends its view instead of opening another. A view ends when its time is up (a last
edit says so), when its message is gone, and at once when the bot stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError

from controlplane.bot.context import Deps
from controlplane.bot.render import fit, pre
from controlplane.bot.texts import N_, t
from controlplane.domain.kinds import slot_name
from controlplane.service.facade import LogReader

logger = logging.getLogger(__name__)

FOLLOW_SECONDS = 120
LINES = 30
TICK = 1.0
EDIT_EVERY = 3.0
READ_MAX = 64 * 1024  # bytes read per file per tick; a flood skips to its newest lines
TRIES = 5  # edits in a row that meet a network error before a view is given up

Key = tuple[int, str, str]


@dataclass
class View:
    """One follow: its message, where reading its files got to, its newest lines."""

    chat: int
    name: str
    slot: str
    lang: str
    started: float
    until: float
    message_id: int | None = None
    reader: LogReader | None = None
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=LINES))
    shown: str = ""
    edited: float = 0.0
    ended: bool = False
    gone: bool = False  # its message was deleted or cannot be edited
    failures: int = 0

    @property
    def key(self) -> Key:
        return (self.chat, self.name, self.slot)


class Follows:
    """The open views, at most one per (chat, project, slot), and one task per chat."""

    def __init__(self, *, tick: float = TICK, every: float = EDIT_EVERY) -> None:
        self.tick = tick
        self.every = every
        self.views: dict[Key, View] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._wake: dict[int, asyncio.Event] = {}

    def start(self, app: Any, d: Deps, chat: int, name: str, slot: str, seconds: int) -> bool:
        """Open a view; False when the slot is followed in that chat already (extended)."""
        now = time.monotonic()
        view = self.views.get((chat, name, slot))
        if view is not None and not view.gone:
            view.until, view.ended = max(view.until, now + seconds), False
            return False
        self.views[(chat, name, slot)] = View(chat, name, slot, d.lang(chat), now, now + seconds)
        task = self._tasks.get(chat)
        if task is None or task.done():
            self._wake[chat] = asyncio.Event()
            self._tasks[chat] = app.create_task(self._run(app, d, chat), name=f"follow-{chat}")
        else:
            self._wake[chat].set()
        return True

    def of(self, chat: int) -> list[View]:
        return [v for v in self.views.values() if v.chat == chat]

    async def _run(self, app: Any, d: Deps, chat: int) -> None:
        last_edit = float("-inf")
        try:
            while app.running and (views := self.of(chat)):
                for view in views:
                    if view.message_id is None:
                        await self._open(app.bot, d, view)
                views = [v for v in self.of(chat) if v.message_id is not None]
                fresh = await asyncio.to_thread(read_views, views)
                now = time.monotonic()
                for view, lines in zip(views, fresh, strict=True):
                    view.lines.extend(lines)
                    view.ended = view.ended or now >= view.until
                due = now - last_edit >= self.every
                if due and (turn := next_turn(views, lambda v: render(d, v))) is not None:
                    await self._edit(app.bot, d, turn)
                    last_edit = time.monotonic()
                await self._nap(chat)
        finally:
            # views are left only when the bot stops or this task failed: they end with it
            if self._tasks.get(chat) is asyncio.current_task():
                del self._tasks[chat]
            for view in self.of(chat):
                del self.views[view.key]

    async def _open(self, bot: Any, d: Deps, view: View) -> None:
        view.reader = d.service.query.log_reader(view.name, view.slot, limit=READ_MAX, lines=LINES)
        view.shown = render(d, view)
        try:
            message = await bot.send_message(view.chat, view.shown, parse_mode="HTML")
        except TelegramError as exc:
            logger.warning("could not open the follow of %s %s: %s", view.name, view.slot, exc)
            self.views.pop(view.key, None)
            return
        view.message_id, view.edited = message.message_id, time.monotonic()

    async def _edit(self, bot: Any, d: Deps, view: View) -> None:
        text = render(d, view)
        view.edited = time.monotonic()
        try:
            await bot.edit_message_text(text, view.chat, view.message_id, parse_mode="HTML")
            view.shown, view.failures = text, 0
        except BadRequest as exc:
            if "not modified" in str(exc):
                view.shown = text
            else:  # the message was deleted, or cannot be edited any more
                self._give_up(view, exc)
        except (NetworkError, RetryAfter) as exc:  # passing: the next turn tries again
            view.failures += 1
            logger.warning("could not edit the follow of %s %s: %s", view.name, view.slot, exc)
            if view.failures >= TRIES:
                self._give_up(view, exc)
        except TelegramError as exc:  # the bot was blocked, the chat is gone
            self._give_up(view, exc)
        if view.ended and (view.gone or view.shown == text):
            self.views.pop(view.key, None)

    def _give_up(self, view: View, exc: Exception) -> None:
        logger.info("the follow of %s %s ends: %s", view.name, view.slot, exc)
        view.ended = view.gone = True

    async def _nap(self, chat: int) -> None:
        wake = self._wake[chat]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.tick):
                await wake.wait()
        wake.clear()


def render(d: Deps, view: View) -> str:
    """The view's message: a title and its newest lines, secrets removed before escaping."""
    key = (
        N_("👁 <b>{name}</b> {slot}: followed for {seconds} s, ended")
        if view.ended
        else N_("👁 <b>{name}</b> {slot}: new lines for {seconds} s")
    )
    seconds = round(view.until - view.started)
    title = t(view.lang, key, name=view.name, slot=slot_name(view.slot), seconds=seconds)
    lines = d.redactor()("\n".join(view.lines)).splitlines() if view.lines else []
    return fit(title + "\n" + pre(lines) if lines else title)


def next_turn(views: list[View], text: Any) -> View | None:
    """The view to edit next: one that ended first, then the one changed and least recently
    edited, so every view gets its turn however many there are."""
    changed = [v for v in views if v.ended or text(v) != v.shown]
    if not changed:
        return None
    return min(changed, key=lambda v: (not v.ended, v.edited))


def read_views(views: list[View]) -> list[list[str]]:
    """Each view's new lines (stderr lines marked), read in a worker thread."""
    return [view.reader.read() if view.reader is not None else [] for view in views]


def registry(bot_data: dict[str, object]) -> Follows:
    """The application's follows (kept in its bot_data)."""
    found = bot_data.setdefault("follows", Follows())
    assert isinstance(found, Follows)
    return found
