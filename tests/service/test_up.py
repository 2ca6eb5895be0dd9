"""`controlplane up` for real: the start order in a recreated container, signals reaching
supervisord (also through `make run`), and a second `up` on a data dir that runs already."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from controlplane.adapters.supervisor.client import write_program
from controlplane.adapters.supervisor.links import pending_mark, switch_link
from controlplane.domain.history import Release
from controlplane.domain.models import Project
from controlplane.errors import SupervisorError
from controlplane.layout import ready_marker
from tests.support.fixtures_supervisor import Box, BoxFactory, write_app

ROOT = Path(__file__).resolve().parents[2]
SHA = "c0ffee" + "0" * 34


class Ups:
    """`controlplane up` (or `make run`) processes started by a test; all ended after it."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, box: Box, argv: list[str] | None = None) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            argv or [sys.executable, "-m", "controlplane", "up"],
            env=box.env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def end(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.communicate()


@pytest.fixture
def ups() -> Iterator[Ups]:
    started = Ups()
    yield started
    started.end()


def released(box: Box, name: str) -> Project:
    """A project deployed to prod as the engine leaves it: release #1 ready, prod on it,
    the prod folder (outside $DATA) a link to it, its program file written."""
    dest = box.settings.layout.release_dir(name, 1, SHA)
    write_app(dest)
    ready_marker(dest).write_text("")
    project = Project(
        name=name, repo="https://example.com/x.git", path=str(box.base / "srv" / name)
    )
    box.store.add_project(project)
    box.store.put_release(name, Release(n=1, sha=SHA, state="ready"))
    box.store.update_state(name, prod=1, prod_running=True)
    switch_link(Path(project.path), dest)
    write_program(box.settings, project, "prod")
    return project


def wait_running(box: Box, programs: list[str], timeout: float = 60.0) -> dict[str, int]:
    """The pid of each program once all are RUNNING under the supervisord `up` started."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            box.client.call("getState")
            break
        except SupervisorError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    return {p: box.wait_state(p, ("RUNNING",), timeout=timeout).pid for p in programs}


def gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    """The pids still alive (not zombies) after waiting up to `timeout` for them to end."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def test_a_recreated_container_starts_every_app_at_the_first_try(
    box_factory: BoxFactory, ups: Ups
) -> None:
    box = box_factory()
    projects = [released(box, name) for name in ("shop", "blog")]
    box.shutdown()  # the old container is gone ...
    for project in projects:
        Path(project.path).unlink()  # ... and the new one has no prod folder outside $DATA
    ups.start(box)
    programs = [f"{p.name}-prod" for p in projects]
    pids = wait_running(box, ["controlplane", *programs])
    deadline = time.monotonic() + 60
    while pending_mark(box.settings.supervisor_dir).exists():  # until serve put links back
        assert time.monotonic() < deadline, "serve never marked the links restored"
        time.sleep(0.05)
    for project in projects:
        assert Path(project.path).resolve() == box.settings.layout.release_dir(project.name, 1, SHA)
        # the app itself runs, with the pid of the first start
        box.wait_report(project.name, "prod", pids[f"{project.name}-prod"], timeout=60)
    records = [json.loads(line) for line in box.settings.layout.events_log.read_text().splitlines()]
    log = box.settings.layout.supervisord_log.read_text()
    for program in programs:
        states = [r["state"] for r in records if r["program"] == program]
        print(program, states)
        assert states == ["STARTING", "RUNNING"], f"{program} did not start at the first try"
        assert box.client.info(program).pid == pids[program]
        _out, err = box.settings.layout.program_logs(program)
        assert "no code" not in (err.read_text() if err.exists() else "")
        assert f"exited: {program}" not in log


def test_sigterm_to_up_stops_supervisord_and_every_app(box_factory: BoxFactory, ups: Ups) -> None:
    box = box_factory()
    released(box, "shop")
    box.shutdown()
    up = ups.start(box)
    pids = wait_running(box, ["controlplane", "controlplane-events", "shop-prod"])
    assert int(box.client.call("getPID")) == up.pid, "up is supervisord itself (exec)"
    up.send_signal(signal.SIGTERM)
    up.communicate(timeout=60)
    assert gone([up.pid, *pids.values()]) == [], "supervisord or a program outlived SIGTERM"


def test_a_second_up_says_one_runs_and_how_to_stop_it(box_factory: BoxFactory, ups: Ups) -> None:
    box = box_factory()
    released(box, "shop")
    box.shutdown()
    first = ups.start(box)
    app = wait_running(box, ["shop-prod"])["shop-prod"]
    conf = box.settings.supervisord_conf
    before = conf.read_text()
    for lang, words in (("C.UTF-8", "already running"), ("ru_RU.UTF-8", "уже запущен")):
        second = subprocess.run(
            [sys.executable, "-m", "controlplane", "up"],
            env={**box.env, "LANG": lang, "LANGUAGE": "", "LC_ALL": ""},
            capture_output=True,
            text=True,
            timeout=60,
        )
        print(second.stderr)
        assert second.returncode != 0
        assert words in second.stderr
        assert f"supervisorctl -c {conf} shutdown" in second.stderr
        assert f"kill {first.pid}" in second.stderr
        assert "Another program is already listening" not in second.stderr
    assert first.poll() is None and box.client.info("shop-prod").pid == app, "left alone"
    assert conf.read_text() == before


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_run_stopped_with_sigterm_leaves_no_orphan(box_factory: BoxFactory, ups: Ups) -> None:
    box = box_factory()
    released(box, "shop")
    box.shutdown()
    make = ups.start(box, ["make", "--no-print-directory", "run"])
    pids = wait_running(box, ["controlplane", "shop-prod"])
    supervisord = int(box.client.call("getPID"))
    make.send_signal(signal.SIGTERM)  # to make alone, as a process manager or `kill` does
    make.communicate(timeout=60)
    assert gone([supervisord, *pids.values()]) == [], "make run left orphans"
    again = ups.start(box)
    wait_running(box, ["shop-prod"])
    assert again.poll() is None
