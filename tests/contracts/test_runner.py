"""The Runner contract (controlplane.domain.runner): what every runner does, shown with
real apps (small Python scripts) run by the real process manager.

Every test takes `rig`: a runner, a way to add a project it can run, and a way to make a
release folder holding a given main.py. The rigs come from RUNNERS, one factory per
implementation: supervisord on this box (tests/fixtures_supervisor.py) and Docker Swarm
(swarm_rig.py; skipped, saying why, where no swarm can run). A runner plugs in by adding
its factory to RUNNERS: every test here then runs against it too. The tests ask
only what the protocol offers (status, tail, follow, events); the one look past it is
whether a stopped app's processes are gone from this host.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psutil
import pytest

from controlplane.adapters.routing import RoutingRunner
from controlplane.adapters.supervisor.client import ProgramOptions
from controlplane.adapters.supervisor.runner import SupervisorRunner
from controlplane.domain.models import Project
from controlplane.domain.runner import ProcessInfo, ProcessState, Runner, SlotEvent, SlotLines
from tests.contracts.swarm_rig import swarm_rig

T = TypeVar("T")

# Says which release it is, where it runs and which child it started; then writes a few
# lines to each stream and stays up.
APP = """\
import os, subprocess, sys, time
label = {label!r}
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
print(f"running {{label}} pid={{os.getpid()}} child={{child.pid}}", flush=True)
for i in range(5):
    print(f"out {{label}} {{i}}", flush=True)
print(f"err {{label}}", file=sys.stderr, flush=True)
while True:
    time.sleep(3600)
"""
QUITTER = "import sys\nsys.exit(4)\n"  # exits at once: never counts as started
# runs well past the second it takes to count as started, then exits with status 3
CRASHER = "import time\nprint('up', flush=True)\ntime.sleep(3)\nraise SystemExit(3)\n"


def app(label: str) -> str:
    return APP.format(label=label)


@dataclass
class Rig:
    """One runner and the two things the suite needs around it."""

    runner: Runner
    add_project: Callable[[str], Project]
    make_release: Callable[[Project, str, str], Path]  # (project, label, main.py source)
    # this host's pid of a process the slot's app names (apps in containers see their own)
    host_pid: Callable[[str, str, int], int] = lambda name, slot, pid: pid


def supervisord_rig(request: pytest.FixtureRequest) -> Rig:
    """supervisord on this box, started from our config in a fresh data dir; apps run as
    the run-as test user when the tests run as root."""
    box = request.getfixturevalue("box_factory")(request.getfixturevalue("run_as_user"))
    # one failed start is enough to give up (FATAL) in a test; the rest as in production
    runner = SupervisorRunner(box.settings, options=ProgramOptions(startretries=1))

    def add_project(name: str) -> Project:
        project = Project(name=name, repo="https://example.com/x.git", path=str(box.base / name))
        box.store.add_project(project)
        return project

    def make_release(project: Project, label: str, source: str) -> Path:
        folder = box.base / "releases" / project.name / label
        folder.mkdir(parents=True)
        (folder / "main.py").write_text(source)
        os.chmod(folder / "main.py", 0o644)
        for path in (folder, folder.parent, folder.parent.parent):
            os.chmod(path, 0o755)
        return folder

    return Rig(runner=runner, add_project=add_project, make_release=make_release)


def routing_rig(request: pytest.FixtureRequest) -> Rig:
    """serve's runner (adapters/routing.py) with every project on this box: the calls
    reach supervisord, and the Swarm runner is never made."""
    rig = supervisord_rig(request)
    assert isinstance(rig.runner, SupervisorRunner)

    def no_swarm() -> Runner:
        raise AssertionError("the Swarm runner was made for a project on this box")

    projects: dict[str, Project] = {}

    def add_project(name: str) -> Project:
        projects[name] = rig.add_project(name)
        return projects[name]

    router = RoutingRunner(rig.runner, lambda name: projects[name], no_swarm)
    return Rig(runner=router, add_project=add_project, make_release=rig.make_release)


RUNNERS = [
    pytest.param(supervisord_rig, id="supervisord"),
    pytest.param(routing_rig, id="routing"),
    # tests/contracts/swarm_rig.py; the first one may wait for the swarm to start, cold
    pytest.param(swarm_rig, id="swarm", marks=pytest.mark.timeout(900)),
]


@pytest.fixture(params=RUNNERS)
def rig(request: pytest.FixtureRequest) -> Rig:
    factory: Callable[[pytest.FixtureRequest], Rig] = request.param
    return factory(request)


# -- helpers ---------------------------------------------------------------------------------


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll `probe` until it returns something other than None (or False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got is not None and got is not False:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def state_of(rig: Rig, name: str, slot: str = "prod") -> ProcessInfo:
    info = rig.runner.status(name, slot)
    assert info is not None, f"{name}-{slot} has no program"
    return info


def running(rig: Rig, name: str, slot: str = "prod", *, not_pid: int = 0) -> ProcessInfo:
    """The slot once it runs (with a pid other than `not_pid`)."""

    def probe() -> ProcessInfo | None:
        info = state_of(rig, name, slot)
        ok = info.state == ProcessState.RUNNING and info.pid not in (0, not_pid)
        return info if ok else None

    return wait_for(f"{name}-{slot} to run", probe)


def in_state(rig: Rig, name: str, state: ProcessState, slot: str = "prod") -> ProcessInfo:
    def probe() -> ProcessInfo | None:
        info = state_of(rig, name, slot)
        return info if info.state == state else None

    return wait_for(f"{name}-{slot} to be {state}", probe)


def output(rig: Rig, name: str, needle: str, slot: str = "prod") -> SlotLines:
    """The slot's last lines once a stdout line contains `needle`."""

    def probe() -> SlotLines | None:
        lines = rig.runner.tail(name, slot, 50)
        return lines if any(needle in line for line in lines.stdout) else None

    return wait_for(f"{needle!r} in {name}-{slot}'s output", probe)


