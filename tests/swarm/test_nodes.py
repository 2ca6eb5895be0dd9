"""`controlplane nodes` on the real two-node swarm (tests/support/swarm.py): both nodes
with their architecture, labels and load; a drain moves a running task to the other node
and activate brings the node back."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

from tests.support.swarm import Swarm
from tests.support.swarm_parts import wait_for

APP = "import time\ntime.sleep(100000)\n"


def cli(swarm: Swarm, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**swarm.env(), "LANG": "C.UTF-8", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": ""}
    return subprocess.run(
        [sys.executable, "-m", "controlplane", "nodes", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def listed(swarm: Swarm) -> dict[str, dict[str, object]]:
    proc = cli(swarm, "--json")
    assert proc.returncode == 0, proc.stderr
    return {node["hostname"]: node for node in json.loads(proc.stdout)}


def test_nodes_lists_both_nodes_with_architecture_labels_and_load(clean_swarm: Swarm) -> None:
    swarm = clean_swarm
    nodes = listed(swarm)
    manager, worker = nodes[swarm.manager.hostname], nodes[swarm.worker.hostname]
    assert set(nodes) == {swarm.manager.hostname, swarm.worker.hostname}
    for node, label in ((manager, "manager"), (worker, "worker")):
        assert node["arch"] == platform.machine()
        assert node["labels"] == {"cptest": label}
        assert (node["state"], node["availability"]) == ("ready", "active")
        assert node["cpus"] and node["memory"]
    assert manager["role"] == "manager" and manager["leader"] is True
    assert worker["role"] == "worker"
    # the load is read on this machine's node only (the manager's engine is local here)
    assert manager["load"] and manager["load"]["memory_total"] > 0
    assert worker["load"] is None and worker["load_reason"]

    shown = cli(swarm)
    print(shown.stdout)
    assert shown.returncode == 0, shown.stderr
    blocks = shown.stdout.split("\n\n")
    assert blocks[0].startswith(f"{swarm.manager.hostname}  manager, leader · ready · active")
    assert blocks[1].startswith(f"{swarm.worker.hostname}  worker · ready · active")
    assert f"  {platform.machine()} · linux · engine " in blocks[1]
    assert "  labels: cptest=worker" in blocks[1]
    assert "  load: CPU " in blocks[0] and "  load: — (Swarm does not report" in blocks[1]


def test_drain_moves_the_task_away_and_activate_brings_the_node_back(clean_swarm: Swarm) -> None:
    swarm = clean_swarm
    swarm.docker(
        "service", "create", "--detach", "--name", "cp-nodes-prod",
        "--label", "controlplane.slot=nodes-prod", swarm.base_image, "python3", "-c", APP,
    )  # fmt: skip
    first = swarm.task_node("cp-nodes-prod")
    other = next(n.hostname for n in swarm.nodes if n.hostname != first)
    wait_for("our task counted", lambda: listed(swarm)[first]["tasks"] == 1, 60)

    drained = cli(swarm, "drain", first)
    assert drained.returncode == 0, drained.stderr
    assert drained.stdout.strip() == (
        f"{first} drained (manager, leader · ready · drained): its tasks move to the other nodes"
        if first == swarm.manager.hostname
        else f"{first} drained (worker · ready · drained): its tasks move to the other nodes"
    )
    wait_for(
        f"the task on {other}",
        lambda: [n for _, n in swarm.running_tasks("cp-nodes-prod")] == [other],
        120,
    )
    nodes = listed(swarm)
    assert nodes[first]["availability"] == "drain" and nodes[first]["tasks"] == 0
    assert nodes[other]["tasks"] == 1

    activated = cli(swarm, "activate", first)
    assert activated.returncode == 0, activated.stderr
    assert f"{first} is active again" in activated.stdout
    assert listed(swarm)[first]["availability"] == "active"

    missing = cli(swarm, "drain", "no-such-node")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        "controlplane: error: no node no-such-node: the swarm's nodes are "
        + ", ".join(sorted(n.hostname for n in swarm.nodes))
    )


def test_labels_are_set_and_removed(clean_swarm: Swarm) -> None:
    swarm = clean_swarm
    worker = swarm.worker.hostname
    added = cli(swarm, "label", worker, "site=home")
    assert added.stdout.strip() == f"{worker}'s labels: cptest=worker, site=home", added.stderr
    assert listed(swarm)[worker]["labels"] == {"cptest": "worker", "site": "home"}
    removed = cli(swarm, "label", worker, "site-")
    assert removed.stdout.strip() == f"{worker}'s labels: cptest=worker", removed.stderr
