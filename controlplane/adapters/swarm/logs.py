"""A slot's output from the engine: the logs of its current task only.

The tasks' logs endpoint (/tasks/ID/logs) reaches the node the task runs on, wherever it
is; the stream is Docker's multiplexed one (8-byte frame headers name stdout or stderr).
`tail` reads the last lines of the slot's current task; `TaskLogs` (a LogFeed) reads
what was written since its last call, and moves to the next task when the slot's task is
replaced, from that task's first line.
"""

from __future__ import annotations

import struct
import time
from typing import Any

from controlplane.adapters.swarm.client import engine_error, parse_time
from controlplane.adapters.swarm.services import ordered
from controlplane.domain.runner import SlotLines

Line = tuple[int, float, str]  # (1 stdout / 2 stderr, time, text)


def demux(data: bytes) -> list[tuple[int, bytes]]:
    """Docker's multiplexed stream as (stream, payload) frames."""
    frames: list[tuple[int, bytes]] = []
    at = 0
    while at + 8 <= len(data):
        kind, size = struct.unpack(">BxxxL", data[at : at + 8])
        frames.append((kind, data[at + 8 : at + 8 + size]))
        at += 8 + size
    return frames


def task_lines(
    api: Any, task_id: str, *, tail: int | None = None, since: float = 0.0
) -> list[Line]:
    """The task's output lines with their times (since `since`, the last `tail`)."""
    params = {
        "stdout": 1,
        "stderr": 1,
        "timestamps": 1,
        "tail": str(tail) if tail is not None else "all",
        "since": f"{since:.9f}" if since else "0",
    }
    try:
        response = api._get(api._url("/tasks/{0}/logs", task_id), params=params)
        api._raise_for_status(response)
    except Exception as exc:  # APIError, connection
        raise engine_error(exc) from exc
    lines: list[Line] = []
    for kind, payload in demux(response.content):
        for raw in payload.decode("utf-8", errors="replace").splitlines():
            stamp, _, text = raw.partition(" ")
            lines.append((kind, parse_time(stamp), text))
    return lines


def split(lines: list[Line]) -> SlotLines:
    return SlotLines(
        stdout=[text for kind, _, text in lines if kind == 1],
        stderr=[text for kind, _, text in lines if kind == 2],
    )


def current_task(api: Any, service: str) -> dict[str, Any] | None:
    """The service's task meant to run now, else its newest; None without tasks."""
    try:
        tasks = ordered(api.tasks(filters={"service": service}))
    except Exception as exc:
        raise engine_error(exc) from exc
    wanted = [t for t in tasks if t.get("DesiredState") == "running"]
    return wanted[0] if wanted else (tasks[0] if tasks else None)


def tail(api: Any, service: str, count: int) -> SlotLines:
    """The last `count` lines of each stream of the slot's current task."""
    task = current_task(api, service)
    if task is None or count <= 0:
        return SlotLines()
    # the engine's tail counts the lines of both streams (also when asked for one), so
    # read further back until each stream has its lines or the log has no more
    asked = count
    for _ in range(4):
        lines = task_lines(api, task["ID"], tail=asked)
        got = split(lines)
        if len(lines) < asked or min(len(got.stdout), len(got.stderr)) >= count:
            break
        asked *= 4
    return SlotLines(stdout=got.stdout[-count:], stderr=got.stderr[-count:])


class TaskLogs:
    """A slot's output from now on (a LogFeed), following it from task to task."""

    def __init__(self, api: Any, service: str) -> None:
        self.api = api
        self.service = service
        self.since = time.time()
        self.task = ""
        self.last = self.since  # time of the last line read of self.task

    def read_new(self) -> SlotLines:
        task = current_task(self.api, self.service)
        if task is None or task["Status"]["State"] in ("new", "pending", "assigned"):
            return SlotLines()
        if task["ID"] != self.task:
            self.task = task["ID"]
            created = parse_time(task.get("CreatedAt"))
            self.last = self.since if created < self.since else 0.0
        lines = [
            x for x in task_lines(self.api, self.task, since=int(self.last)) if x[1] > self.last
        ]
        if lines:
            self.last = max(x[1] for x in lines)
        return split(lines)
