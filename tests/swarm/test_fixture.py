"""The test swarm itself (tests/support/swarm.py): two nodes, placement by label, images
from the registry, and failover when a node's engine freezes."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.swarm import Swarm
from tests.support.swarm_parts import wait_for

APP = (
    'import socket, time\nprint("hello from", socket.gethostname(), flush=True)\n'
    "time.sleep(100000)\n"
)


def service_logs(swarm: Swarm, service: str) -> str:
    return swarm.docker("service", "logs", "--raw", service)


def test_two_nodes_are_ready_with_their_own_names(swarm: Swarm) -> None:
    rows = swarm.docker(
        "node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.Availability}}"
    ).splitlines()
    assert sorted(rows) == sorted(f"{n.hostname} Ready Active" for n in swarm.nodes)
    assert (
        swarm.docker("node", "inspect", "-f", "{{.Status.Addr}}", swarm.worker.node_id)
        == swarm.worker.address
    )


def test_a_service_pinned_by_a_node_label_runs_on_the_second_node(clean_swarm: Swarm) -> None:
    swarm = clean_swarm
    swarm.docker("node", "update", "--label-add", "site=home", swarm.worker.node_id)
    swarm.docker(
        "service", "create", "--detach", "--name", "pinned",
        "--constraint", "node.labels.site==home", "--network", "host",
        swarm.base_image, "python3", "-c", APP,
    )  # fmt: skip

    assert swarm.task_node("pinned") == swarm.worker.hostname
    wait_for("the app's greeting", lambda: "hello from" in service_logs(swarm, "pinned"), 60)
    # --network host on the worker: the node's own name (its UTS namespace) and veth
    assert f"hello from {swarm.worker.hostname}" in service_logs(swarm, "pinned")


def test_an_image_pushed_to_the_registry_runs_on_the_second_node(
    clean_swarm: Swarm, tmp_path: Path
) -> None:
    swarm = clean_swarm
    (tmp_path / "app.py").write_text(APP.replace("hello from", "release 7 on"))
    (tmp_path / "Dockerfile").write_text(
        f'FROM {swarm.base_image}\nCOPY app.py /app/app.py\nCMD ["python3", "/app/app.py"]\n'
    )
    image = f"{swarm.registry}/cp-fixture:7"
    swarm.docker("build", "--network", "host", "-q", "-t", image, str(tmp_path), timeout=300)
    swarm.docker("push", "-q", image, timeout=300)
    repository = image.rsplit(":", 1)[0]
    assert (
        repository not in swarm.worker.docker("image", "ls", "--format", "{{.Repository}}").split()
    )

    swarm.docker(
        "service", "create", "--detach", "--name", "release",
        "--constraint", "node.labels.cptest==worker", "--network", "host", image,
    )  # fmt: skip

    assert swarm.task_node("release", timeout=300) == swarm.worker.hostname
    wait_for("release 7's greeting", lambda: "release 7 on" in service_logs(swarm, "release"), 60)
    # pulled from the registry by the worker (a service pins the image by digest: no tag)
    assert repository in swarm.worker.docker("image", "ls", "--format", "{{.Repository}}").split()


def test_a_frozen_node_is_marked_down_and_its_task_runs_again_elsewhere(clean_swarm: Swarm) -> None:
    swarm = clean_swarm
    # the task starts on the worker: the manager takes none while it is drained
    swarm.docker("node", "update", "--availability", "drain", swarm.manager.node_id)
    swarm.docker(
        "service",
        "create",
        "--detach",
        "--name",
        "moving",
        "--replicas",
        "1",
        swarm.base_image,
        "sleep",
        "100000",
    )
    assert swarm.task_node("moving", timeout=300) == swarm.worker.hostname
    swarm.docker("node", "update", "--availability", "active", swarm.manager.node_id)

    with swarm.worker.frozen():
        t0 = time.monotonic()
        down = wait_for(
            "the frozen worker marked down", lambda: swarm.node_state(swarm.worker) == "down", 120
        )
        running = [swarm.manager.hostname]
        wait_for(
            "the task running on the manager",
            lambda: [n for _, n in swarm.running_tasks("moving")] == running,
            120,
        )
        again = time.monotonic() - t0
        print(
            f"\nswarm failover: worker down after {down:.1f} s,"
            f" task running on the manager after {again:.1f} s"
        )
        assert (
            swarm.docker("node", "ls", "--filter", "role=worker", "--format", "{{.Status}}")
            == "Down"
        )
