"""Helpers for the fault scenarios: a box whose supervisord runs `controlplane serve`, a
project driven through the CLI, and the invariants every scenario ends with (import it).

The invariants are the product's promise after any fault: the store parses, prod's link
points at a ready release that the store records as prod, prod is RUNNING, and no
operation is left marked as in progress.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from controlplane.adapters.store import Store
from controlplane.domain.events import Event
from controlplane.engine import build
from controlplane.service.outbox import Outbox
from controlplane.settings import Settings
from tests.support.fixtures_release import ROOT
from tests.support.fixtures_supervisor import Box

# An app with no requirements: builds in a few seconds; reports which commit it runs.
APP = """\
import json, os, pathlib, time
version = pathlib.Path("VERSION").read_text().strip()
print(f"running commit {version}", flush=True)
data = pathlib.Path(os.environ["APP_DATA_DIR"])
report = {"version": version, "pid": os.getpid(), "slot": os.environ.get("CONTROLPLANE_SLOT")}
(data / "report.json.tmp").write_text(json.dumps(report))
os.replace(data / "report.json.tmp", data / "report.json")
while True:
    time.sleep(3600)
"""


def app_files(version: str, **extra: str) -> dict[str, str]:
    return {"main.py": APP, "VERSION": version + "\n", "requirements.txt": "", **extra}


def wait_for(what: str, test: Callable[[], bool], timeout: float = 30, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controlplane", *args],
        capture_output=True,
        text=True,
        env={**env, "CONTROLPLANE_ALLOW_FILE_URLS": "1"},
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )


@dataclass
class Served:
    """A box with serve under supervisord, and one project `shop` in it."""

    box: Box

    @property
    def settings(self) -> Settings:
        return self.box.settings

    @property
    def live(self) -> Path:
        return self.box.base / "live" / "shop"

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return run_cli(self.box.env, *args, timeout=timeout)

    def ok(self, *args: str) -> str:
        done = self.cli(*args)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def serve_pid(self) -> int:
        return self.box.wait_state("controlplane", ("RUNNING",), timeout=30).pid

    def kill_serve(self) -> int:
        """SIGKILL serve; wait until supervisord has it RUNNING again and it answers."""
        old = self.serve_pid()
        os.kill(old, signal.SIGKILL)
        new = self.box.wait_state("controlplane", ("RUNNING",), timeout=40, not_pid=old).pid
        wait_for("serve to answer", self.answers, timeout=40, step=0.2)
        return new

    def answers(self) -> bool:
        done = self.cli("cancel", "nothing-here")
        return "serve is not running" not in done.stderr and "not running" not in done.stderr

    def fresh_store(self) -> Store:
        """A new handle on the store file: proves that the file on disk parses."""
        return Store.open(self.settings)

    def events(self, kind: str | None = None) -> list[Event]:
        events = Outbox(self.fresh_store()).recent(None, limit=10_000)
        return [e for e in events if kind is None or e.kind == kind]

    def report(self, slot: str = "prod") -> dict[str, object]:
        path = self.settings.project_dir("shop") / "shared" / slot / "report.json"
        return dict(json.loads(path.read_text()))

    def wait_version(self, version: str, slot: str = "prod", timeout: float = 30) -> None:
        def runs() -> bool:
            try:
                return self.report(slot)["version"] == version
            except (OSError, ValueError):
                return False

        wait_for(f"{slot} to run version {version}", runs, timeout)

    def assert_consistent(self, *, prod_wanted: bool = True) -> int:
        """The invariants after a fault; returns the prod release number."""
        store = self.fresh_store()
        state = store.state("shop")
        assert state.op is None, f"an operation is left in progress: {state.op}"
        assert not any(r.state == "building" for r in store.releases("shop"))
        if not prod_wanted:
            return 0
        assert state.prod is not None
        release = store.release("shop", state.prod)
        assert release is not None and release.state == "ready", release
        dest = self.settings.layout.release_dir("shop", release.n, release.sha)
        assert build.is_ready(dest), f"prod's release {dest} is not whole on disk"
        assert Path(os.path.realpath(self.live)) == dest.resolve(), (
            f"prod link {os.path.realpath(self.live)} is not the store's #{release.n}"
        )
        assert state.prod_running
        info = self.box.wait_state("shop-prod", ("RUNNING",), timeout=30)
        version = store.commits("shop")[release.n - 1].subject.split()[-1]
        self.wait_version(version)
        assert self.report()["pid"] == info.pid
        return release.n
