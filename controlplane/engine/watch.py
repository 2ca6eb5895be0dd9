"""Watching a running slot: what a test run or a health window observes.

A Watcher samples one slot through the Runner: its state and pid, the state changes the
runner recorded (so no restart is missed between samples, each exit with its real status
as the runner learnt it), the memory of the slot's processes (PSS), and the lines its
output gained (errors counted, the last kept). `fresh` holds the lines worth showing: a
traceback or error line the app prints again and again comes once, then only its count
grows (controlplane.domain.tracebacks). The evidence and the verdict on it are plain data
and functions in controlplane.domain.verdict.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from controlplane.adapters.slotprocs import slot_usage
from controlplane.domain.runner import ProcessInfo, Runner, program_name
from controlplane.domain.tracebacks import ERROR_RE, ErrorDigest
from controlplane.domain.verdict import Evidence
from controlplane.errors import NotFound
from controlplane.i18n import tr
from controlplane.settings import Settings

__all__ = ["ERROR_RE", "Watcher", "slot_memory"]

LAST_LINES = 10


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
        self.fresh: list[str] = []  # the lines worth showing the logs gained (see above)
        self._pids: set[int] = set()
        self._digests = (ErrorDigest(), ErrorDigest())  # stdout, stderr

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
        for digest, lines in zip(self._digests, (new.stdout, new.stderr), strict=True):
            ev.errors += sum(1 for line in lines if ERROR_RE.search(line))
            ev.last_lines = (ev.last_lines + lines)[-LAST_LINES:]
            self.fresh += digest.feed(lines)
        self._digest_errors()
        return ev

    def settle(self, seconds: float = 2.0, every: float = 0.1) -> Evidence:
        """Sample again, for `seconds` at most, until the exits a down state implies have
        their events (the state is read at once; the event that tells of the exit comes
        through the listener a moment later): so a crash is told with its real count."""
        ev = self.evidence
        deadline = self.clock() + seconds
        while (not ev.restarts or not ev.exit_codes) and self.clock() < deadline:
            time.sleep(every)
            ev = self.sample()
        return ev

    def finish(self) -> list[str]:
        """At the end of a watch: what is left to show of a traceback cut short."""
        lines = [line for digest in self._digests for line in digest.flush()]
        self._digest_errors()
        return lines

    def _digest_errors(self) -> None:
        seen = [e for digest in self._digests for e in digest.errors()]
        self.evidence.distinct = [e.to_dict() for e in seen]

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
        # an exit the events gave no status for: the runner's own, only where it is real
        # (supervisord says 0 for an app that died while starting: BACKOFF, FATAL)
        if info.state == "EXITED" and info.start and not ev.exit_codes:
            ev.exit_codes.append(info.exitstatus)
