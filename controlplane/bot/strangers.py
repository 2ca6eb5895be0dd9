"""Reports of strangers to the admins, bounded whatever their number.

The first stranger after a quiet period is reported at once. Strangers who write after
that are collected and summed up in one message per `every` seconds (10 minutes), naming
the first few with how many updates each sent. A person is counted once an hour. So an
admin gets at most two reports per 10 minutes however many strangers write, and the gate
never waits for Telegram: it records the stranger and a task of its own sends the reports.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram.error import TelegramError

from controlplane.bot.texts import Html, t, tn

logger = logging.getLogger(__name__)

REPORT_EVERY = 600.0
PERSON_EVERY = 3600.0
NAMED = 10
KEEP = 10_000


@dataclass
class Stranger:
    """One person who wrote, as the admins are told about them."""

    who: str
    chat: int
    count: int = 1


Send = Callable[[int, str], Awaitable[object]]


class StrangerReports:
    """What to tell the admins about strangers, and when (the clock is passed in)."""

    def __init__(self, *, every: float = REPORT_EVERY, person_every: float = PERSON_EVERY) -> None:
        self.every = every
        self.person_every = person_every
        self.last_report: float | None = None
        self.pending: dict[int, Stranger] = {}
        self._seen: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None

    def note(self, key: int, who: str, chat: int, now: float) -> Stranger | None:
        """Record one update; returns the stranger when they are to be reported at once."""
        if key in self.pending:
            self.pending[key].count += 1
            return None
        if now - self._seen.get(key, -self.person_every) < self.person_every:
            return None  # reported within the hour already
        self._forget(now)
        self._seen[key] = now
        stranger = Stranger(who[:64], chat)
        if not self.pending and (self.last_report is None or now - self.last_report >= self.every):
            self.last_report = now
            return stranger
        self.pending[key] = stranger
        return None

    def due(self) -> float | None:
        """When the summary of the pending strangers is to be sent."""
        if not self.pending:
            return None
        return (self.last_report or 0.0) + self.every

    def take(self, now: float) -> list[Stranger]:
        """The pending strangers, for a summary sent now."""
        taken = list(self.pending.values())
        self.pending.clear()
        self.last_report = now
        return taken

    def _forget(self, now: float) -> None:
        if len(self._seen) >= KEEP:
            self._seen = {k: v for k, v in self._seen.items() if now - v < self.person_every}

    # -- sending ---------------------------------------------------------------------------

    def schedule(self, send: Send, admins: list[int], lang: Callable[[int], str]) -> None:
        """Make sure one task sends the summary when it is due (never more than one)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._summaries(send, admins, lang), name="stranger-reports"
            )

    async def _summaries(self, send: Send, admins: list[int], lang: Callable[[int], str]) -> None:
        while (due := self.due()) is not None:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            strangers = self.take(time.monotonic())
            if strangers:
                await report(send, admins, lang, strangers, summary=True)


async def report(
    send: Send,
    admins: list[int],
    lang: Callable[[int], str],
    strangers: list[Stranger],
    *,
    summary: bool,
) -> None:
    """One message per admin; a failure is logged, never raised (the gate goes on)."""
    for admin in admins:
        text = (
            summary_text(lang(admin), strangers) if summary else one_text(lang(admin), strangers[0])
        )
        try:
            await send(admin, text)
        except TelegramError:
            logger.exception("could not report strangers to %s", admin)
        except Exception:  # a report must never take the bot down
            logger.exception("reporting strangers to %s failed", admin)


def one_text(lang: str, stranger: Stranger) -> str:
    return t(
        lang,
        "⚠️ Someone who is not an admin wrote to the bot: chat {chat} ({who}). Ignored. "
        "(Each person is reported once an hour; others who write soon after are summed up "
        "every 10 minutes.)",
        chat=stranger.chat,
        who=stranger.who,
    )


def summary_text(lang: str, strangers: list[Stranger]) -> str:
    """'N more strangers wrote: @a (chat 1, ×3), … and K more', HTML, bounded."""
    named = ", ".join(
        t(lang, "{who} in chat {chat} (×{count})", who=s.who, chat=s.chat, count=s.count)
        for s in strangers[:NAMED]
    )
    others = len(strangers) - NAMED
    if others > 0:
        named += tn(lang, " and {n} more", " and {n} more", others)
    updates = tn(lang, "{n} update", "{n} updates", sum(s.count for s in strangers))
    return tn(
        lang,
        "⚠️ {n} more person who is not an admin wrote to the bot ({updates}): {names}. Ignored.",
        "⚠️ {n} more people who are not admins wrote to the bot ({updates}): {names}. Ignored.",
        len(strangers),
        updates=Html(updates),
        names=Html(named),
    )
