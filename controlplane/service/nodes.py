"""The swarm's nodes for both faces: list, drain, activate, label; and the lines that
describe a node (the CLI prints them, the bot puts them in one block per node).

The engine asked is DOCKER_HOST's, or the local socket's; read at each call, so the
environment decides (adapters/swarm/nodes.py). Nothing here needs the store or serve.
Whether the bot shows its 🖥 Nodes button (`shown`) is decided once in a while and never
imports the docker SDK on a box with no engine configured: an admin of a one-box install
is not bothered with nodes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from controlplane.adapters.swarm import nodes as swarm_nodes
from controlplane.adapters.swarm.nodes import DOCKER_SOCK, Load, Node
from controlplane.errors import ControlPlaneError
from controlplane.i18n import Percent, Size, Text, join, tr, verbatim

__all__ = ["Load", "Node", "Nodes", "describe", "headline"]

SHOWN_TTL = 300.0  # seconds a "swarm or not" answer for the bot's menu is kept


class Nodes:
    """The nodes of the swarm the environment points at (see the module docstring)."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        sock: Path = DOCKER_SOCK,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.env = env
        self.sock = sock
        self.clock = clock
        self._shown: tuple[str | None, float, bool] | None = None
        self._lock = threading.Lock()

    def _client(self, timeout: float = 15.0) -> tuple[Any, str, str]:
        where = swarm_nodes.engine_where(self.env, self.sock)
        if where is None:
            raise swarm_nodes.no_engine(self.sock)
        client, local = swarm_nodes.manager_client(where, timeout)
        return client, where, local

    def list(self) -> list[Node]:
        """Every node of the swarm; ControlPlaneError when there is none to ask."""
        client, where, local = self._client()
        try:
            return swarm_nodes.list_nodes(client, where, local)
        finally:
            client.close()

    def set_availability(self, name: str, availability: str) -> Node:
        """Drain (its tasks move to the other nodes), pause or activate a node; the node
        as it is then."""
        client, where, local = self._client()
        try:
            swarm_nodes.set_availability(client, name, where, availability)
            return self._one(client, where, local, name)
        finally:
            client.close()

    def drain(self, name: str) -> Node:
        return self.set_availability(name, "drain")

    def activate(self, name: str) -> Node:
        return self.set_availability(name, "active")

    def label(self, name: str, key: str, value: str | None) -> Node:
        """Set (or with None remove) a node's label; the node as it is then."""
        client, where, local = self._client()
        try:
            swarm_nodes.set_label(client, name, where, key, value)
            return self._one(client, where, local, name)
        finally:
            client.close()

    def _one(self, client: Any, where: str, local: str, name: str) -> Node:
        node_id = swarm_nodes.find(client, name, where).id
        return next(n for n in swarm_nodes.list_nodes(client, where, local) if n.id == node_id)

    def shown(self) -> bool:
        """Whether a swarm manager is reachable (for the bot's menu): False at once with no
        engine configured; otherwise asked at most every SHOWN_TTL seconds. Blocking."""
        where = swarm_nodes.engine_where(self.env, self.sock)
        if where is None:
            return False
        with self._lock:
            cached = self._shown
            if cached is not None and cached[0] == where and self.clock() - cached[1] < SHOWN_TTL:
                return cached[2]
            try:
                client, _where, _local = self._client(timeout=5.0)
                client.close()
                answer = True
            except ControlPlaneError:
                answer = False
            self._shown = (where, self.clock(), answer)
            return answer


def headline(node: Node) -> Text:
    """'manager, leader · ready · active' (the hostname is the face's to show)."""
    role = tr("manager") if node.role == "manager" else tr("worker")
    if node.leader:
        role = tr("{role}, leader", role=role)
    return join([role, state_text(node.state), availability_text(node.availability)], " · ")


def state_text(state: str) -> Text:
    names = {
        "ready": tr("ready"),
        "down": tr("down"),
        "unknown": tr("unknown"),
        "disconnected": tr("disconnected"),
    }
    return names.get(state) or verbatim(state)


def availability_text(availability: str) -> Text:
    names = {"active": tr("active"), "pause": tr("paused"), "drain": tr("drained")}
    return names.get(availability) or verbatim(availability)


def describe(node: Node) -> list[Text]:
    """The lines under a node's name: platform and size, labels, load, our tasks."""
    lines = [
        tr(
            "{arch} · {os} · engine {engine} · {cpus} CPU · {memory} · {address}",
            arch=node.arch,
            os=node.os,
            engine=node.engine,
            cpus=format(node.cpus, "g"),
            memory=Size(node.memory),
            address=node.address,
        ),
        tr("labels: {labels}", labels=", ".join(f"{k}={v}" for k, v in sorted(node.labels.items())))
        if node.labels
        else tr("labels: none"),
        load_text(node.load, node.load_reason),
        tr("our tasks running here: {n}", n=node.tasks),
    ]
    if node.message and node.state != "ready":
        lines.insert(0, tr("the manager says: {message}", message=node.message))
    return lines


def load_text(load: Load | None, reason: Text | None) -> Text:
    if load is None:
        return tr("load: — ({reason})", reason=reason or tr("not readable"))
    return tr(
        "load: CPU {cpu}, memory {mem_used} of {mem_total}, disk {disk_used} of {disk_total}",
        cpu=Percent(load.cpu_percent),
        mem_used=Size(load.memory_used),
        mem_total=Size(load.memory_total),
        disk_used=Size(load.disk_used),
        disk_total=Size(load.disk_total),
    )
