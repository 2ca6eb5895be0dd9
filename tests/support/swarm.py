"""A real two-node Docker Swarm for tests: `swarm` (session-scoped) and `clean_swarm`.

Usage (registered in tests/conftest.py; never import a fixture)::

    def test_something(clean_swarm: Swarm) -> None:
        env = clean_swarm.env()      # DOCKER_HOST, CONTROLPLANE_REGISTRY, CONTROLPLANE_BASE_IMAGE
        clean_swarm.docker("service", "create", "--name", "x", "--network", "host",
                           clean_swarm.base_image, "python3", "-c", "...")
        node = clean_swarm.task_node("x")          # "cpsw3-worker"
        with clean_swarm.worker.frozen():          # SIGSTOP of the worker's dockerd
            ...

What it gives:

- `manager`: a private `dockerd` in the host's network namespace (so `docker build
  --network host` reaches the package registries), the swarm's only manager, advertising
  10.213.N.1 (the host side of a veth pair) with 2377 and 7946 bound to that address only.
- `worker`: a second `dockerd` in its own network namespace `cpswN` (made with `ip netns
  add`, entered with `nsenter --net=`) and its own hostname, joined as a worker over the
  veth pair from 10.213.N.2. Both are `SwarmNode`s: `.docker(...)`, `.node_id`, `.hostname`,
  `.docker_host`, `.freeze()`/`.thaw()`/`.frozen()`. Their node labels: `cptest=manager`,
  `cptest=worker` (constraint `node.labels.cptest==worker` pins a service to the worker).
- `registry`: "10.213.N.1:5000", Debian's `docker-registry` as a plain process, plain HTTP;
  both daemons list 10.213.0.0/16 as insecure registries, so `docker push/pull REGISTRY/x`
  works from either node with no TLS.
- `base_image`: "REGISTRY/cp-base:bookworm-py3", Debian minbase + python3, python3-venv and
  ca-certificates, already in the registry (tests/support/swarm_base.py; cached between
  runs in $CP_BASE_CACHE, default /var/tmp/cp-bases). Use it as CONTROLPLANE_BASE_IMAGE.

Networking here (no bridge, no NAT, no forwarding: `--bridge=none --iptables=false
--ip-forward=false --ip-masq=false`): the ingress (routing mesh) network is removed right
after `swarm init`, so there are no published ports and no overlay networks. A service runs
either with no network (only loopback inside: the default) or with `--network host` (the
node's network: the worker's task sees the veth and reaches 10.213.N.1, e.g. the registry).
Services that must answer over the network use `--network host`; ports then are the
node's, so two tasks of one service on one node must not listen on the same port.

Failover: freezing the worker (SIGSTOP of its dockerd) makes the manager mark it Down after
about 15 s with Swarm's default 5 s heartbeat, and a replicated task runs again on the
manager about 5 s later (tests/swarm/test_fixture.py prints the figures).

`clean_swarm` is the same swarm, reset after the test (`Swarm.reset`): every service,
secret and config removed, both nodes thawed, Active and with only their `cptest` labels.
Tests that use `swarm` must remove what they create themselves.

Skips (printing why) only where no engine can run: not root, no `dockerd` and no apt-get,
`docker-registry` missing and not installable, no cached base and no debootstrap or apt.
Teardown at the end of the session stops everything (also after failed tests); a run
killed before its teardown leaves a slot under /tmp/cp-swarm that the next start cleans.
Tests using these fixtures (or with "swarm" in their file name or id) are marked `swarm`
(`pytest -m swarm`), with a 900 s timeout that covers a cold start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from tests.support import swarm_base
from tests.support.swarm_parts import (
    claim_slot,
    log,
    make_netns,
    names,
    run,
    start_dockerd,
    start_registry,
    teardown_slot,
    wait_for,
)

SWARM_FIXTURES = {"swarm", "clean_swarm"}
TIMEOUT = 900


@dataclass
class SwarmNode:
    """One engine of the test swarm."""

    hostname: str
    root: Path
    address: str
    pid: int
    node_id: str = ""

    @property
    def docker_host(self) -> str:
        return f"unix://{self.root / 'docker.sock'}"

    def env(self) -> dict[str, str]:
        """os.environ with DOCKER_HOST set to this node's engine."""
        return {**os.environ, "DOCKER_HOST": self.docker_host}

    def docker(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        """`docker ARGS` against this node; its stdout (stripped). Raises on failure."""
        return run(["docker", *args], env=self.env(), check=check, timeout=timeout).stdout.strip()

    def freeze(self) -> None:
        """SIGSTOP of this node's dockerd: the node stops answering the swarm (its
        containers keep running, as on a host whose engine hangs)."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    @contextmanager
    def frozen(self) -> Iterator[None]:
        self.freeze()
        try:
            yield
        finally:
            self.thaw()


@dataclass
class Swarm:
    """The running two-node swarm (see the module docstring)."""

    manager: SwarmNode
    worker: SwarmNode
    registry: str
    base_image: str
    root: Path

    @property
    def nodes(self) -> tuple[SwarmNode, SwarmNode]:
        return (self.manager, self.worker)

    def env(self) -> dict[str, str]:
        """os.environ plus what the control plane needs to drive this swarm."""
        return {
            **self.manager.env(),
            "CONTROLPLANE_REGISTRY": self.registry,
            "CONTROLPLANE_BASE_IMAGE": self.base_image,
        }

    def docker(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        """`docker ARGS` against the manager."""
        return self.manager.docker(*args, check=check, timeout=timeout)

    def node_state(self, node: SwarmNode) -> str:
        """The node's state as the manager sees it: "ready", "down", …"""
        return self.docker("node", "inspect", "-f", "{{.Status.State}}", node.node_id)

    def is_ready(self, node: SwarmNode) -> bool:
        return self.node_state(node) == "ready"

    def running_tasks(self, service: str) -> list[tuple[str, str]]:
        """(task id, node hostname) of the service's tasks that are running now."""
        out = self.docker(
            "service",
            "ps",
            service,
            "--filter",
            "desired-state=running",
            "--format",
            "{{.ID}} {{.Node}} {{.CurrentState}}",
        )
        rows = [line.split() for line in out.splitlines()]
        return [(row[0], row[1]) for row in rows if len(row) > 2 and row[2] == "Running"]

    def task_node(self, service: str, timeout: float = 120) -> str:
        """The hostname of the node the service's single task runs on, once it runs."""
        wait_for(
            f"a running task of {service}", lambda: len(self.running_tasks(service)) == 1, timeout
        )
        return self.running_tasks(service)[0][1]

    def reset(self) -> None:
        """Back to the state at start: no services, secrets or configs, nodes thawed, Active,
        with only their `cptest` labels."""
        for node in self.nodes:
            node.thaw()
        for kind in ("service", "secret", "config"):
            ids = self.docker(kind, "ls", "-q").split()
            if ids:
                self.docker(kind, "rm", *ids, check=False)
        for node in self.nodes:
            wait_for(f"{node.hostname} ready", partial(self.is_ready, node), 60)
            labels = self.docker(
                "node",
                "inspect",
                "-f",
                "{{range $k, $v := .Spec.Labels}}{{$k}} {{end}}",
                node.node_id,
            )
            extra = [f"--label-rm={k}" for k in labels.split() if k != "cptest"]
            self.docker("node", "update", "--availability=active", *extra, node.node_id)
        # the tasks' containers go at once (a PID 1 without a SIGTERM handler would take
        # the 10 s stop grace period)
        for node in self.nodes:
            left = node.docker("ps", "-aq").split()
            if left:
                node.docker("rm", "-f", *left, check=False)
        wait_for(
            "no containers left", lambda: not any(n.docker("ps", "-aq") for n in self.nodes), 60
        )


def why_no_engine() -> str | None:
    """Why no swarm can run here, or None; installs docker.io / docker-registry with apt
    when they are missing and apt-get is there."""
    if os.geteuid() != 0:
        return "needs root (private dockerd, network namespaces, mounts)"
    for tool in ("nsenter", "unshare", "ip"):
        if not shutil.which(tool):
            return f"{tool} not found"
    wanted = [
        pkg
        for cmd, pkg in (("dockerd", "docker.io"), ("docker-registry", "docker-registry"))
        if not shutil.which(cmd)
    ]
    if wanted:
        if not shutil.which("apt-get"):
            return f"{' and '.join(wanted)} not installed and no apt-get to install them"
        log(f"installing {' '.join(wanted)}")
        apt = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *wanted]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if run(apt, env=env, check=False, timeout=900).returncode != 0:
            run(["apt-get", "update", "-qq"], check=False, timeout=600)
            proc = run(apt, env=env, check=False, timeout=900)
            if proc.returncode != 0:
                return f"apt-get install {' '.join(wanted)} failed: {proc.stderr[-500:]}"
    if not shutil.which("docker"):
        return "no docker client"
    return swarm_base.missing_tools()