def reported(rig: Rig, name: str, label: str, slot: str = "prod") -> dict[str, int]:
    """The pid and child pid the app of release `label` says it runs as (its last start)."""
    lines = output(rig, name, f"running {label} ", slot).stdout
    line = [x for x in lines if x.startswith(f"running {label} ")][-1]
    words = dict(word.split("=") for word in line.split()[2:])
    return {key: rig.host_pid(name, slot, int(value)) for key, value in words.items()}


def deployed(rig: Rig, name: str, *labels: str, slot: str = "prod") -> tuple[Project, list[Path]]:
    """A project with releases of app(label) for each label, the slot on the first one,
    placed (not started)."""
    project = rig.add_project(name)
    releases = [rig.make_release(project, label, app(label)) for label in labels]
    rig.runner.switch(project, slot, releases[0])
    rig.runner.place(project, slot, autostart=False)
    return project, releases


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- the contract ------------------------------------------------------------------------------


def test_a_placed_slot_waits_and_once_started_runs_its_release(rig: Rig) -> None:
    deployed(rig, "shop", "A")
    assert state_of(rig, "shop").state == ProcessState.STOPPED
    assert rig.runner.start("shop", "prod") is True
    info = running(rig, "shop")
    assert reported(rig, "shop", "A")["pid"] == info.pid
    assert rig.runner.start("shop", "prod") is False  # running already


def test_placing_with_autostart_starts_it_and_placing_again_changes_nothing(rig: Rig) -> None:
    project = rig.add_project("shop")
    rig.runner.switch(project, "prod", rig.make_release(project, "A", app("A")))
    assert rig.runner.place(project, "prod", autostart=True) is True
    pid = running(rig, "shop").pid
    assert rig.runner.place(project, "prod", autostart=True) is False
    assert state_of(rig, "shop").pid == pid


def test_switching_to_another_release_and_restarting_runs_the_new_code(rig: Rig) -> None:
    project, (a, b) = deployed(rig, "shop", "A", "B")
    rig.runner.start("shop", "prod")
    old = running(rig, "shop").pid
    assert rig.runner.switch(project, "prod", b) is True
    assert rig.runner.switch(project, "prod", b) is False  # there already
    assert state_of(rig, "shop").pid == old  # the running app keeps its code until restarted
    # a switch needs no new program
    assert rig.runner.place(project, "prod", autostart=False) is False
    rig.runner.restart("shop", "prod")
    new = running(rig, "shop", not_pid=old).pid
    assert reported(rig, "shop", "B")["pid"] == new
    rig.runner.switch(project, "prod", a)
    rig.runner.restart("shop", "prod")
    back = running(rig, "shop", not_pid=new).pid
    assert reported(rig, "shop", "A")["pid"] == back


def test_restart_gives_a_new_process(rig: Rig) -> None:
    deployed(rig, "shop", "A")
    rig.runner.start("shop", "prod")
    first = running(rig, "shop").pid
    rig.runner.restart("shop", "prod")
    second = running(rig, "shop", not_pid=first).pid
    assert second != first and gone(first)


def test_stop_stops_the_app_and_every_process_it_started(rig: Rig) -> None:
    deployed(rig, "shop", "A")
    rig.runner.start("shop", "prod")
    info = running(rig, "shop")
    pids = reported(rig, "shop", "A")
    assert pids["pid"] == info.pid and not gone(pids["child"])
    assert rig.runner.stop("shop", "prod") is True
    after = state_of(rig, "shop")
    assert after.state == ProcessState.STOPPED and after.pid == 0
    assert gone(pids["pid"]) and gone(pids["child"])
    assert rig.runner.stop("shop", "prod") is False  # not running


