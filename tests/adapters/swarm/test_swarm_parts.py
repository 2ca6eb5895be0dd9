"""The swarm runner's parts that need no engine: importing it costs no docker SDK, the
engine's words become plain ones, its log stream and timestamps are read right, and a
task's states read as the one box's process states."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

from controlplane.adapters.swarm.client import engine_error, parse_time, task_problem
from controlplane.adapters.swarm.images import image_ref, image_tag, release_labels
from controlplane.adapters.swarm.logs import demux
from controlplane.adapters.swarm.secrets import digest_key
from controlplane.adapters.swarm.services import LABEL_SLOT, Limits, process_info
from controlplane.domain.runner import ProcessState


def test_importing_the_swarm_runner_does_not_import_the_docker_sdk() -> None:
    code = (
        "import sys, controlplane.adapters.swarm.runner, controlplane.adapters.swarm.events;"
        "print('docker' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_engines_refusals_read_as_plain_words() -> None:
    missing = task_problem("No such image: reg:5000/cp-shop:7-abcdef1")
    assert missing is not None and "reg:5000/cp-shop:7-abcdef1" in str(missing)
    assert "CONTROLPLANE_REGISTRY" in str(missing)
    nowhere = task_problem("no suitable node (scheduling constraints not satisfied on 2 nodes)")
    assert nowhere is not None and "placement rules" in str(nowhere)
    assert task_problem("task: non-zero exit (3)") is None
    assert "not a swarm manager" in str(
        engine_error(Exception("This node is not a swarm manager."))
    )


def test_a_release_folder_names_its_image() -> None:
    release = Path("/data/projects/shop/releases/12-abcdef1")
    assert image_tag(release) == "12-abcdef1"
    assert image_ref("reg:5000", "shop", release) == "reg:5000/cp-shop:12-abcdef1"
    assert image_ref("", "shop", release) == "cp-shop:12-abcdef1"
    assert image_tag(Path("/x/.odd name")) == "r.odd_name"


def test_release_labels_carry_number_and_commit(tmp_path: Path) -> None:
    release = tmp_path / "12-abcdef1"
    release.mkdir()
    (release / "main.py").write_text("print(1)\n")
    labels = release_labels("shop", release)
    assert labels["controlplane.release"] == "12" and labels["controlplane.commit"] == "abcdef1"
    before = labels["controlplane.digest"]
    (release / "main.py").write_text("print(22)\n")
    assert release_labels("shop", release)["controlplane.digest"] != before


def test_log_frames_and_timestamps() -> None:
    def frame(kind: int, text: str) -> bytes:
        data = text.encode()
        return struct.pack(">BxxxL", kind, len(data)) + data

    frames = demux(frame(1, "2026-01-01T00:00:01.5Z out\n") + frame(2, "err\n"))
    assert frames == [(1, b"2026-01-01T00:00:01.5Z out\n"), (2, b"err\n")]
    assert parse_time("2026-01-01T00:00:01.000001Z") > parse_time("2026-01-01T00:00:01Z")
    assert parse_time("0001-01-01T00:00:00Z") == 0.0


def task(state: str, created: str, changed: str, **status: Any) -> dict[str, Any]:
    return {
        "ID": f"t{created}{state}",
        "NodeID": "n1",
        "DesiredState": "running" if state not in ("failed", "shutdown") else "shutdown",
        "CreatedAt": f"2026-01-01T00:00:{created}Z",
        "Status": {"State": state, "Timestamp": f"2026-01-01T00:00:{changed}Z", **status},
    }


SERVICE = {
    "Spec": {
        "Name": "cp-shop-prod",
        "Labels": {LABEL_SLOT: "shop-prod"},
        "Mode": {"Replicated": {"Replicas": 1}},
    },
}


def test_task_states_read_as_process_states() -> None:
    up = task("running", "10", "11", ContainerStatus={"PID": 4321})
    info = process_info(SERVICE, [up], Limits(startretries=2), 0.5)
    assert (info.name, info.state, info.pid) == ("shop-prod", ProcessState.RUNNING, 4321)
    quick = task("failed", "01", "01.4", ContainerStatus={"ExitCode": 4}, Err="non-zero exit (4)")
    again = task("ready", "02", "02")
    info = process_info(SERVICE, [quick, again], Limits(startretries=2), 0.5)
    assert info.state == ProcessState.BACKOFF and info.exitstatus == 4
    quick2 = task("failed", "03", "03.2", ContainerStatus={"ExitCode": 4})
    info = process_info(SERVICE, [quick, quick2, again], Limits(startretries=2), 0.5)
    assert info.state == ProcessState.FATAL and info.pid == 0
    rejected = task("rejected", "05", "05", Err="No such image: cp-shop:1-abcdef1")
    info = process_info(SERVICE, [rejected], Limits(), 0.5)
    assert info.state == ProcessState.FATAL and "cp-shop:1-abcdef1" in info.spawnerr
    stopped = {**SERVICE, "Spec": {**SERVICE["Spec"], "Mode": {"Replicated": {"Replicas": 0}}}}
    assert process_info(stopped, [], Limits(), 0.5).state == ProcessState.STOPPED


def test_the_variables_digest_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "swarm-secrets.key"
    key = digest_key(path)
    assert len(key) == 32 and digest_key(path) == key
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_task_on_a_node_that_is_down_does_not_hold_back_its_replacement() -> None:
    stale = {**task("running", "01", "02", ContainerStatus={"PID": 11}), "NodeID": "gone"}
    stale["DesiredState"] = "shutdown"
    moved = task("running", "30", "31", ContainerStatus={"PID": 22})
    waiting = process_info(SERVICE, [stale, moved], Limits(), 0.5)
    assert waiting.state == ProcessState.STARTING  # the old one may still be stopping
    info = process_info(SERVICE, [stale, moved], Limits(), 0.5, down=frozenset({"gone"}))
    assert (info.state, info.pid) == (ProcessState.RUNNING, 22)