#: The processes this session started (waited for at teardown, so none is left a zombie).
CHILDREN: list[subprocess.Popen[bytes]] = []


def _start_node(root: Path, hostname: str, netns: str | None, address: str) -> SwarmNode:
    proc = start_dockerd(root, hostname, netns)
    CHILDREN.append(proc)
    node = SwarmNode(hostname=hostname, root=root, address=address, pid=proc.pid)
    try:
        wait_for(
            f"dockerd {hostname}",
            lambda: node.docker("version", "-f", "{{.Server.Version}}") != "",
            60,
        )
    except AssertionError:
        log((root / "dockerd.log").read_text()[-2000:])
        raise
    return node


def _network_gone(node: SwarmNode, name: str) -> bool:
    """Removes the local network `name` if it is there; True once it is not."""
    if name in node.docker("network", "ls", "--format", "{{.Name}}").split():
        node.docker("network", "rm", name, check=False)
    return name not in node.docker("network", "ls", "--format", "{{.Name}}").split()


def _form_swarm(manager: SwarmNode, worker: SwarmNode) -> None:
    """init on the manager, the ingress network and its docker_gwbridge removed, the worker
    joined, both labelled."""
    addr = manager.address
    manager.docker("swarm", "init", f"--advertise-addr={addr}", f"--listen-addr={addr}:2377")
    run(["docker", "network", "rm", "ingress"], env=manager.env(), input="y\n")
    wait_for(
        "ingress gone",
        lambda: "ingress" not in manager.docker("network", "ls", "--format", "{{.Name}}").split(),
        30,
    )
    wait_for("docker_gwbridge gone", lambda: _network_gone(manager, "docker_gwbridge"), 30)
    token = manager.docker("swarm", "join-token", "-q", "worker")
    worker.docker(
        "swarm",
        "join",
        f"--token={token}",
        f"--advertise-addr={worker.address}",
        f"--listen-addr={worker.address}:2377",
        f"{addr}:2377",
    )
    for node, label in ((manager, "manager"), (worker, "worker")):
        node.node_id = node.docker("info", "-f", "{{.Swarm.NodeID}}")
        manager.docker("node", "update", f"--label-add=cptest={label}", node.node_id)
    wait_for(
        "two nodes ready",
        lambda: (
            manager.docker("node", "ls", "--format", "{{.Status}}").split() == ["Ready", "Ready"]
        ),
        60,
    )


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def _start(n: int, slot: Path) -> Swarm:
    nm = names(n)
    t0 = time.monotonic()
    netns = make_netns(n)
    registry = f"{nm['host_ip']}:5000"
    cold = not swarm_base.unpack_cached(slot / "registry" / "storage")
    CHILDREN.append(start_registry(slot / "registry", nm["host_ip"]))
    wait_for(
        "the registry",
        partial(_answers, f"http://{registry}/v2/"),
        30,
    )
    manager = _start_node(slot / "manager", f"cpsw{n}-manager", None, nm["host_ip"])
    worker = _start_node(slot / "worker", f"cpsw{n}-worker", netns, nm["node_ip"])
    _form_swarm(manager, worker)
    if cold:
        swarm_base.build_and_push(
            registry, manager.env(), slot / "work", slot / "registry" / "storage"
        )
    swarm = Swarm(manager, worker, registry, f"{registry}/{swarm_base.repository_path()}", slot)
    log(
        f"swarm up in {time.monotonic() - t0:.1f} s: {manager.hostname} + {worker.hostname},"
        f" registry {registry}"
    )
    return swarm


