"""The swarm's nodes through the docker SDK: list them, drain and activate one, label one.

Each node as the manager describes it: hostname, id, role (and whether it leads), state
(ready, down, unknown), availability (active, pause, drain), platform, engine version,
labels, CPUs and memory, and how many of our tasks (services labelled controlplane.slot)
run there now.

Load: the Swarm API reports no node's CPU, memory or disk use, and a node's own engine is
reachable only where its socket is. So the load is read for one node only, the one whose
engine we reach through a local unix socket (the engine of the machine we run on), from
the machine itself (psutil: CPU over a short sample, memory; the disk of the engine's data
root); every other node's load is None with the reason, shown as "—". A service on every
node reporting its load would give all of them; it is not worth a daemon yet.

The SDK is imported only when a client connects (client.connect).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from controlplane.adapters.swarm.client import LABEL_SLOT, connect, engine_error
from controlplane.errors import ControlPlaneError, NotFound, ValidationError
from controlplane.i18n import Text, tr

DOCKER_SOCK = Path("/var/run/docker.sock")
AVAILABILITY = ("active", "pause", "drain")
CPU_SAMPLE = 0.2  # seconds of CPU time measured for the local node's load


@dataclass(frozen=True)
class Load:
    """A node's use of its machine now (bytes, percent)."""

    cpu_percent: float
    memory_used: int
    memory_total: int
    disk_used: int
    disk_total: int


@dataclass(frozen=True)
class Node:
    """One node as the manager sees it."""

    id: str
    hostname: str
    role: str  # manager, worker
    leader: bool
    state: str  # ready, down, unknown, disconnected
    availability: str  # active, pause, drain
    arch: str
    os: str
    engine: str
    address: str
    labels: dict[str, str]
    cpus: float
    memory: int
    tasks: int  # our tasks running there now
    message: str = ""  # the manager's word on its state ("heartbeat failure", …)
    load: Load | None = None
    load_reason: Text | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["load_reason"] = str(self.load_reason) if self.load_reason else None
        return data


def engine_where(env: Mapping[str, str] | None = None, sock: Path = DOCKER_SOCK) -> str | None:
    """The engine we would ask (DOCKER_HOST, or the socket when it is there), or None."""
    env = os.environ if env is None else env
    if env.get("DOCKER_HOST"):
        return env["DOCKER_HOST"]
    return f"unix://{sock}" if sock.exists() else None


def no_engine(sock: Path = DOCKER_SOCK) -> ControlPlaneError:
    return ControlPlaneError(
        tr(
            "no swarm here: DOCKER_HOST is unset and there is no Docker socket at {path} "
            "(docs/multihost.md tells how to set up a swarm)",
            path=str(sock),
        )
    )


def manager_client(where: str, timeout: float = 15.0) -> tuple[Any, str]:
    """A client of the engine at `where` and the id of that engine's own node; raises a
    ControlPlaneError when it cannot be reached or is not a swarm manager."""
    client = connect(where, timeout=timeout)
    try:
        swarm = client.info().get("Swarm") or {}
    except Exception as exc:
        client.close()
        raise engine_error(exc, where) from exc
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        client.close()
        raise ControlPlaneError(
            tr(
                "no swarm here: the Docker engine at {where} is not a swarm manager "
                "(docs/multihost.md tells how to set up a swarm)",
                where=where,
            )
        )
    return client, str(swarm.get("NodeID", ""))


def list_nodes(client: Any, where: str, local_id: str) -> list[Node]:
    """Every node, managers first, then by hostname; the load of the local one only."""
    try:
        raw = client.api.nodes()
        tasks = our_tasks(client)
        root = str(client.info().get("DockerRootDir") or "/")
    except Exception as exc:
        raise engine_error(exc, where) from exc
    local = local_id if where.startswith("unix://") else ""
    nodes = [node_of(n, tasks.get(n["ID"], 0), local, root) for n in raw]
    return sorted(nodes, key=lambda n: (n.role != "manager", n.hostname, n.id))


def our_tasks(client: Any) -> dict[str, int]:
    """How many of our services' tasks run on each node (node id → count)."""
    ours = {s["ID"] for s in client.api.services(filters={"label": LABEL_SLOT})}
    counts: dict[str, int] = {}
    for task in client.api.tasks(filters={"desired-state": "running"}):
        running = (task.get("Status") or {}).get("State") == "running"
        if running and task.get("ServiceID") in ours and task.get("NodeID"):
            counts[task["NodeID"]] = counts.get(task["NodeID"], 0) + 1
    return counts


