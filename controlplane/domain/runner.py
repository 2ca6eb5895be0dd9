"""The Runner seam: how the engine reaches the process manager that runs the apps.

The engine never names supervisord. It puts a slot's program in place, points a slot at a
release, starts, stops and restarts it, and reads its state, its logs and its state
changes through a `Runner`; `serve` decides which one (supervisord on this box:
controlplane.adapters.supervisor.runner.SupervisorRunner). A second runner implements
the same protocol and passes the same contract suite, tests/contracts/test_runner.py.

A slot is (project name, "prod" or "test"); its program is called NAME-SLOT wherever a
runner shows it (supervisord's program and group, log file names, evidence). This module
holds the protocol and the plain data it returns: names, states, events, log lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from controlplane.domain.models import Project, validate_name, validate_slot

PROGRAM_RE = re.compile(r"(?P<name>[a-z0-9][a-z0-9_-]{0,31})-(?P<slot>prod|test)")


def program_name(name: str, slot: str) -> str:
    """('shop', 'prod') → 'shop-prod': the slot's program (and group) name."""
    return f"{validate_name(name)}-{validate_slot(slot)}"


def parse_program(program: str) -> tuple[str, str] | None:
    """'shop-test' → ('shop', 'test'); None for anything that is not one of our slots."""
    match = PROGRAM_RE.fullmatch(program)
    return (match["name"], match["slot"]) if match else None


def is_ours(group: str) -> bool:
    """Whether a program or group is a project slot (and so ours to change)."""
    return parse_program(group) is not None


class ProcessState(StrEnum):
    """A slot's process state, by supervisord's names (every runner reports these)."""

    STOPPED = "STOPPED"  # not running, and not meant to be (never started, or stopped)
    STARTING = "STARTING"  # started, not yet up for long enough to count as running
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"  # exited while starting; started again after a delay
    STOPPING = "STOPPING"
    EXITED = "EXITED"  # exited while running (restarted at once)
    FATAL = "FATAL"  # exited while starting too many times: given up
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class ProcessInfo:
    """One slot's process as its runner reports it (`name` and `group` are NAME-SLOT)."""

    name: str
    group: str
    state: str  # a ProcessState (its names compare equal to plain strings)
    pid: int
    start: float
    stop: float
    now: float
    exitstatus: int  # of the last exit while running; kept until the next one
    description: str
    spawnerr: str = ""

    @property
    def uptime(self) -> float:
        """Seconds since it started, while it runs; 0 otherwise."""
        return max(0.0, self.now - self.start) if self.state == ProcessState.RUNNING else 0.0


@dataclass(frozen=True)
class SlotEvent:
    """One state change of a slot's process, as the runner saw it happen."""

    time: float  # wall clock
    name: str
    slot: str
    state: ProcessState
    previous: str  # the state it left
    pid: int = 0  # of the process that changed (EXITED: the one that died)
    expected: bool | None = None  # EXITED: whether the exit status was an expected one
    # EXITED: the exit status (minus the signal that killed it); None when the runner could
    # not learn it (supervisord: the app died within moments of counting as started)
    exitstatus: int | None = None

    @property
    def program(self) -> str:
        return program_name(self.name, self.slot)


@dataclass(frozen=True)
class SlotLines:
    """Lines of a slot's output, stdout and stderr told apart."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


class EventFeed(Protocol):
    """The state changes of every slot from the moment the feed was made."""

    def read_new(self) -> list[SlotEvent]:
        """The events since the last call, oldest first."""
        ...


class LogFeed(Protocol):
    """A slot's output from the moment the feed was made."""

    def read_new(self) -> SlotLines:
        """The complete lines each stream gained since the last call."""
        ...


class Runner(Protocol):
    """What the engine asks of the process manager. A method that cannot do its work raises
    a ControlPlaneError that says why (the manager is down, refused, …)."""

    def place(self, project: Project, slot: str, *, autostart: bool) -> bool:
        """Put the slot's program in place to run the code the slot points at, started
        with the runner (and after a restart of the runner) when `autostart`. Cheap when
        nothing changed (a link flip needs no new program). True when the runner made or
        remade the program just now, which starts it when `autostart`."""
        ...

    def switch(self, project: Project, slot: str, release: Path) -> bool:
        """Point the slot at a built release, atomically; a running app keeps its code
        until it is restarted. False when the slot pointed there already."""
        ...

    def remove(self, project: Project, slot: str) -> bool:
        """Stop the slot and take its program and its pointer away; True when there was a
        program."""
        ...

    def start(self, name: str, slot: str) -> bool:
        """Start the slot's app without waiting for it to count as running; False when it
        runs already."""
        ...

    def stop(self, name: str, slot: str) -> bool:
        """Stop the slot's app and every process it started, and wait until they are gone;
        False when it was not running."""
        ...

    def restart(self, name: str, slot: str) -> None:
        """Stop (as `stop`), then start (as `start`): a new process on the code the slot
        points at now."""
        ...

    def status(self, name: str, slot: str) -> ProcessInfo | None:
        """The slot's process; None when the runner has no program for it."""
        ...

    def statuses(self) -> list[ProcessInfo]:
        """Every slot's process the runner has (ours only), in one request."""
        ...

    def tail(self, name: str, slot: str, lines: int) -> SlotLines:
        """The last `lines` lines of each of the slot's streams."""
        ...

    def follow(self, name: str, slot: str) -> LogFeed:
        """A feed of the slot's output from now on."""
        ...

    def events(self) -> EventFeed:
        """A feed of every slot's state changes from now on."""
        ...

    def drop_release(self, project: Project, release: Path) -> None:
        """The release is pruned (its folder goes next): drop what the runner keeps for it
        (the Swarm runner: its image). Never raises: what cannot be dropped is logged."""
        ...

    def manager_pid(self) -> int | None:
        """The pid of the process on this host that the apps run under (their parent), so
        a sweep of stray processes can spare them; None when unknown or not local."""
        ...