def _stop(n: int, slot: Path, swarm: Swarm | None) -> None:
    t0 = time.monotonic()
    if swarm is not None:
        try:
            swarm.reset()
        except (AssertionError, RuntimeError, subprocess.TimeoutExpired) as exc:
            log(f"reset before teardown failed ({exc}); stopping anyway")
        swarm.worker.docker("swarm", "leave", "--force", check=False)
        swarm.manager.docker("swarm", "leave", "--force", check=False)
    teardown_slot(n, slot)
    while CHILDREN:
        CHILDREN.pop().wait(timeout=30)
    log(f"swarm torn down in {time.monotonic() - t0:.1f} s")


@contextmanager
def running_swarm() -> Iterator[Swarm]:
    """The two-node swarm in a slot of its own, torn down on leaving (also on an error);
    a run killed before that leaves its slot to the next start, which cleans it. For code
    outside pytest (bench/bench_swarm.py); call why_no_engine() first."""
    n, slot = claim_slot()
    started: Swarm | None = None
    try:
        started = _start(n, slot)
        yield started
    finally:
        _stop(n, slot, started)


@pytest.fixture(scope="session")
def swarm() -> Iterator[Swarm]:
    """The two-node swarm, started once per session (see the module docstring)."""
    reason = why_no_engine()
    if reason:
        print(f"SKIPPED (swarm): {reason}")
        pytest.skip(f"no swarm here: {reason}")
    with running_swarm() as started:
        yield started


@pytest.fixture
def clean_swarm(swarm: Swarm) -> Iterator[Swarm]:
    """The session's swarm, reset after the test (services, secrets, labels, frozen nodes)."""
    yield swarm
    swarm.reset()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "swarm: needs the real two-node swarm (tests/support/swarm.py)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests using the swarm (its fixtures, or "swarm" in their id, as the Runner contract's
    `[swarm]` cases that ask for it by `getfixturevalue`) are marked `swarm` and get a
    timeout that covers a cold start."""
    for item in items:
        uses = SWARM_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses or "swarm" in item.nodeid.rsplit("/", 1)[-1]:
            item.add_marker(pytest.mark.swarm)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(TIMEOUT))
