"""The bot's life inside `serve`: started whether or not Telegram answers, restarted when
its thread dies, its state kept in $DATA/bot.json for `status` and the healthcheck, and
the admins told once when it answers again after an outage or a crash.

The bot (bot/app.py: BotRunner) retries Telegram itself and reports each change of state;
`BotWatch` starts a new runner when a runner's thread ends for any reason, after a growing
delay (1 s … 60 s, with jitter). serve creates the runners (`make`), so this module needs
nothing of the bot. `RedactLogs` keeps the token and the store's secrets out of every log
line, the Telegram library's exception texts included.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from controlplane.adapters.files import write_atomic
from controlplane.domain.backoff import Backoff
from controlplane.domain.kinds import EventKind
from controlplane.i18n import Duration, Text, tr
from controlplane.service.facade import Service
from controlplane.service.outbox import Outbox
from controlplane.settings import Settings

logger = logging.getLogger(__name__)

STATE_FILE = "bot.json"
CHECK_EVERY = 1.0  # s between looks at the runner's thread
STEADY = 60.0  # s of polling after which a crash counts as a first one again
DOWN = ("retrying", "token_rejected", "crashed")


class Runner(Protocol):
    """What BotWatch needs of a bot runner (bot/app.py: BotRunner)."""

    error: str | None

    @property
    def alive(self) -> bool: ...

    def start(self, timeout: float = ...) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...


StateSink = Callable[[str, str, float | None], None]


@dataclass(frozen=True)
class BotHealth:
    """The bot as serve last saw it: `state` (no_token, starting, polling, retrying,
    token_rejected, crashed, stopped) since `since` (wall time), why, the next try."""

    state: str
    since: float
    why: str = ""
    next_try: float | None = None
    pid: int = 0

    @property
    def down(self) -> bool:
        return self.state in DOWN

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def state_path(settings: Settings) -> Path:
    return settings.data_dir / STATE_FILE


def write_health(settings: Settings, health: BotHealth) -> None:
    write_atomic(state_path(settings), json.dumps(health.to_dict()) + "\n", mode=0o644)


def read_health(settings: Settings) -> BotHealth:
    """The bot's state for `status` and the healthcheck: "stopped" when serve is not
    running (no file, or its writer is gone), "no_token" without a token."""
    if not settings.telegram_token:
        return BotHealth("no_token", 0.0)
    try:
        data = json.loads(state_path(settings).read_text(encoding="utf-8"))
        health = BotHealth(**{k: data[k] for k in ("state", "since", "why", "next_try", "pid")})
    except (OSError, ValueError, KeyError, TypeError):
        return BotHealth("stopped", 0.0)
    if health.state != "stopped" and not pid_alive(health.pid):
        return BotHealth("stopped", health.since)
    return health


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def clock_text(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def health_text(h: BotHealth) -> Text:
    """One line for `status` and the healthcheck."""
    since = clock_text(h.since)
    if h.state == "no_token":
        return tr("off: no TELEGRAM_TOKEN")
    if h.state == "polling":
        return tr("polling since {since}", since=since)
    if h.state == "starting":
        return tr("starting since {since}", since=since)
    after = clock_text(h.next_try) if h.next_try else "?"
    if h.state == "retrying":
        return tr(
            "down: Telegram unreachable since {since} ({why}); next try at {next}",
            since=since,
            why=h.why,
            next=after,
        )
    if h.state == "token_rejected":
        return tr(
            "down: Telegram rejected the token since {since}; next try at {next}; set the "
            "right TELEGRAM_TOKEN and restart",
            since=since,
            next=after,
        )
    if h.state == "crashed":
        return tr("down: stopped at {since} ({why}); restarting", since=since, why=h.why)
    return tr("down: serve is not running")


@dataclass
class Outage:
    """The bot down since `since`: the worst cause seen and its last reason."""

    since: float
    cause: str
    why: str

    def message(self, now: float) -> Text:
        took = Duration(now - self.since)
        if self.cause == "crashed":
            return tr(
                "The bot stopped ({why}) and was restarted; it was down for {took}.",
                why=self.why,
                took=took,
            )
        if self.cause == "token_rejected":
            return tr(
                "Telegram rejected the bot's token for {took}; it is accepted again.", took=took
            )
        return tr(
            "The bot could not reach Telegram for {took} ({why}); it answers again.",
            why=self.why,
            took=took,
        )


class BotWatch:
    """Keeps one bot runner alive for as long as serve runs (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        outbox: Outbox | None,
        make: Callable[[StateSink], Runner],
        *,
        restarts: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.make = make
        self.restarts = restarts or Backoff(base=1.0, cap=60.0, jitter=0.5)
        self.runner: Runner | None = None
        self.health = BotHealth("starting", time.time(), pid=os.getpid())
        self.outage: Outage | None = None
        self._polling_since = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bot-watch", daemon=True)

    def start(self) -> None:
        if not self.settings.telegram_token:
            logger.warning("no TELEGRAM_TOKEN: running without the bot")
            self._set("no_token")
            return
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self.runner is not None:
            self.runner.stop(timeout)
        if self.settings.telegram_token:
            self._set("stopped")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._check()
            except Exception:  # the watch must outlive any one failure
                logger.exception("the bot's watch failed; looking again")
            self._stop.wait(CHECK_EVERY)

    def _check(self) -> None:
        runner = self.runner
        if runner is not None and runner.alive:
            return
        if runner is not None:  # its thread ended: why, then a new one after a while
            why = runner.error or "the bot's thread ended"
            if time.time() - self._polling_since >= STEADY:
                self.restarts.succeeded()
            wait = self.restarts.failed(random.random())  # noqa: S311 - spreading retries, not secrets
            logger.error("bot stopped (%s); starting it again in %.0f s", why, wait)
            self.on_state("crashed", why, time.time() + wait)
            if self._stop.wait(wait):
                return
        self.runner = self.make(self.on_state)
        self.runner.start(0)

    def on_state(self, state: str, why: str, next_try: float | None) -> None:
        """A runner's change of state (called from its thread): kept in the file; the
        admins told once when the bot answers again after being down."""
        now = time.time()
        with self._lock:
            if state in DOWN:
                if self.outage is None:
                    self.outage = Outage(now, state, why)
                elif state == "crashed" or self.outage.cause != "crashed":
                    self.outage.cause, self.outage.why = state, why
            back = self.outage if state == "polling" else None
            if state == "polling":
                self.outage, self._polling_since = None, now
            self._set(state, why, next_try)
        if back is not None and self.outbox is not None:  # None: safe mode, no store
            logger.warning("bot polling again after %.0f s down (%s)", now - back.since, back.why)
            self.outbox.publish(EventKind.BOT_BACK, None, back.message(now), down=now - back.since)

    def _set(self, state: str, why: str = "", next_try: float | None = None) -> None:
        since = self.health.since if self.health.state == state else time.time()
        self.health = BotHealth(state, since, why, next_try, os.getpid())
        try:
            write_health(self.settings, self.health)
        except OSError as exc:
            logger.error("the bot's state cannot be written: %s", exc)


def redactor(settings: Settings, service: Service) -> Callable[[str], str]:
    """The store's secrets and the bot's token out of a text, for log lines and the bot's
    state; the token even when the store cannot be read. Never raises."""
    token = settings.telegram_token or ""

    def redact(text: str) -> str:
        with contextlib.suppress(Exception):  # the store unreadable: the token at least goes
            text = service.redactor(also=(token,) if token else ())(text)
        return text.replace(token, "***") if token else text

    return redact


class RedactLogs(logging.Filter):
    """Every record through a handler, message and traceback, redacted: the Telegram
    library puts the token in its exception texts ("The token `…` was rejected")."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.msg, record.args = self.redact(record.getMessage()), None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self.redact(record.exc_text)
            if record.stack_info:
                record.stack_info = self.redact(record.stack_info)
        except Exception:
            record.msg, record.args, record.exc_text = (
                "(a log line that could not be redacted)",
                None,
                None,
            )
            record.exc_info = None
        return True


def redact_logs(redact: Callable[[str], str]) -> Callable[[], None]:
    """Put the filter on every handler of the root logger; returns the way to take it off."""
    flt = RedactLogs(redact)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(flt)

    def remove() -> None:
        for handler in handlers:
            handler.removeFilter(flt)

    return remove
