"""A slot as a swarm service cp-NAME-SLOT: its spec, and its tasks read as a ProcessInfo.

One replica while the slot runs, none while it is stopped. The restart policy retries
forever (with the policy's delay between tries); an update (a restart, a new release, new
variables) rolls back by itself when the new task fails within the monitor window.
Updates start the new task first only where two tasks can listen at once (an overlay
network); on the host's network the old one stops first, as on the one box.

Task states map onto supervisord's: a task being scheduled or started is STARTING, a
running one RUNNING (once no older task of the slot still runs), one that failed soon
after it was created BACKOFF while it is tried again, FATAL after `startretries` such
failures in a row (Swarm keeps trying, with its delay), or at once when the task was
rejected (no such image, no suitable node).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from controlplane.adapters.swarm.client import LABEL_PROJECT, LABEL_SLOT, parse_time, task_problem
from controlplane.adapters.swarm.images import APP_USER
from controlplane.domain.runner import ProcessInfo, ProcessState, program_name

LABEL_IMAGE = "controlplane.image"  # the release the slot points at (the next start runs it)
LABEL_SPEC = "controlplane.spec"  # digest of the program's shape (all but image, replicas)
NS = 1_000_000_000
PENDING = {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}
LIVE = PENDING | {"running"}
FAILED = {"failed", "rejected"}


def service_name(name: str, slot: str) -> str:
    return f"cp-{program_name(name, slot)}"


@dataclass(frozen=True)
class Shape:
    """Everything of a slot's service but its image, variables and replica count."""

    entry: str
    network: str = "host"
    restart_delay: float = 2.0
    stop_grace: float = 10.0
    monitor: float = 15.0  # an update's task that fails within this is rolled back
    constraints: tuple[str, ...] = ()

    @property
    def order(self) -> str:
        return "stop-first" if self.network == "host" else "start-first"

    def digest(self) -> str:
        text = json.dumps(self.__dict__, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def task_template(
    shape: Shape, *, name: str, slot: str, image: str, secret: Any, force: int = 0
) -> dict[str, Any]:
    """The service's TaskTemplate: the image's entrypoint runs `shape.entry` as nobody,
    the variables in a secret file, the slot's data on a volume at /data."""
    program = program_name(name, slot)
    container = {
        "Image": image,
        "Args": [shape.entry],
        "Env": [
            f"CONTROLPLANE_SLOT={slot}",
            "APP_DATA_DIR=/data",
            "HOME=/data",
            "LANG=C.UTF-8",
            "PYTHONUNBUFFERED=1",
        ],
        "User": APP_USER,
        # The app is its container's PID 1, which the kernel spares signals it has no
        # handler for: a SIGTERM would wait out the grace. Python handles SIGINT from its
        # start (KeyboardInterrupt), so a stop ends every Python app at once. (docker-init
        # instead would make the task's pid tini's, not the app's.)
        "StopSignal": "SIGINT",
        "Labels": {LABEL_SLOT: program},
        "Secrets": [secret],
        "StopGracePeriod": int(shape.stop_grace * NS),
        "Mounts": [{"Type": "volume", "Source": f"cp-{program}-data", "Target": "/data"}],
        "DNSConfig": {},  # as the engine writes them back on an update: a labels-only
    }
    return {
        "ContainerSpec": container,
        "RestartPolicy": {"Condition": "any", "Delay": int(shape.restart_delay * NS)},
        "Resources": {},  # update then changes nothing the tasks run on (no new task)
        "Placement": {"Constraints": list(shape.constraints)},
        "Networks": [{"Target": shape.network}],
        "ForceUpdate": force,
    }


def update_config(shape: Shape) -> dict[str, Any]:
    return {
        "Parallelism": 1,
        "FailureAction": "rollback",
        "Monitor": int(shape.monitor * NS),
        "Order": shape.order,
    }


def rollback_config(shape: Shape) -> dict[str, Any]:
    return {
        "Parallelism": 1,
        "FailureAction": "pause",
        "Monitor": int(shape.monitor * NS),
        "Order": shape.order,
    }


def service_labels(shape: Shape, name: str, slot: str, image: str) -> dict[str, str]:
    return {
        LABEL_SLOT: program_name(name, slot),
        LABEL_PROJECT: name,
        LABEL_IMAGE: image,
        LABEL_SPEC: shape.digest(),
    }


def needs_nodes(tasks: list[dict[str, Any]]) -> bool:
    """Whether more than one task looks live, so the nodes' states decide which is."""
    return sum(t["Status"]["State"] in LIVE for t in tasks) > 1


def replicas(service: dict[str, Any]) -> int:
    return int(service["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas", 0))


# -- tasks as a process ----------------------------------------------------------------------


def lifetime(task: dict[str, Any]) -> float:
    """Seconds from the task's creation to its last state change."""
    return parse_time(task["Status"].get("Timestamp")) - parse_time(task.get("CreatedAt"))


def ordered(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Newest first."""
    return sorted(tasks, key=lambda t: parse_time(t.get("CreatedAt")), reverse=True)


def quick_failures(tasks: list[dict[str, Any]], startsecs: float, delay: float) -> int:
    """How many of the newest ended tasks in a row failed before they could count as
    started (created, waited the restart delay, ran less than `startsecs`)."""
    count = 0
    for task in tasks:
        state = task["Status"]["State"]
        if state in LIVE:
            continue
        if state == "rejected" or (state == "failed" and lifetime(task) < startsecs + delay + 1):
            count += 1
            continue
        break
    return count


@dataclass(frozen=True)
class Limits:
    """When a slot that keeps failing at start counts as given up."""

    startsecs: float = 1.0
    startretries: int = 3


def process_info(
    service: dict[str, Any],
    tasks: list[dict[str, Any]],
    limits: Limits,
    delay: float,
    down: frozenset[str] = frozenset(),
) -> ProcessInfo:
    """The slot's process as a supervisord-like ProcessInfo, from its service and tasks
    (`down`: the ids of the nodes that are down)."""
    program = service["Spec"]["Labels"].get(LABEL_SLOT, service["Spec"]["Name"])
    tasks = ordered(tasks)
    wanted = [t for t in tasks if t.get("DesiredState") in ("running", "ready")]
    current = wanted[0] if wanted else (tasks[0] if tasks else None)
    # a task on a node that is down counts as gone: its last state is stale
    tasks = [t for t in tasks if t is current or t.get("NodeID") not in down]
    state, pid, start, stop = _state(service, tasks, current, limits, delay)
    ended = [t for t in tasks if t["Status"]["State"] not in LIVE]
    exitstatus = (
        int(ended[0]["Status"].get("ContainerStatus", {}).get("ExitCode", 0)) if ended else 0
    )
    err = current["Status"].get("Err", "") if current else ""
    if not err and state in (ProcessState.FATAL, ProcessState.BACKOFF) and ended:
        err = ended[0]["Status"].get("Err", "")
    problem = task_problem(err)
    node = current.get("NodeID", "")[:12] if current else ""
    where = " ".join(("task", current["ID"][:12], "on node", node)) if current else ""
    return ProcessInfo(
        name=program,
        group=program,
        state=state,
        pid=pid,
        start=start,
        stop=stop,
        now=time.time(),
        exitstatus=exitstatus,
        description=where,
        spawnerr=str(problem) if problem else err,
    )


def _state(
    service: dict[str, Any],
    tasks: list[dict[str, Any]],
    current: dict[str, Any] | None,
    limits: Limits,
    delay: float,
) -> tuple[ProcessState, int, float, float]:
    """(state, pid, start, stop) of the slot."""
    running = [t for t in tasks if t["Status"]["State"] in LIVE]
    last_stop = max(
        (
            parse_time(t["Status"].get("Timestamp"))
            for t in tasks
            if t["Status"]["State"] not in LIVE
        ),
        default=0.0,
    )
    if replicas(service) == 0 or current is None:
        return (ProcessState.STOPPING if running else ProcessState.STOPPED), 0, 0.0, last_stop
    status = current["Status"]
    if status["State"] == "running" and all(t is current for t in running):
        pid = int(status.get("ContainerStatus", {}).get("PID", 0))
        return ProcessState.RUNNING, pid, parse_time(status.get("Timestamp")), last_stop
    failures = quick_failures(tasks, limits.startsecs, delay)
    if status["State"] == "rejected" or failures >= limits.startretries:
        return ProcessState.FATAL, 0, 0.0, last_stop
    if failures:
        return ProcessState.BACKOFF, 0, 0.0, last_stop
    if status["State"] == "complete":
        return ProcessState.EXITED, 0, 0.0, last_stop
    return ProcessState.STARTING, 0, 0.0, last_stop
