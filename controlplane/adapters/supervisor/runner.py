"""supervisord as the Runner (controlplane.domain.runner): one program per slot.

A slot's program runs `controlplane run-slot NAME SLOT`, which runs the code in the slot's
folder, a link to a release (links.py): so switching a slot to a release is a link switch,
and the next start runs it. Placing a slot writes its program file and applies it only
when something changed or supervisord does not know the program yet; a link flip rereads
no program file (a rollback's hot path). The slot's output is read from the log files
supervisord writes, its state changes from the event listener's events.jsonl (events.py).

Every call opens its own connection (`with Supervisor(...)`): the executor runs the
operations of several projects at once, and a connection is not for sharing by threads.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from controlplane.adapters.supervisor.client import (
    ProgramOptions,
    Supervisor,
    remove_program,
    slot_logs,
    write_program,
)
from controlplane.adapters.supervisor.events import EventTail
from controlplane.adapters.supervisor.links import link_target, remove_link, switch_link
from controlplane.adapters.tail import FileCursor, last_lines
from controlplane.domain.models import Project
from controlplane.domain.runner import (
    ProcessInfo,
    ProcessState,
    SlotEvent,
    SlotLines,
    is_ours,
    parse_program,
    program_name,
)
from controlplane.errors import ControlPlaneError
from controlplane.settings import Settings

logger = logging.getLogger(__name__)


class SupervisorRunner:
    """The Runner protocol over this box's supervisord. `options` are the program knobs
    besides autostart (start and stop timings, log rotation)."""

    def __init__(
        self,
        settings: Settings,
        *,
        options: ProgramOptions | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.options = options or ProgramOptions()
        self.timeout = timeout

    def _client(self) -> Supervisor:
        return Supervisor(self.settings, timeout=self.timeout)

    # -- programs and links -------------------------------------------------------------

    def place(self, project: Project, slot: str, *, autostart: bool) -> bool:
        options = replace(self.options, autostart=autostart)
        changed = write_program(self.settings, project, slot, options=options)
        program = program_name(project.name, slot)
        with self._client() as client:
            if not changed and client.find(program) is not None:
                return False
            plan = client.apply()
        return program in (*plan.added, *plan.changed)

    def switch(self, project: Project, slot: str, release: Path) -> bool:
        link = self.settings.layout.slot_code(project, slot)
        if link_target(link) == release.resolve():
            return False
        switch_link(link, release)
        return True

    def remove(self, project: Project, slot: str) -> bool:
        program = program_name(project.name, slot)
        with self._client() as client:
            if client.find(program) is not None:
                client.stop(program)
            existed = remove_program(self.settings, project.name, slot)
            client.apply()
        remove_link(self.settings.layout.slot_code(project, slot))
        return existed

    # -- processes ----------------------------------------------------------------------

    def start(self, name: str, slot: str) -> bool:
        with self._client() as client:
            return client.start(program_name(name, slot), wait=False)

    def stop(self, name: str, slot: str) -> bool:
        with self._client() as client:
            return client.stop(program_name(name, slot))

    def restart(self, name: str, slot: str) -> None:
        program = program_name(name, slot)
        with self._client() as client:
            client.stop(program)
            client.start(program, wait=False)

    def status(self, name: str, slot: str) -> ProcessInfo | None:
        with self._client() as client:
            return client.find(program_name(name, slot))

    def statuses(self) -> list[ProcessInfo]:
        with self._client() as client:
            return [i for i in client.all_info() if is_ours(i.group)]

    def drop_release(self, project: Project, release: Path) -> None:
        """Nothing: supervisord keeps nothing of a release (its folder is the engine's)."""

    def manager_pid(self) -> int | None:
        try:
            with self._client() as client:
                return int(client.call("getPID"))
        except ControlPlaneError:
            return None

    # -- output and state changes --------------------------------------------------------

    def tail(self, name: str, slot: str, lines: int) -> SlotLines:
        out_log, err_log = slot_logs(self.settings, name, slot)
        return SlotLines(stdout=last_lines(out_log, lines), stderr=last_lines(err_log, lines))

    def follow(self, name: str, slot: str) -> LogFiles:
        return LogFiles(*slot_logs(self.settings, name, slot))

    def events(self) -> ListenerEvents:
        return ListenerEvents(EventTail(self.settings.layout.events_log))


class LogFiles:
    """A slot's stdout and stderr files from now on (a LogFeed)."""

    def __init__(self, stdout: Path, stderr: Path) -> None:
        self.stdout = FileCursor(stdout)
        self.stderr = FileCursor(stderr)

    def read_new(self) -> SlotLines:
        return SlotLines(stdout=self.stdout.read_new(), stderr=self.stderr.read_new())


class ListenerEvents:
    """The event listener's records of our slots from now on (an EventFeed)."""

    def __init__(self, tail: EventTail) -> None:
        self.tail = tail

    def read_new(self) -> list[SlotEvent]:
        events = (slot_event(record) for record in self.tail.read_new())
        return [e for e in events if e is not None]


def slot_event(record: dict[str, Any]) -> SlotEvent | None:
    """One events.jsonl record as a SlotEvent; None when it is not about one of our slots."""
    slot = parse_program(str(record.get("program", "")))
    try:
        state = ProcessState(str(record.get("state")))
    except ValueError:
        return None
    if slot is None:
        return None
    exitstatus = record.get("exitstatus")
    return SlotEvent(
        time=float(record.get("time", 0.0)),
        name=slot[0],
        slot=slot[1],
        state=state,
        previous=str(record.get("from", "")),
        pid=int(record.get("pid", 0)),
        expected=record.get("expected"),
        exitstatus=int(exitstatus) if exitstatus is not None else None,
    )
