"""A real supervisord, started from our rendered template in a fresh data dir (import it).

`box_factory` makes a Box: a data dir under /tmp that the run-as user can pass through
(pytest's own tmp folders are 0700 root), a supervisord running our supervisord.conf with
the event listener, an XML-RPC client, and the store. Every box is shut down at the end
of the test (RPC shutdown, then SIGKILL of what is left).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from controlplane.adapters.slotcgroup import remove_empty
from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.client import (
    ProcessInfo,
    Supervisor,
    find_supervisord,
    program_name,
    write_supervisord_conf,
)
from controlplane.domain.models import Project
from controlplane.errors import SupervisorError
from controlplane.settings import Settings

RUN_AS = "cptest"
APP_PYTHON = "/usr/bin/python3"

# The app every test runs: it reports who it is and what it sees, then stays up.
APP_MAIN = """\
import json, os, pathlib, sys, time
data = pathlib.Path(os.environ["APP_DATA_DIR"])
probes = {}
for path in filter(None, os.environ.get("PROBE_PATHS", "").split(":")):
    try:
        with open(path, "rb") as handle:
            handle.read(1)
        probes[path] = "readable"
    except OSError as exc:
        probes[path] = type(exc).__name__
report = {"pid": os.getpid(), "uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
          "env": dict(os.environ), "probes": probes, "cwd": os.getcwd(), "argv": sys.argv}
tmp = data / "report.json.tmp"
tmp.write_text(json.dumps(report))
os.replace(tmp, data / "report.json")
if os.environ.get("EXIT_AT_ONCE"):
    sys.exit(3)
print("app started", flush=True)
while True:
    time.sleep(3600)
"""


def ensure_run_as_user() -> str | None:
    """The test user (made when missing); None with the reason printed when impossible."""
    if os.geteuid() != 0:
        print("run-as user tests need root; running apps as the current user")
        return None
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        done = subprocess.run(
            ["useradd", "--system", "--no-create-home", RUN_AS], capture_output=True, text=True
        )
        if done.returncode != 0:
            print(f"cannot create user {RUN_AS}: {done.stderr.strip()}")
            return None
    return RUN_AS


@dataclass
class Box:
    """One running supervisord with our config, and handles to drive it."""

    base: Path
    settings: Settings
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    client: Supervisor
    store: Store
    made: list[Path] = field(default_factory=list)

    def add_project(self, name: str, variables: dict[str, str] | None = None) -> Project:
        """A project whose prod folder holds APP_MAIN, with prod variables set."""
        code = self.base / "apps" / name
        write_app(code)
        project = Project(name=name, repo="https://example.com/x.git", path=str(code))
        self.store.add_project(project)
        if variables:
            self.store.set_env(name, "prod", variables)
        return project

    def add_test_slot(self, name: str) -> Path:
        code = self.settings.project_dir(name) / "test"
        write_app(code)
        return code

    def report(self, name: str, slot: str) -> dict[str, object]:
        import json

        path = self.settings.project_dir(name) / "shared" / slot / "report.json"
        return dict(json.loads(path.read_text()))

    def wait_state(
        self, program: str, states: tuple[str, ...], timeout: float = 15.0, not_pid: int = -1
    ) -> ProcessInfo:
        """Poll until the program is in one of `states` (and not with pid `not_pid`)."""
        deadline = time.monotonic() + timeout
        info = None
        while time.monotonic() < deadline:
            info = self.client.find(program)  # None: not added yet, wait on
            if info is not None and info.state in states and info.pid != not_pid:
                return info
            time.sleep(0.02)
        raise AssertionError(f"{program} never reached {states}: last {info}")

    def wait_report(
        self, name: str, slot: str, pid: int, timeout: float = 10.0
    ) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                report = self.report(name, slot)
                if report["pid"] == pid:
                    return report
            except (FileNotFoundError, ValueError):
                pass
            time.sleep(0.02)
        raise AssertionError(f"{name}-{slot} (pid {pid}) wrote no report")

    def program(self, name: str, slot: str) -> str:
        return program_name(name, slot)

    def shutdown(self) -> None:
        try:
            self.client.call("shutdown")
            self.proc.wait(timeout=15)
        except (SupervisorError, subprocess.TimeoutExpired):
            pass
        finally:
            self.client.close()
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
            remove_empty(self.settings.data_dir)  # the slots' cgroups, once their apps ended


def write_app(code: Path) -> None:
    """A slot's code folder that any user can read."""
    code.mkdir(parents=True, exist_ok=True)
    (code / "main.py").write_text(APP_MAIN)
    os.chmod(code / "main.py", 0o644)
    for folder in [code, *code.parents]:
        if str(folder) in ("/", "/tmp"):
            break
        os.chmod(folder, os.stat(folder).st_mode | 0o755)


def start_box(base: Path, run_as: str | None, serve: bool = False) -> Box:
    data = base / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLPLANE_", "TELEGRAM"))}
    env.update(
        CONTROLPLANE_DATA_DIR=str(data),
        CONTROLPLANE_PYTHON=APP_PYTHON,
        CONTROLPLANE_RUN_AS=run_as or pwd.getpwuid(os.getuid()).pw_name,
        # the tests' origins are local folders; serve and the CLI share the box's environment
        CONTROLPLANE_ALLOW_FILE_URLS="1",
    )
    settings = Settings.from_env(env)
    store = Store.open(settings)
    conf = write_supervisord_conf(settings, serve=serve)
    proc = subprocess.Popen(
        [find_supervisord(), "-n", "-c", str(conf)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    client = Supervisor(settings, timeout=15.0)
    box = Box(base=base, settings=settings, env=env, proc=proc, client=client, store=store)
    deadline = time.monotonic() + 15
    while True:
        try:
            if client.call("getState")["statename"] == "RUNNING":
                break
        except SupervisorError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            box.shutdown()
            raise AssertionError(f"supervisord did not come up; see {settings.logs_dir}")
        time.sleep(0.05)
    box.wait_state("controlplane-events", ("RUNNING",))
    return box


BoxFactory = Callable[..., Box]


@pytest.fixture
def box_factory() -> Iterator[BoxFactory]:
    """Start supervisord boxes; every one is shut down and its folder removed afterwards."""
    boxes: list[Box] = []

    def make(run_as: str | None = None, serve: bool = False) -> Box:
        base = Path(tempfile.mkdtemp(prefix="cpbox-", dir="/tmp"))
        os.chmod(base, 0o711)
        box = start_box(base, run_as, serve)
        boxes.append(box)
        return box

    yield make
    for box in boxes:
        box.shutdown()
        shutil.rmtree(box.base, ignore_errors=True)


@pytest.fixture
def run_as_user() -> str | None:
    return ensure_run_as_user()
