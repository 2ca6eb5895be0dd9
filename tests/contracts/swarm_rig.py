"""The Runner contract's rig for Docker Swarm (controlplane.adapters.swarm).

The fixtures are in tests/contracts/conftest.py (swarm_engine, swarm_runner).

The apps run in their own PID namespace, so the pids they print are not this host's:
`host_pid` finds the host's pid of a process the slot's app names (/proc/P/status's
NSpid, in the namespace of the task's main process).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from controlplane.adapters.swarm.runner import SwarmRunner
from controlplane.domain.models import Project

if TYPE_CHECKING:
    from tests.contracts.test_runner import Rig


def ns_pids(pid: int) -> list[int]:
    """The pids a process has, from this host's namespace inward (NSpid)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(x) for x in line.split()[1:]]
    return [pid]


def host_pid(runner: SwarmRunner, name: str, slot: str, inner: int) -> int:
    """This host's pid of the process the slot's app calls `inner`."""
    info = runner.status(name, slot)
    assert info is not None and info.pid, f"{name}-{slot} runs no task here"
    namespace = os.readlink(f"/proc/{info.pid}/ns/pid")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if (
                os.readlink(f"/proc/{entry}/ns/pid") == namespace
                and ns_pids(int(entry))[-1] == inner
            ):
                return int(entry)
        except OSError:
            continue
    raise AssertionError(f"no process {inner} in {name}-{slot}'s namespace")


def swarm_rig(request: pytest.FixtureRequest) -> Rig:
    """The swarm runner on the test swarm; releases are folders under a temporary base,
    built into images by the runner itself."""
    from tests.contracts.test_runner import Rig

    runner: SwarmRunner = request.getfixturevalue("swarm_runner")
    base: Path = request.getfixturevalue("tmp_path")

    def add_project(name: str) -> Project:
        return Project(name=name, repo="https://example.com/x.git", path=str(base / name))

    def make_release(project: Project, label: str, source: str) -> Path:
        folder = base / "releases" / project.name / label
        folder.mkdir(parents=True)
        (folder / "main.py").write_text(source)
        return folder

    return Rig(
        runner=runner,
        add_project=add_project,
        make_release=make_release,
        host_pid=lambda name, slot, pid: host_pid(runner, name, slot, pid),
    )
