"""Single-use confirmations kept in the store: a "✅ Yes" acts once, however often or late it
is pressed, and a restart does not revive it.

Each confirmation screen puts a fresh token at the end of its Yes button's callback data
(`rb!|shop|3|Xy3_k9Qa`) and records in the store what it confirms: the Yes data carries
what it is bound to (the commit number of a deploy, promote or rollback), so a later press
can only ever do what the screen said. Issuing a screen supersedes every open confirmation
of the same action on the same project (`dp!|shop`), in any chat. The first press claims
the token: the check and the mark happen in one step under the store's lock (Store.
change_bot_table), so presses handled concurrently, in threads or processes, cannot both
pass. Every later press, a press of a token the store does not hold (a forged button, one
pruned long ago), of one older than `ttl`, of one shown before the bot (re)started (the
world it asked about may have changed: a crash, a restart), or of a superseded one is
refused with its reason, and its buttons are taken off. A record is plain data with
wall-clock times.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controlplane.bot.callbacks import SEP
from controlplane.bot.context import Deps

TTL = 3600.0
KEEP = 500
# How the records are reached: `change` runs on the rows (token → row) in one locked step
Keeper = Callable[[Callable[[dict[str, Any]], Any]], Any]


@dataclass(frozen=True)
class Claim:
    """The outcome of a press: `ok` with the callback parts to act on, or why not."""

    ok: bool
    reason: str  # "ok", "used", "expired" or "superseded"
    parts: list[str]
    clear: bool  # take the buttons off the message now (once per confirmation)


def scope_of(data: str) -> str:
    """What a newer screen supersedes: the action and its project ('dp!|shop')."""
    return SEP.join(data.split(SEP)[:2])


def memory() -> Keeper:
    """Records in this process only (for tests of the rules)."""
    rows: dict[str, Any] = {}
    lock = threading.Lock()

    def keep(change: Callable[[dict[str, Any]], Any]) -> Any:
        with lock:
            return change(rows)

    return keep


class Confirmations:
    """The confirmations shown, as `keeper` keeps them (the store, in the bot)."""

    def __init__(
        self, keeper: Keeper, *, ttl: float = TTL, clock: Callable[[], float] = time.time
    ) -> None:
        self.keeper = keeper
        self.ttl = ttl
        self.clock = clock
        self.run = secrets.token_hex(4)  # this bot's run: screens of an earlier run expire

    def issue(self, chat: int, yes: tuple[object, ...]) -> tuple[object, ...]:
        """The Yes button's parts with a new token appended; older open confirmations of
        the same action on the same project are superseded. Blocking (the store)."""
        token = secrets.token_urlsafe(6)
        data = SEP.join(str(p) for p in yes)
        now = self.clock()

        def change(rows: dict[str, Any]) -> None:
            for row in rows.values():
                if row["state"] == "open" and row["scope"] == scope_of(data):
                    row["state"] = "superseded"
            rows[token] = record(chat, data, now, self.run)
            prune(rows, now - 2 * self.ttl)

        self.keeper(change)
        return (*yes, token)

    def claim(self, chat: int, data: str) -> Claim:
        """Check and mark in one step: the first press of a live confirmation is `ok`.
        Blocking (the store)."""
        base, _sep, token = data.rpartition(SEP)
        now = self.clock()

        def change(rows: dict[str, Any]) -> Claim:
            row = rows.get(token)
            if row is None or row["chat"] != chat or row["data"] != base:
                # not issued (or not for this button): kept, so that its buttons are taken
                # off once and every press of it gets the same answer
                row = rows[token] = record(chat, base, now, self.run, state="expired")
            elif row["state"] == "open" and (
                now - row["issued"] > self.ttl or row["run"] != self.run
            ):
                row["state"] = "expired"
            if row["state"] != "open":
                clear, row["cleared"] = not row["cleared"], True
                return Claim(False, row["state"], [], clear)
            row.update(state="used", used=now, cleared=True)
            return Claim(True, "ok", base.split(SEP), clear=True)

        claim: Claim = self.keeper(change)
        return claim


def record(chat: int, data: str, now: float, run: str, state: str = "open") -> dict[str, Any]:
    """One confirmation screen: what its Yes does, and whether it was pressed."""
    return {
        "chat": chat,
        "data": data,
        "scope": scope_of(data),
        "issued": now,
        "run": run,
        "state": state,
        "used": None,
        "cleared": False,
    }


def prune(rows: dict[str, Any], before: float) -> None:
    """Forget records issued before `before` (a press of one is refused as expired), and
    the oldest beyond KEEP."""
    for token in [k for k, row in rows.items() if row["issued"] < before]:
        del rows[token]
    for token in sorted(rows, key=lambda k: rows[k]["issued"])[: max(0, len(rows) - KEEP)]:
        del rows[token]


def registry(bot_data: dict[str, object]) -> Confirmations:
    """The application's confirmations, kept in the store through the service facade."""
    found = bot_data.get("confirmations")
    if found is None:
        deps = bot_data["deps"]
        assert isinstance(deps, Deps)
        config = deps.service.config
        found = bot_data["confirmations"] = Confirmations(
            lambda change: config.bot_records("confirmations", change)
        )
    assert isinstance(found, Confirmations)
    return found
