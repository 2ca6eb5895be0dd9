"""A project's whole life on the real two-node swarm (#17), through the CLI as a person
drives it: running here, moved onto the swarm with its running prod, deployed, tested
with a verdict, promoted, rolled back, a variable changed (in the app, never in the
service's spec), status and logs, pinned to the worker, and moved back to this box."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from controlplane.service.serve import reconcile_once
from tests.support.fixtures_release import ROOT, Plant
from tests.support.swarm import Swarm

# stdlib only: the image's build has no package index here
APP = """\
import os, pathlib, time
version = pathlib.Path("VERSION").read_text().strip()
greeting = os.environ.get("GREETING")
slot = os.environ.get("CONTROLPLANE_SLOT")
print(f"running commit {version} greeting={greeting} slot={slot}", flush=True)
while True:
    time.sleep(3600)
"""


def commit(plant: Plant, version: str) -> None:
    plant.origin.commit(f"version {version}", {"main.py": APP, "VERSION": version + "\n"})
    plant.origin.push()


def cli(plant: Plant, swarm: Swarm, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**plant.box.env, **swarm.env(), "CONTROLPLANE_ALLOW_FILE_URLS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "controlplane", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def ok(plant: Plant, swarm: Swarm, *args: str) -> str:
    done = cli(plant, swarm, *args)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def logs_show(plant: Plant, swarm: Swarm, line: str, *extra: str) -> str:
    """`controlplane logs shop`, once it shows `line` (bounded)."""
    deadline = time.monotonic() + 60
    out = ""
    while time.monotonic() < deadline:
        out = ok(plant, swarm, "logs", "shop", "-n", "5", *extra)
        if line in out:
            return out
        time.sleep(0.5)
    raise AssertionError(f"the logs never showed {line!r}: {out}")


@pytest.mark.timeout(900)
def test_a_project_lives_on_the_swarm_and_comes_back(
    plant: Plant, clean_swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("DOCKER_HOST", "CONTROLPLANE_REGISTRY", "CONTROLPLANE_BASE_IMAGE"):
        monkeypatch.setenv(key, clean_swarm.env()[key])  # serve runs in this process
    commit(plant, "1")
    plant.add()
    ok(plant, clean_swarm, "env", "set", "shop", "GREETING=hello-1")
    ok(plant, clean_swarm, "project", "set", "shop", "health-window", "3")
    ok(plant, clean_swarm, "deploy", "shop")
    logs_show(plant, clean_swarm, "running commit 1 greeting=hello-1")

    # onto the swarm, its running prod with it
    out = ok(plant, clean_swarm, "project", "set", "shop", "runner", "swarm")
    assert "shop now runs on the swarm" in out
    assert clean_swarm.task_node("cp-shop-prod")
    assert plant.box.client.find("shop-prod") is None  # no program here any more
    reconcile_once(plant.settings, plant.box.store, plant.box.client)  # as serve's start
    assert plant.box.client.find("shop-prod") is None
    logs_show(plant, clean_swarm, "running commit 1 greeting=hello-1")

    # deploy, a test run with its verdict, promote, rollback
    commit(plant, "2")
    ok(plant, clean_swarm, "deploy", "shop")
    logs_show(plant, clean_swarm, "running commit 2 greeting=hello-1")
    commit(plant, "3")
    out = ok(plant, clean_swarm, "deploy", "shop", "--test", "--duration", "20")
    assert "passed" in out, out
    # (the test slot stops at the end of its run; a stopped service has no task to tail)
    ok(plant, clean_swarm, "promote", "shop")
    logs_show(plant, clean_swarm, "running commit 3 greeting=hello-1 slot=prod")
    ok(plant, clean_swarm, "rollback", "shop", "1")
    logs_show(plant, clean_swarm, "running commit 1 greeting=hello-1 slot=prod")

    # a variable change reaches the app, never the service's spec
    ok(plant, clean_swarm, "env", "set", "shop", "GREETING=hello-2", "--restart")
    logs_show(plant, clean_swarm, "running commit 1 greeting=hello-2")
    assert "hello-2" not in clean_swarm.docker("service", "inspect", "cp-shop-prod")
    status = ok(plant, clean_swarm, "status", "shop")
    assert "RUNNING" in status, status

    # pinned to the worker
    out = ok(
        plant, clean_swarm, "project", "set", "shop", "placement", "node.labels.cptest==worker"
    )
    assert "node.labels.cptest==worker" in out
    assert clean_swarm.task_node("cp-shop-prod") == clean_swarm.worker.hostname
    shown = ok(plant, clean_swarm, "project", "show", "shop")
    assert "swarm" in shown and "node.labels.cptest==worker" in shown, shown
    logs_show(plant, clean_swarm, "running commit 1 greeting=hello-2")

    # back to this box: under supervisord again, the service gone
    out = ok(plant, clean_swarm, "project", "set", "shop", "runner", "local")
    assert "shop now runs on this box" in out
    assert "cp-shop-prod" not in clean_swarm.docker("service", "ls", "--format", "{{.Name}}")
    status = ok(plant, clean_swarm, "status", "shop")
    assert "RUNNING" in status and "pid" in status, status
    logs_show(plant, clean_swarm, "running commit 1 greeting=hello-2")


@pytest.mark.timeout(600)
def test_removing_a_project_on_the_swarm_removes_its_service(
    plant: Plant, clean_swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("DOCKER_HOST", "CONTROLPLANE_REGISTRY", "CONTROLPLANE_BASE_IMAGE"):
        monkeypatch.setenv(key, clean_swarm.env()[key])
    commit(plant, "1")
    plant.add()
    ok(plant, clean_swarm, "project", "set", "shop", "health-window", "0")
    ok(plant, clean_swarm, "deploy", "shop")
    ok(plant, clean_swarm, "project", "set", "shop", "runner", "swarm")
    assert clean_swarm.task_node("cp-shop-prod")
    ok(plant, clean_swarm, "project", "remove", "shop")
    assert "cp-shop" not in clean_swarm.docker("service", "ls", "--format", "{{.Name}}")
    assert "cp-shop" not in clean_swarm.docker("secret", "ls", "--format", "{{.Name}}")


@pytest.mark.timeout(600)
def test_a_move_whose_app_crashes_on_the_swarm_leaves_it_here(
    plant: Plant, clean_swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("DOCKER_HOST", "CONTROLPLANE_REGISTRY", "CONTROLPLANE_BASE_IMAGE"):
        monkeypatch.setenv(key, clean_swarm.env()[key])
    on_swarm = 'if os.environ.get("APP_DATA_DIR") == "/data":\n    raise SystemExit(3)\n'
    crashes_there = APP.replace("print(f", on_swarm + "print(f", 1)
    plant.origin.commit("version 1", {"main.py": crashes_there, "VERSION": "1\n"})
    plant.origin.push()
    plant.add()
    ok(plant, clean_swarm, "project", "set", "shop", "health-window", "20")
    ok(plant, clean_swarm, "deploy", "shop")
    pid = plant.box.client.info("shop-prod").pid

    done = cli(plant, clean_swarm, "project", "set", "shop", "runner", "swarm")
    assert done.returncode != 0
    said = done.stderr.strip().splitlines()
    assert len(said) == 1 and "shop stays on this box: prod crashed there" in said[0], said
    assert plant.stack.store.get_project("shop").runner == "local"
    assert "cp-shop" not in clean_swarm.docker("service", "ls", "--format", "{{.Name}}")
    info = plant.box.client.info("shop-prod")
    assert info.state == "RUNNING" and info.pid == pid  # never stopped
    logs_show(plant, clean_swarm, "running commit 1")


def test_no_swarm_reachable_refuses_the_move_in_one_line(
    plant: Plant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{plant.box.base}/no-docker.sock")
    commit(plant, "1")
    plant.add()
    done = plant.cli("project", "set", "shop", "runner", "swarm")
    assert done.returncode != 0
    said = done.stderr.strip().splitlines()
    assert len(said) == 1 and "no swarm is reachable" in said[0], said
    assert "docs/multihost.md says how to set one up" in said[0]
    assert plant.stack.store.get_project("shop").runner == "local"
