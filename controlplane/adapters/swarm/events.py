"""Every slot's state changes, from the swarm's tasks (an EventFeed).

The engine's events stream carries a container's start and death only on the node that
ran it; the tasks are the swarm's record of every node. So the feed reads our services'
tasks on each call and tells what changed since the last one: a task that runs
(RUNNING), one that ended while it ran (EXITED, with its exit status), one that failed
before it was seen running (BACKOFF), one shut down on purpose (STOPPED). Changes between
two calls are not lost: a task seen for the first time in an end state still tells how
it ended.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from controlplane.adapters.swarm.client import LABEL_SLOT, engine_error, parse_time
from controlplane.adapters.swarm.services import lifetime
from controlplane.domain.runner import ProcessState, SlotEvent, parse_program

RAN_AFTER = 5.0  # seconds


@dataclass
class Seen:
    state: str
    pid: int


def our_services(api: Any) -> dict[str, tuple[str, str]]:
    """Service id → (name, slot) of every slot's service."""
    try:
        services = api.services(filters={"label": LABEL_SLOT})
    except Exception as exc:
        raise engine_error(exc) from exc
    found: dict[str, tuple[str, str]] = {}
    for service in services:
        slot = parse_program(service["Spec"]["Labels"].get(LABEL_SLOT, ""))
        if slot is not None:
            found[service["ID"]] = slot
    return found


class TaskEvents:
    """Our slots' task changes from the moment it was made."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.seen: dict[str, Seen] = {}
        self.since = time.time()
        self._read()  # what is there now is not news

    def _read(self) -> list[tuple[dict[str, Any], tuple[str, str]]]:
        services = our_services(self.api)
        if not services:
            return []
        try:
            tasks = self.api.tasks()
        except Exception as exc:
            raise engine_error(exc) from exc
        tasks = sorted(tasks, key=lambda t: parse_time(t["Status"].get("Timestamp")))
        return [(t, services[t["ServiceID"]]) for t in tasks if t.get("ServiceID") in services]

    def read_new(self) -> list[SlotEvent]:
        events: list[SlotEvent] = []
        for task, (name, slot) in self._read():
            status = task["Status"]
            state = status["State"]
            pid = int(status.get("ContainerStatus", {}).get("PID", 0))
            before = self.seen.get(task["ID"])
            self.seen[task["ID"]] = Seen(state, pid or (before.pid if before else 0))
            if before is None and parse_time(task.get("CreatedAt")) < self.since:
                continue  # there before the feed
            if before is not None and before.state == state:
                continue
            event = change(task, name, slot, before)
            if event is not None:
                events.append(event)
        return events


def change(task: dict[str, Any], name: str, slot: str, before: Seen | None) -> SlotEvent | None:
    """The event a task's new state makes, if it is one we tell."""
    status = task["Status"]
    state = status["State"]
    when = parse_time(status.get("Timestamp")) or time.time()
    pid = before.pid if before else 0
    if state == "running":
        pid = int(status.get("ContainerStatus", {}).get("PID", 0))
        return SlotEvent(when, name, slot, ProcessState.RUNNING, ProcessState.STARTING, pid)
    if state not in ("failed", "complete", "shutdown", "rejected"):
        return None
    code = status.get("ContainerStatus", {}).get("ExitCode")
    exitstatus = int(code) if code is not None else None
    # a task that lived longer than a start takes ran, even if no call saw it running
    ran = (before is not None and before.state == "running") or lifetime(task) > RAN_AFTER
    if state == "shutdown":
        return SlotEvent(when, name, slot, ProcessState.STOPPED, ProcessState.STOPPING, pid)
    if ran:
        return SlotEvent(
            when,
            name,
            slot,
            ProcessState.EXITED,
            ProcessState.RUNNING,
            pid,
            expected=exitstatus == 0,
            exitstatus=exitstatus,
        )
    return SlotEvent(
        when,
        name,
        slot,
        ProcessState.BACKOFF,
        ProcessState.STARTING,
        pid,
        exitstatus=exitstatus,
    )