def test_status_names_the_states(rig: Rig) -> None:
    deployed(rig, "shop", "A")
    project = rig.add_project("quits")
    rig.runner.switch(project, "prod", rig.make_release(project, "Q", QUITTER))
    rig.runner.place(project, "prod", autostart=False)
    assert state_of(rig, "quits").state == ProcessState.STOPPED
    rig.runner.start("shop", "prod")
    rig.runner.start("quits", "prod")
    running(rig, "shop")
    fatal = in_state(rig, "quits", ProcessState.FATAL)  # it never stayed up: given up
    assert fatal.pid == 0
    everything = {info.name: info for info in rig.runner.statuses()}
    assert set(everything) == {"shop-prod", "quits-prod"}  # our slots only
    assert everything["shop-prod"].state == ProcessState.RUNNING
    assert everything["quits-prod"].state == ProcessState.FATAL
    assert all(ProcessState(info.state) for info in everything.values())
    assert rig.runner.status("nothing", "prod") is None


def test_a_crashing_app_is_restarted_and_its_exit_status_is_an_event(rig: Rig) -> None:
    project = rig.add_project("shop")
    release = rig.make_release(project, "C", CRASHER)
    rig.runner.switch(project, "prod", release)
    events = rig.runner.events()
    rig.runner.place(project, "prod", autostart=True)
    first = running(rig, "shop").pid
    seen: list[SlotEvent] = []

    def exited() -> SlotEvent | None:
        seen.extend(events.read_new())
        found = [e for e in seen if e.state == ProcessState.EXITED and e.pid == first]
        return found[0] if found else None

    event = wait_for("the crash as an event", exited)
    assert (event.name, event.slot, event.program) == ("shop", "prod", "shop-prod")
    assert event.exitstatus == 3 and event.expected is False
    assert event.previous == ProcessState.RUNNING
    running(rig, "shop", not_pid=first)  # started again, by the runner alone
    assert all(e.name == "shop" for e in seen)


def test_tail_gives_the_last_lines_of_each_stream(rig: Rig) -> None:
    deployed(rig, "shop", "A")
    follow = rig.runner.follow("shop", "prod")
    rig.runner.start("shop", "prod")
    output(rig, "shop", "out A 4")

    def both() -> SlotLines | None:
        tail = rig.runner.tail("shop", "prod", 3)
        return tail if tail.stderr else None

    lines = wait_for("stderr in the tail", both)
    assert lines.stdout == ["out A 2", "out A 3", "out A 4"]
    assert lines.stderr == ["err A"]
    got = SlotLines()

    def followed() -> bool:
        new = follow.read_new()
        got.stdout.extend(new.stdout)
        got.stderr.extend(new.stderr)
        return bool(got.stderr) and "out A 4" in got.stdout

    wait_for("the output through follow", followed)
    assert got.stdout[0].startswith("running A ") and got.stdout[1:] == [
        f"out A {i}" for i in range(5)
    ]
    assert got.stderr == ["err A"]


def test_one_slot_changes_without_touching_the_other(rig: Rig) -> None:
    project, (_, b) = deployed(rig, "shop", "A", "B")
    rig.runner.switch(project, "test", b)
    rig.runner.place(project, "test", autostart=False)
    rig.runner.start("shop", "prod")
    rig.runner.start("shop", "test")
    prod, test = running(rig, "shop").pid, running(rig, "shop", "test").pid
    assert reported(rig, "shop", "B", "test")["pid"] == test
    rig.runner.restart("shop", "test")
    running(rig, "shop", "test", not_pid=test)
    rig.runner.stop("shop", "test")
    assert state_of(rig, "shop").pid == prod


def test_removing_a_slot_leaves_no_program(rig: Rig) -> None:
    project, _ = deployed(rig, "shop", "A")
    rig.runner.start("shop", "prod")
    pid = running(rig, "shop").pid
    assert rig.runner.remove(project, "prod") is True
    assert rig.runner.status("shop", "prod") is None
    assert all(info.name != "shop-prod" for info in rig.runner.statuses())
    assert gone(pid)
    assert rig.runner.remove(project, "prod") is False


def test_the_manager_is_the_apps_ancestor(rig: Rig) -> None:
    deployed(rig, "shop", "A")
    rig.runner.start("shop", "prod")
    pid = running(rig, "shop").pid
    manager = rig.runner.manager_pid()
    if manager is None:
        pytest.skip("this runner's apps do not run under a process on this host")
    assert manager in {p.pid for p in psutil.Process(pid).parents()}
