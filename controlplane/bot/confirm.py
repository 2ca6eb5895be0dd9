"""Single-use confirmations: a "✅ Yes" acts once, however often or late it is pressed.

Each confirmation screen puts a fresh token at the end of its Yes button's callback data
(`dp!|shop|Xy3_k9Qa`) and records what it confirms. The first press claims the token:
the check and the mark happen in one synchronous call, with no await in between, so
presses handled concurrently (the application runs with concurrent updates) cannot both
pass. Every later press, and a press of a token this process never issued (a screen from
before a restart, a forged button) or one older than `ttl`, is refused. A record is plain
data with wall-clock times, so the registry can be kept in the store later.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from controlplane.bot.callbacks import SEP

TTL = 3600.0
KEEP = 1000


@dataclass
class Confirmation:
    """One confirmation screen: what its Yes does, and whether it was pressed."""

    token: str
    chat: int
    data: str  # the Yes button's callback data without the token
    issued: float
    state: str = "open"  # "open", "used" or "expired"
    used: float | None = None
    cleared: bool = False  # its buttons were taken off the message (or that was tried)


@dataclass(frozen=True)
class Claim:
    """The outcome of a press: `ok` with the callback parts to act on, or why not."""

    ok: bool
    reason: str  # "ok", "used" or "expired"
    parts: list[str]
    clear: bool  # take the buttons off the message now (once per confirmation)


class Confirmations:
    """The confirmations shown in this process, the newest `KEEP`."""

    def __init__(self, *, ttl: float = TTL, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self.clock = clock
        self.records: dict[str, Confirmation] = {}

    def issue(self, chat: int, yes: tuple[object, ...]) -> tuple[object, ...]:
        """The Yes button's parts with a new token appended."""
        token = secrets.token_urlsafe(6)
        self._keep(Confirmation(token, chat, SEP.join(str(p) for p in yes), self.clock()))
        return (*yes, token)

    def claim(self, chat: int, data: str) -> Claim:
        """Check and mark in one step: the first press of a live confirmation is `ok`."""
        base, _sep, token = data.rpartition(SEP)
        record = self.records.get(token)
        now = self.clock()
        if record is None or record.chat != chat or record.data != base:
            # never issued here (or not for this button): kept, so that its buttons are
            # taken off once and every press of it gets the same answer
            record = self._keep(Confirmation(token, chat, base, now, state="expired"))
        elif record.state == "open" and now - record.issued > self.ttl:
            record.state = "expired"
        if record.state != "open":
            clear, record.cleared = not record.cleared, True
            return Claim(False, record.state, [], clear)
        record.state, record.used, record.cleared = "used", now, True
        return Claim(True, "ok", base.split(SEP), clear=True)

    def _keep(self, record: Confirmation) -> Confirmation:
        self.records[record.token] = record
        while len(self.records) > KEEP:
            del self.records[next(iter(self.records))]
        return record


def registry(bot_data: dict[str, object]) -> Confirmations:
    """The application's confirmations (kept in its bot_data)."""
    found = bot_data.setdefault("confirmations", Confirmations())
    assert isinstance(found, Confirmations)
    return found
