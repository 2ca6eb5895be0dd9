"""Watching a running slot: what a test run or a health window observes.

A Watcher samples one slot through the Runner: its state and pid, the state changes the
runner recorded (so no restart is missed between samples), the memory of the slot's
processes (PSS), and the lines its output gained (errors counted, the last kept). The
evidence and the verdict on it are plain data and functions in controlplane.domain.verdict.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from controlplane.adapters.slotprocs import slot_usage
from controlplane.domain.runner import ProcessInfo, Runner, program_name
from controlplane.domain.verdict import Evidence
from controlplane.errors import NotFound
from controlplane.i18n import tr
from controlplane.settings import Settings

ERROR_RE = re.compile(r"Traceback \(most recent call last\)|\b(ERROR|CRITICAL|FATAL)\b")
LAST_LINES = 10
DOWN_STATES = ("BACKOFF", "FATAL", "EXITED", "STOPPED", "UNKNOWN")


def slot_memory(settings: Settings, name: str, slot: str, pid: int) -> tuple[int, str]:
    """The slot's memory (PSS of its processes, RSS where smaps is denied) and which."""
    used = slot_usage(settings, name, slot, pid)
    return used.memory, used.memory_kind


class Watcher:
    """Samples one slot until told to stop; `sample()` is one observation."""

    def __init__(
        self,
        runner: Runner,
        settings: Settings,
        name: str,
        slot: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runner = runner
        self.settings = settings
        self.name, self.slot = name, slot
        self.program = program_name(name, slot)
        self.clock = clock
        self.started = clock()
        self.logs = runner.follow(name, slot)
        self.events = runner.events()
        self.evidence = Evidence(program=self.program)
        self.fresh: list[str] = []  # the lines the logs gained in the last sample
        self._pids: set[int] = set()

    def sample(self) -> Evidence:
        ev = self.evidence
        info = self.runner.status(self.name, self.slot)
        if info is None:
            raise NotFound(tr("{program} has no program to watch", program=self.program))
        ev.elapsed = self.clock() - self.started
        ev.state, ev.pid = info.state, info.pid
        self._count_exits(info)
        if info.pid:
            self._pids.add(info.pid)
            memory, ev.memory_kind = slot_memory(self.settings, self.name, self.slot, info.pid)
            ev.peak_memory = max(ev.peak_memory, memory)
        self.fresh = []
        new = self.logs.read_new()
        for lines in (new.stdout, new.stderr):
            ev.errors += sum(1 for line in lines if ERROR_RE.search(line))
            ev.last_lines = (ev.last_lines + lines)[-LAST_LINES:]
            self.fresh += lines
        return ev

    def _count_exits(self, info: ProcessInfo) -> None:
        ev = self.evidence
        for event in self.events.read_new():
            if (event.name, event.slot) != (self.name, self.slot):
                continue
            if event.state in ("EXITED", "BACKOFF"):
                ev.restarts += 1
                if event.exitstatus is not None:
                    ev.exit_codes.append(event.exitstatus)
        ev.restarts = max(ev.restarts, len(self._pids) - 1 if self._pids else 0)
        # an exit the events gave no status for: the last one the runner reports
        while len(ev.exit_codes) < ev.restarts or (
            info.state in DOWN_STATES and info.start and not ev.exit_codes
        ):
            ev.exit_codes.append(info.exitstatus)
