"""Growing waits between tries: one rule for every loop that retries.

The wait before try number `attempt` (0 for the first retry) is `base · 2^attempt`, at
most `cap`, moved by up to ± `jitter · base` where a spread is wanted (`rnd` in [0, 1)
says where in that range; 0.5 moves nothing). Each loop keeps its own figures: the
poller (a failing project's next check, which status estimates the same way, and a
failing round), serve's restarts of FATAL programs (5 s … 5 min), the bot's notifier
(2 s … 60 s), the bot's start (1 s … 60 s; a rejected token 1 min … 5 min) and its
restarts after a crash (1 s … 60 s). `Backoff` keeps the count for a loop that
only knows "failed again" or "worked".

tenacity and stamina wrap one call in retries; these loops schedule their next try
themselves (a due time per project or program, a wait that new events must not shorten),
so a wrapper would replace none of their code, only this arithmetic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

MAX_EXPONENT = 64  # 2^64 · any base passes any cap in use; keeps the float finite
POLL_CAP = 3600  # s: a failing project is still checked hourly, unless its interval is longer


def delay(attempt: int, *, base: float, cap: float, jitter: float = 0.0, rnd: float = 0.5) -> float:
    """Seconds to wait before retry `attempt` (0-based): base, 2·base, 4·base … at most
    `cap`, then ± jitter·base (rnd in [0, 1)); never below 0."""
    grown = min(cap, base * 2.0 ** min(max(attempt, 0), MAX_EXPONENT))
    spread = jitter * base * (2.0 * rnd - 1.0)
    return max(grown + spread, 0.0)


def poll_wait(interval: float, failures: int, *, jitter: float = 0.0, rnd: float = 0.5) -> float:
    """Seconds from a project's last check to its next: the poll interval, doubled per
    failure in a row, at most max(interval, 1 h), so a long interval is never shortened and
    a short one waits ≤ 1 h; ± jitter·interval (the poller spreads checks)."""
    return delay(failures, base=interval, cap=max(interval, POLL_CAP), jitter=jitter, rnd=rnd)


@dataclass
class Backoff:
    """The failures in a row of one loop and the wait they call for."""

    base: float
    cap: float
    failures: int = 0
    jitter: float = 0.0  # the spread of `failed`'s wait, as for `delay`

    def failed(self, rnd: float = 0.5) -> float:
        """One more failure: the wait before the next try (± jitter·base, rnd in [0, 1))."""
        self.failures += 1
        return delay(self.failures - 1, base=self.base, cap=self.cap, jitter=self.jitter, rnd=rnd)

    def succeeded(self) -> None:
        self.failures = 0

    @property
    def wait(self) -> float:
        """0 while nothing failed; else the wait after the failures so far."""
        return delay(self.failures - 1, base=self.base, cap=self.cap) if self.failures else 0.0
