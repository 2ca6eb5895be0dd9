"""What the swarm runner does beyond the Runner contract (test_runner.py runs that against
it too): a switch alone keeps the running task, variables reach the app through a secret
and never show in the service or the image, the tail is the running task's only, a
release's image no node can get is said in plain words."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from docker.errors import ImageNotFound

from controlplane.adapters.swarm.client import LABEL_SLOT
from controlplane.adapters.swarm.images import image_ref
from controlplane.adapters.swarm.runner import SwarmRunner
from controlplane.adapters.swarm.services import LABEL_IMAGE, service_name
from controlplane.domain.models import Project
from controlplane.domain.runner import ProcessInfo, ProcessState
from tests.contracts.test_runner import wait_for

pytestmark = pytest.mark.timeout(900)  # the first test may wait for the swarm to start, cold

SAYS = (
    "import os, time\nprint({label!r}, os.environ.get('GREETING'), flush=True)\ntime.sleep(3600)\n"
)


def release(base: Path, label: str) -> Path:
    folder = base / "releases" / label
    folder.mkdir(parents=True)
    (folder / "main.py").write_text(SAYS.format(label=label))
    return folder


def live(runner: SwarmRunner, project: Project, base: Path, *labels: str) -> list[Path]:
    """Releases for `labels`, prod on the first, running."""
    folders = [release(base, label) for label in labels]
    runner.switch(project, "prod", folders[0])
    runner.place(project, "prod", autostart=True)
    running(runner, project.name)
    return folders


def running(runner: SwarmRunner, name: str, not_pid: int = 0) -> ProcessInfo:
    def probe() -> ProcessInfo | None:
        info = runner.status(name, "prod")
        ok = (
            info is not None and info.state == ProcessState.RUNNING and info.pid not in (0, not_pid)
        )
        return info if ok else None

    return wait_for(f"{name}-prod to run", probe, timeout=120)


def said(runner: SwarmRunner, name: str, needle: str) -> list[str]:
    def probe() -> list[str] | None:
        lines = runner.tail(name, "prod", 20).stdout
        return lines if any(needle in line for line in lines) else None

    return wait_for(f"{needle!r} in {name}-prod's tail", probe, timeout=60)


def service(runner: SwarmRunner, name: str) -> dict[str, Any]:
    found: dict[str, Any] = runner.api.inspect_service(service_name(name, "prod"))
    return found


def project(base: Path, name: str = "shop") -> Project:
    return Project(name=name, repo="https://example.com/x.git", path=str(base / name))


def test_a_switch_alone_keeps_the_running_task(swarm_runner: SwarmRunner, tmp_path: Path) -> None:
    shop = project(tmp_path)
    _, b = live(swarm_runner, shop, tmp_path, "A", "B")
    before = service(swarm_runner, "shop")
    assert swarm_runner.switch(shop, "prod", b) is True
    after = service(swarm_runner, "shop")
    # what the tasks run is unchanged, so Swarm starts no new task; the label moved
    assert after["Spec"]["TaskTemplate"] == before["Spec"]["TaskTemplate"]
    assert after["Spec"]["Labels"][LABEL_IMAGE].endswith(":B")
    assert said(swarm_runner, "shop", "A ")


def test_variables_reach_the_app_and_never_show_in_the_service_or_image(
    swarm_runner: SwarmRunner, tmp_path: Path
) -> None:
    variables = {"GREETING": "hello-s3cret-1"}
    swarm_runner.variables = lambda name, slot: dict(variables)
    shop = project(tmp_path)
    live(swarm_runner, shop, tmp_path, "A")
    said(swarm_runner, "shop", "A hello-s3cret-1")
    first = running(swarm_runner, "shop").pid
    variables["GREETING"] = "hello-s3cret-2"
    swarm_runner.restart("shop", "prod")
    running(swarm_runner, "shop", not_pid=first)
    said(swarm_runner, "shop", "A hello-s3cret-2")
    spec = json.dumps(service(swarm_runner, "shop"))
    image = json.dumps(
        swarm_runner.api.inspect_image(service(swarm_runner, "shop")["Spec"]["Labels"][LABEL_IMAGE])
    )
    assert "s3cret" not in spec and "s3cret" not in image
    versions = [s.name for s in swarm_runner.client.secrets.list(filters={"label": LABEL_SLOT})]
    assert versions == ["cp-shop-prod-env-2"]  # the first version went with its task


def test_the_tail_is_the_running_tasks_only(swarm_runner: SwarmRunner, tmp_path: Path) -> None:
    shop = project(tmp_path)
    _, b = live(swarm_runner, shop, tmp_path, "A", "B")
    said(swarm_runner, "shop", "A ")
    first = running(swarm_runner, "shop").pid
    swarm_runner.switch(shop, "prod", b)
    swarm_runner.restart("shop", "prod")
    running(swarm_runner, "shop", not_pid=first)
    lines = said(swarm_runner, "shop", "B ")
    assert not any(line.startswith("A ") for line in lines)


def test_an_image_no_node_can_get_is_said_plainly(
    swarm_runner: SwarmRunner, tmp_path: Path
) -> None:
    shop = project(tmp_path)
    live(swarm_runner, shop, tmp_path, "A")
    current = service(swarm_runner, "shop")
    nowhere = current["Spec"]["Labels"][LABEL_IMAGE].rsplit(":", 1)[0] + ":nowhere"
    labels = {**current["Spec"]["Labels"], LABEL_IMAGE: nowhere}
    swarm_runner.api.update_service(
        current["ID"], current["Version"]["Index"], labels=labels, fetch_current_spec=True
    )
    swarm_runner.restart("shop", "prod")

    def refused() -> ProcessInfo | None:
        info = swarm_runner.status("shop", "prod")
        return info if info is not None and "could get the image" in info.spawnerr else None

    info = wait_for("the missing image in the state", refused, timeout=120)
    assert nowhere in info.spawnerr


def test_a_release_that_fails_on_update_is_rolled_back_by_swarm(
    swarm_runner: SwarmRunner, tmp_path: Path
) -> None:
    shop = project(tmp_path)
    live(swarm_runner, shop, tmp_path, "A")
    first = running(swarm_runner, "shop").pid
    broken = tmp_path / "releases" / "C"
    broken.mkdir(parents=True)
    (broken / "main.py").write_text("raise SystemExit('C cannot start')\n")
    swarm_runner.switch(shop, "prod", broken)
    swarm_runner.restart("shop", "prod")

    def rolled_back() -> dict[str, Any] | None:
        spec = service(swarm_runner, "shop")
        done = spec.get("UpdateStatus", {}).get("State") == "rollback_completed"
        return spec if done else None

    spec = wait_for("Swarm's rollback", rolled_back, timeout=120)
    assert spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"].endswith(":A")
    running(swarm_runner, "shop", not_pid=first)  # A again, in a new task
    lines = said(swarm_runner, "shop", "A ")
    assert not any("C cannot start" in line for line in lines)


def test_a_frozen_nodes_slot_runs_again_on_the_other(
    swarm_runner: SwarmRunner, swarm_engine: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if os.environ.get("CP_TEST_SWARM_HOST"):
        pytest.skip("needs the two-node swarm (tests/support/swarm.py), not CP_TEST_SWARM_HOST")
    swarm = request.getfixturevalue("clean_swarm")  # nodes thawed and active again after
    manager, worker = swarm.manager, swarm.worker
    swarm.docker("node", "update", "--availability", "drain", manager.node_id)
    shop = project(tmp_path)
    live(swarm_runner, shop, tmp_path, "A")
    on_worker = running(swarm_runner, "shop")
    assert worker.node_id[:12] in on_worker.description
    swarm.docker("node", "update", "--availability", "active", manager.node_id)
    with worker.frozen():
        moved = running(swarm_runner, "shop", not_pid=on_worker.pid)
        assert manager.node_id[:12] in moved.description
        said(swarm_runner, "shop", "A ")


def test_a_stop_ends_an_app_without_a_sigterm_handler_at_once(
    swarm_runner: SwarmRunner, tmp_path: Path
) -> None:
    """The app is its container's PID 1, which the kernel spares a SIGTERM it has no
    handler for (it would be killed only when the grace ran out, exit 137); the runner
    stops with SIGINT, which every Python app handles: it ends by KeyboardInterrupt."""
    shop = project(tmp_path)
    live(swarm_runner, shop, tmp_path, "A")
    assert swarm_runner.stop("shop", "prod") is True
    tasks = swarm_runner.api.tasks(filters={"service": service_name("shop", "prod")})
    ended = [t for t in tasks if t["Status"]["State"] in ("shutdown", "complete", "failed")]
    assert ended, tasks
    codes = {t["Status"].get("ContainerStatus", {}).get("ExitCode") for t in ended}
    assert 137 not in codes, codes  # not killed at the end of the grace
    assert codes & {130, 2, 1}, codes  # KeyboardInterrupt (Python re-raises SIGINT: 130)


def test_a_pruned_release_takes_its_image_along_unless_a_task_uses_it(
    swarm_runner: SwarmRunner, tmp_path: Path
) -> None:
    """drop_release (the engine's prune) removes the release's image from the engine; the
    image of the running release stays (the engine refuses, the prune goes on)."""
    shop = project(tmp_path)
    a, b = live(swarm_runner, shop, tmp_path, "A", "B")
    assert swarm_runner.switch(shop, "prod", b) is True  # B's image is built now
    images = swarm_runner.client.images
    ref_a, ref_b = (image_ref(swarm_runner.registry, "shop", r) for r in (a, b))
    assert images.get(ref_b) is not None
    swarm_runner.drop_release(shop, b)  # never ran: it goes
    with pytest.raises(ImageNotFound):
        images.get(ref_b)
    swarm_runner.drop_release(shop, a)  # the running task's image: kept, no error
    assert images.get(ref_a) is not None
    assert running(swarm_runner, "shop").state == ProcessState.RUNNING
