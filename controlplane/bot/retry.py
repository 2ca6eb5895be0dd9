"""Calls to Telegram that meet a network error are made again, a few times.

Only calls that are safe to repeat go through here: answering a press (a second answer of
a press Telegram took is refused as "query is too old", which `answer` takes as done),
editing a message (the same edit again is "not modified"), taking buttons off. A press's
action runs before its answer and never again, so a retried answer cannot repeat it.
BadRequest (a NetworkError in PTB's hierarchy) is Telegram's word, not the network's: it
is never retried. RetryAfter is the rate limiter's (AIORateLimiter waits and retries it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import CallbackQuery
from telegram.error import BadRequest, NetworkError, TelegramError

logger = logging.getLogger(__name__)

T = TypeVar("T")
WAITS = (0.3, 1.0, 2.5)  # between the attempts: four in all, about 4 s


async def retried(call: Callable[[], Awaitable[T]], what: str) -> T:
    """`call()`, again after a network error (a dropped connection, a timeout)."""
    for wait in WAITS:
        try:
            return await call()
        except BadRequest:
            raise
        except NetworkError as exc:
            logger.info("%s met a network error (%s); trying again in %.1f s", what, exc, wait)
            await asyncio.sleep(wait)
    return await call()


async def answer(query: CallbackQuery, text: str | None = None, alert: bool = False) -> None:
    """Answer a press (stop its spinner, show the toast), retried; never raises: a press
    whose answer is lost for good was still acted on once, and the log says so."""
    try:
        await retried(lambda: query.answer(text, show_alert=alert), "answering a press")
    except BadRequest as exc:
        if "too old" not in str(exc) and "invalid" not in str(exc).lower():
            logger.warning("could not answer a press: %s", exc)
    except TelegramError as exc:
        logger.warning("could not answer a press: %s", exc)
