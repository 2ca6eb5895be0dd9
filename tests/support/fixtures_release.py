"""A whole control plane for end-to-end tests: a real supervisord, the engine behind the
real local socket (in this process, so the poller can be driven with poll_once), a git
origin on disk, a local wheel folder for requirements, and the CLI as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from controlplane.engine.build import BuildTimeouts
from controlplane.service.serve import Stack, build_stack
from tests.support.fixtures_repos import Origin, make_wheel
from tests.support.fixtures_supervisor import Box, BoxFactory

ROOT = Path(__file__).resolve().parents[2]

# The sample app: says which commit it runs, reports to APP_DATA_DIR, stays up unless the
# commit ships a CRASH file.
APP = """\
import json, os, pathlib, sys, time
import tinylib
version = pathlib.Path("VERSION").read_text().strip()
print(f"running commit {version}", flush=True)
data = pathlib.Path(os.environ["APP_DATA_DIR"])
report = {"version": version, "pid": os.getpid(), "lib": tinylib.VERSION,
          "api": os.environ.get("API_KEY"), "slot": os.environ.get("CONTROLPLANE_SLOT")}
(data / "report.json.tmp").write_text(json.dumps(report))
os.replace(data / "report.json.tmp", data / "report.json")
if pathlib.Path("CRASH").exists():
    print("ERROR: crashing on purpose", file=sys.stderr, flush=True)
    sys.exit(3)
while True:
    time.sleep(3600)
"""


@dataclass
class Plant:
    """Everything a scenario drives."""

    box: Box
    stack: Stack
    origin: Origin
    wheels: Path
    uv_config: Path

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        return self.box.settings

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**self.box.env, "CONTROLPLANE_ALLOW_FILE_URLS": "1"}
        return subprocess.run(
            [sys.executable, "-m", "controlplane", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str) -> str:
        done = self.cli(*args)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    def add(self, name: str = "shop") -> str:
        """`project add NAME` for the origin, its prod folder under the box."""
        return self.ok(
            "project",
            "add",
            name,
            "--repo",
            self.origin.url,
            "--path",
            str(self.box.base / "live" / name),
        )

    def local_index(self) -> list[str]:
        """Variables that make builds install from the local wheel folder (no network)."""
        return [
            f"UV_CONFIG_FILE={self.uv_config}",
            f"PIP_FIND_LINKS={self.wheels}",
            "PIP_NO_INDEX=1",
        ]

    def commit(self, version: str, *, crash: bool = False, requirements: str = "tinylib\n") -> str:
        files = {"main.py": APP, "VERSION": version + "\n", "requirements.txt": requirements}
        if crash:
            files["CRASH"] = "1"
        elif (self.origin.work / "CRASH").exists():
            (self.origin.work / "CRASH").unlink()
        sha = self.origin.commit(f"version {version}", files)
        self.origin.push()
        return sha

    def report(self, slot: str) -> dict[str, object]:
        path = self.settings.project_dir("shop") / "shared" / slot / "report.json"
        return dict(json.loads(path.read_text()))

    def wait_report(self, slot: str, version: str, timeout: float = 20) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        last: dict[str, object] = {}
        while time.monotonic() < deadline:
            try:
                last = self.report(slot)
                if last["version"] == version:
                    return last
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"{slot} never ran version {version}; last report {last}")


def add_shop(plant: Plant) -> None:
    """The shop project with the local wheel folder, prod and test keys, a short health
    window and two releases kept: the scenarios' common start."""
    out = plant.add()
    assert "added shop" in out
    plant.ok("env", "set", "shop", *plant.local_index(), "API_KEY=sk-prod-0123456789")
    plant.ok("env", "set", "shop", "--test", "API_KEY=sk-test-0123456789")
    plant.ok("project", "set", "shop", "health-window", "2")
    plant.ok("project", "set", "shop", "keep", "2")


@pytest.fixture
def plant(
    box_factory: BoxFactory, run_as_user: str | None, origin: Callable[..., Origin]
) -> Iterator[Plant]:
    box = box_factory(run_as_user)
    wheels = box.base / "wheels"
    make_wheel(wheels, "tinylib", "1.0")
    uv_config = box.base / "uv.toml"
    uv_config.write_text(f'no-index = true\nfind-links = ["{wheels}"]\n')
    for path in (wheels, uv_config, *wheels.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    stack = build_stack(box.settings, box.store)
    stack.engine.timeouts = BuildTimeouts(install=60, venv=60)
    stack.engine.sample_every = 0.1
    stack.control.start()
    plant = Plant(box=box, stack=stack, origin=origin("shop"), wheels=wheels, uv_config=uv_config)
    try:
        yield plant
    finally:
        stack.executor.shutdown(wait=15)
        stack.control.stop()
        stack.poller.close()
