"""The one backoff: each loop's figures (first wait, cap, spread) as they were."""

from __future__ import annotations

import pytest

from controlplane.domain.backoff import Backoff, delay, poll_wait


def test_delay_doubles_from_the_base_up_to_the_cap() -> None:
    assert [delay(a, base=5.0, cap=300.0) for a in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert delay(-3, base=5.0, cap=300.0) == 5.0
    assert delay(10**6, base=1.0, cap=7.0) == 7.0  # no overflow however long it failed


def test_delay_spreads_by_a_fraction_of_the_base_and_never_goes_below_zero() -> None:
    assert delay(0, base=300.0, cap=3600.0, jitter=0.1, rnd=0.0) == 270.0
    assert delay(0, base=300.0, cap=3600.0, jitter=0.1, rnd=0.5) == 300.0
    assert delay(2, base=300.0, cap=3600.0, jitter=0.1, rnd=0.75) == pytest.approx(1215.0)
    assert delay(0, base=1.0, cap=1.0, jitter=2.0, rnd=0.0) == 0.0


def test_each_loop_keeps_its_figures() -> None:
    # serve's restarts of a FATAL program (5 s … 5 min): tests/test_supervisor_serve.py
    # a project's next check: its interval doubled, at most max(interval, 1 h)
    assert [poll_wait(300, f) for f in range(6)] == [300, 600, 1200, 2400, 3600, 3600]
    assert poll_wait(86400, 5) == 86400
    # the notifier while Telegram is down: 2 s … 60 s; the bot's start: 1 s … 60 s
    notifier, start = Backoff(base=2.0, cap=60.0), Backoff(base=1.0, cap=60.0)
    assert [notifier.failed() for _ in range(7)] == [2, 4, 8, 16, 32, 60, 60]
    assert [start.failed() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_backoff_waits_nothing_until_a_failure_and_again_after_a_success() -> None:
    waits = Backoff(base=2.0, cap=60.0)
    assert waits.wait == 0.0
    waits.failed()
    waits.failed()
    assert (waits.failures, waits.wait) == (2, 4.0)
    waits.succeeded()
    assert (waits.failures, waits.wait) == (0, 0.0)
    assert waits.failed() == 2.0
