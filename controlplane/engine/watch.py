"""Watching a running slot: what a test run or a health window observes.

A Watcher samples one program: supervisord's state and pid, the state changes the event
listener recorded (so no restart is missed between samples), the memory of the
slot's processes (PSS), and the lines its logs gained (errors counted, the last kept). The
evidence and the verdict on it are plain data and functions in controlplane.domain.verdict.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

from controlplane.adapters.slotprocs import slot_usage
from controlplane.adapters.supervisor.client import ProcessInfo, Supervisor
from controlplane.adapters.supervisor.events import EventTail
from controlplane.adapters.tail import FileCursor
from controlplane.domain.verdict import Evidence

ERROR_RE = re.compile(r"Traceback \(most recent call last\)|\b(ERROR|CRITICAL|FATAL)\b")
LAST_LINES = 10
DOWN_STATES = ("BACKOFF", "FATAL", "EXITED", "STOPPED", "UNKNOWN")


def slot_memory(client: Supervisor, program: str, pid: int) -> tuple[int, str]:
    """The slot's memory (PSS of its processes, RSS where smaps is denied) and which."""
    name, _, slot = program.rpartition("-")
    used = slot_usage(client.settings, name, slot, pid)
    return used.memory, used.memory_kind


class Watcher:
    """Samples one program until told to stop; `sample()` is one observation."""

    def __init__(
        self,
        client: Supervisor,
        program: str,
        logs: tuple[Path, Path],
        events: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.program = program
        self.clock = clock
        self.started = clock()
        self.logs = [FileCursor(p) for p in logs]
        self.events = EventTail(events)
        self.evidence = Evidence(program=program)
        self.fresh: list[str] = []  # the lines the logs gained in the last sample
        self._pids: set[int] = set()

    def sample(self) -> Evidence:
        ev = self.evidence
        info = self.client.info(self.program)
        ev.elapsed = self.clock() - self.started
        ev.state, ev.pid = info.state, info.pid
        self._count_exits(info)
        if info.pid:
            self._pids.add(info.pid)
            memory, ev.memory_kind = slot_memory(self.client, self.program, info.pid)
            ev.peak_memory = max(ev.peak_memory, memory)
        self.fresh = []
        for log in self.logs:
            lines = log.read_new()
            ev.errors += sum(1 for line in lines if ERROR_RE.search(line))
            ev.last_lines = (ev.last_lines + lines)[-LAST_LINES:]
            self.fresh += lines
        return ev

    def _count_exits(self, info: ProcessInfo) -> None:
        ev = self.evidence
        for record in self.events.read_new():
            if record.get("program") != self.program:
                continue
            if record.get("state") in ("EXITED", "BACKOFF"):
                ev.restarts += 1
        ev.restarts = max(ev.restarts, len(self._pids) - 1 if self._pids else 0)
        # supervisord keeps the last exit status until the next exit
        while len(ev.exit_codes) < ev.restarts or (
            info.state in DOWN_STATES and info.start and not ev.exit_codes
        ):
            ev.exit_codes.append(info.exitstatus)
