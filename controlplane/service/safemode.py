"""serve's safe mode: what serve does while the store cannot be opened.

When a store file is damaged, the store was written by a newer version, or its key is
missing or wrong, serve does not exit (supervisord would only start it again, to fail the
same way): it logs what is wrong and the way out (service/storecheck.py) as an error, so
`docker logs` has it, leaves supervisord's programs alone (the apps keep running from the
program files they have), writes nothing in the store or the key, and runs the safe bot
(bot/safemode.py), which tells each admin once and answers everything an admin sends with
the problem and the way out. $DATA/safemode.json says so for `controlplane health` and
the CLI. Every few seconds it looks again; once the store opens, the safe bot stops, the
file goes, and serve goes on into normal operation in the same process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from controlplane.adapters.files import write_atomic
from controlplane.adapters.store import Store
from controlplane.errors import ControlPlaneError
from controlplane.service.botlife import pid_alive, redact_logs
from controlplane.service.storecheck import Problem, diagnose, from_error
from controlplane.settings import Settings

logger = logging.getLogger(__name__)

STATE_FILE = "safemode.json"
LOOK_EVERY = 3.0  # s between looks at the store while in safe mode


class Stoppable(Protocol):
    """The safe bot as serve runs it (a BotWatch)."""

    def stop(self, timeout: float = ...) -> None: ...


Problems = Callable[[], list[Problem]]
StartBot = Callable[[Problems], Stoppable]


@dataclass(frozen=True)
class SafeState:
    """serve in safe mode since `since` (wall time), for these problems."""

    since: float
    problems: list[Problem]
    pid: int


def state_path(settings: Settings) -> Path:
    return settings.data_dir / STATE_FILE


def write_state(settings: Settings, state: SafeState) -> None:
    data = {
        "since": state.since,
        "pid": state.pid,
        "problems": [p.to_dict() for p in state.problems],
    }
    write_atomic(state_path(settings), json.dumps(data) + "\n", mode=0o644)


def read_state(settings: Settings) -> SafeState | None:
    """serve's safe mode as it last wrote it; None when serve is not in it (no file, a
    file whose serve is gone)."""
    try:
        data = json.loads(state_path(settings).read_text(encoding="utf-8"))
        state = SafeState(
            float(data["since"]),
            [Problem.from_dict(p) for p in data["problems"]],
            int(data["pid"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if pid_alive(state.pid) else None


def open_store(
    settings: Settings,
    stop: threading.Event,
    start_bot: StartBot,
    *,
    every: float = LOOK_EVERY,
) -> Store | None:
    """The store, opened; while it cannot be, serve waits in safe mode (the module
    docstring). None: asked to stop before the store opened."""
    problems = diagnose(settings)
    if not problems:
        try:
            return Store.open(settings)
        except (ControlPlaneError, OSError) as exc:
            problems = [from_error(settings, exc)]
    return SafeMode(settings, start_bot, every=every).wait(stop, problems)


class SafeMode:
    """One stay in safe mode: entered with the problems found, left with the store."""

    def __init__(self, settings: Settings, start_bot: StartBot, *, every: float) -> None:
        self.settings = settings
        self.start_bot = start_bot
        self.every = every
        self.problems: list[Problem] = []
        self._lock = threading.Lock()

    def current(self) -> list[Problem]:
        """The problems as last found (the safe bot asks from its thread)."""
        with self._lock:
            return list(self.problems)

    def wait(self, stop: threading.Event, problems: list[Problem]) -> Store | None:
        token = self.settings.telegram_token
        unredact = redact_logs(lambda text: text.replace(token, "***") if token else text)
        since = time.time()
        self._found(problems, since)
        bot = self.start_bot(self.current)
        try:
            while not stop.wait(self.every):
                store = self._look(since)
                if store is not None:
                    logger.warning("the store opens again: leaving safe mode")
                    return store
            return None
        finally:
            bot.stop()
            with contextlib.suppress(FileNotFoundError):
                state_path(self.settings).unlink()
            unredact()

    def _look(self, since: float) -> Store | None:
        """One look at the store: opened when nothing is wrong any more."""
        problems = diagnose(self.settings)
        if not problems:
            try:
                return Store.open(self.settings)
            except (ControlPlaneError, OSError) as exc:
                problems = [from_error(self.settings, exc)]
        if problems != self.current():
            self._found(problems, since)
        return None

    def _found(self, problems: list[Problem], since: float) -> None:
        with self._lock:
            self.problems = list(problems)
        for problem in problems:
            logger.error(
                "safe mode: the store cannot be opened: %s; way out: %s; the apps keep "
                "running, nothing is changed until then",
                problem.what,
                problem.way_out,
            )
        try:
            write_state(self.settings, SafeState(since, problems, os.getpid()))
        except OSError as exc:
            logger.error("the safe mode's state cannot be written: %s", exc)