def node_of(raw: Mapping[str, Any], tasks: int, local_id: str, root: str) -> Node:
    """A node from the engine's description of it."""
    spec, desc = raw.get("Spec") or {}, raw.get("Description") or {}
    status, manager = raw.get("Status") or {}, raw.get("ManagerStatus") or {}
    platform, res = desc.get("Platform") or {}, desc.get("Resources") or {}
    if raw["ID"] != local_id:
        load, reason = None, not_readable(local_id)
    else:
        load, reason = local_load(root), None
    return Node(
        id=str(raw["ID"]),
        hostname=str(desc.get("Hostname", "")),
        role=str(spec.get("Role", "")),
        leader=bool(manager.get("Leader")),
        state=str(status.get("State", "unknown")),
        availability=str(spec.get("Availability", "")),
        arch=str(platform.get("Architecture", "")),
        os=str(platform.get("OS", "")),
        engine=str((desc.get("Engine") or {}).get("EngineVersion", "")),
        address=str(status.get("Addr", "")),
        labels=dict(spec.get("Labels") or {}),
        cpus=int(res.get("NanoCPUs", 0)) / 1e9,
        memory=int(res.get("MemoryBytes", 0)),
        tasks=tasks,
        message=str(status.get("Message", "")),
        load=load,
        load_reason=reason,
    )


def not_readable(local_id: str) -> Text:
    if local_id:
        return tr("Swarm does not report a node's load; it is read on this machine's node only")
    return tr("Swarm does not report a node's load, and no node's engine is on this machine")


def local_load(root: str) -> Load:
    """This machine's CPU (a short sample), memory, and the disk of the engine's data root
    (the root filesystem when that folder is not visible here)."""
    import psutil

    memory = psutil.virtual_memory()
    disk = shutil.disk_usage(root if os.path.isdir(root) else "/")
    return Load(
        cpu_percent=float(psutil.cpu_percent(interval=CPU_SAMPLE)),
        memory_used=int(memory.total - memory.available),
        memory_total=int(memory.total),
        disk_used=int(disk.used),
        disk_total=int(disk.total),
    )


def find(client: Any, name: str, where: str) -> Any:
    """The SDK's Node for a hostname, an id or a unique id prefix; NotFound naming the
    nodes there are."""
    try:
        nodes = client.nodes.list()
    except Exception as exc:
        raise engine_error(exc, where) from exc
    for node in nodes:
        if name in (node.id, node.attrs["Description"].get("Hostname")):
            return node
    prefixed = [n for n in nodes if len(name) >= 4 and n.id.startswith(name)]
    if len(prefixed) == 1:
        return prefixed[0]
    known = ", ".join(sorted(n.attrs["Description"].get("Hostname", n.id) for n in nodes))
    raise NotFound(tr("no node {name}: the swarm's nodes are {known}", name=name, known=known))


def update_spec(
    client: Any, name: str, where: str, change: Callable[[dict[str, Any]], None]
) -> None:
    """Change the node's spec in place with `change`, keeping its version (so a concurrent
    change is not undone: on a conflict the node is read again and changed once more)."""
    for attempt in range(3):
        node = find(client, name, where)
        spec = dict(node.attrs["Spec"])
        change(spec)
        try:
            node.update(spec)
            return
        except Exception as exc:
            out_of_sequence = "out of sequence" in str(exc).lower()
            if not out_of_sequence or attempt == 2:
                raise engine_error(exc, where) from exc


def set_availability(client: Any, name: str, where: str, availability: str) -> None:
    if availability not in AVAILABILITY:
        raise ValidationError(tr("availability"), availability, ", ".join(AVAILABILITY))
    update_spec(client, name, where, lambda spec: spec.update(Availability=availability))


def set_label(client: Any, name: str, where: str, key: str, value: str | None) -> None:
    """Add or change the label `key` (None removes it)."""

    def change(spec: dict[str, Any]) -> None:
        labels = spec["Labels"] = dict(spec.get("Labels") or {})
        if value is None:
            labels.pop(key, None)
        else:
            labels[key] = value

    update_spec(client, name, where, change)
