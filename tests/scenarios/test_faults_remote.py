"""Faults outside the control plane, against the whole engine (real supervisord, git over
loopback HTTP with basic auth, real venvs): the remote refusing the credential, the branch
deleted, history force-pushed, the host gone; the projects' Python missing; the data
volume full in the middle of a build (a tmpfs made for the test).

Each ends with prod still serving its release, the store parsing, and the admin told once.
The poller's backoff arithmetic is tests/test_poller.py; a bad requirement and a hanging
install are tests/test_release_e2e.py and tests/test_build.py.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from controlplane.adapters.store import Store
from controlplane.engine.build import BuildTimeouts
from controlplane.service.outbox import Outbox
from controlplane.service.serve import Stack, build_stack
from tests.support import gitserver
from tests.support.fixtures_faults import app_files, run_cli, wait_for
from tests.support.fixtures_repos import Origin, make_wheel, sh_git
from tests.support.fixtures_supervisor import Box, start_box

HOUR = 3600.0


@dataclass
class Rig:
    """A box, the engine in this process behind the real socket, and the CLI."""

    box: Box
    stack: Stack

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(self.box.env, *args)

    def ok(self, *args: str) -> str:
        done = self.cli(*args)
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done.stdout

    @property
    def live(self) -> Path:
        return self.box.base / "live" / "shop"

    def version(self) -> str:
        path = self.box.settings.project_dir("shop") / "shared" / "prod" / "report.json"
        import json

        return str(json.loads(path.read_text())["version"])

    def kinds(self, kind: str) -> list[str]:
        return [e.text for e in Outbox(Store.open(self.box.settings)).recent("shop", 10_000)
                if e.kind == kind]  # fmt: skip

    def prod_runs(self, version: str) -> None:
        self.box.wait_state("shop-prod", ("RUNNING",))
        wait_for(f"prod on {version}", lambda: self._is(version), timeout=30)

    def _is(self, version: str) -> bool:
        try:
            return self.version() == version
        except (OSError, ValueError):
            return False


def make_rig(base: Path, run_as: str | None) -> Rig:
    box = start_box(base, run_as)
    stack = build_stack(box.settings, box.store)
    stack.engine.timeouts = BuildTimeouts(install=120, venv=60)
    stack.engine.sample_every = 0.1
    stack.control.start()
    return Rig(box=box, stack=stack)


def close_rig(rig: Rig) -> None:
    rig.stack.executor.shutdown(wait=15)
    rig.stack.control.stop()
    rig.stack.poller.close()
    rig.box.shutdown()


@pytest.fixture
def rig_factory(run_as_user: str | None) -> Iterator[Callable[..., Rig]]:
    """rig(tmpfs_mb=None): a Rig; with tmpfs_mb its data dir is a tmpfs of that size."""
    made: list[tuple[Rig, Path, bool]] = []

    def make(tmpfs_mb: int | None = None) -> Rig:
        base = Path(tempfile.mkdtemp(prefix="cpfault-", dir="/tmp"))
        os.chmod(base, 0o711)
        mounted = False
        if tmpfs_mb is not None:
            data = base / "data"
            data.mkdir()
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={tmpfs_mb}m,mode=0711", "tmpfs", str(data)],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                shutil.rmtree(base)
                reason = f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}"
                print(reason)
                pytest.skip(reason)
            mounted = True
        rig = make_rig(base, run_as_user)
        made.append((rig, base, mounted))
        return rig

    yield make
    for rig, base, mounted in made:
        close_rig(rig)
        if mounted:
            subprocess.run(["umount", "-l", str(base / "data")], check=False)
        shutil.rmtree(base, ignore_errors=True)


def poll(rig: Rig, now: float) -> tuple[bool, str | None]:
    result = {r.project: r for r in rig.stack.poller.poll_once(now=now)}["shop"]
    handling = rig.stack.executor.busy("shop")  # a new head is being fetched and numbered
    if handling is not None:
        assert handling.wait(timeout=120), "the new commit was never handled"
    return result.ok, result.error


@pytest.mark.timeout(300)
def test_git_remote_faults(rig_factory: Callable[..., Rig], origin: Callable[..., Origin]) -> None:
    rig = rig_factory()
    repo = origin("shop")
    repo.commit("version 1", app_files("1"))
    repo.push()
    with gitserver.serve(repo.bare.parent, auth="ada:right-pass-123") as git:
        url = f"http://ada:right-pass-123@127.0.0.1:{git.server_address[1]}/shop.git"
        rig.ok("project", "add", "shop", "--repo", url, "--path", str(rig.live))
        rig.ok("poll", "shop", "1m")
        rig.ok("project", "set", "shop", "health-window", "1")
        rig.ok("deploy", "shop")
        rig.prod_runs("1")
        now = time.time()
        assert poll(rig, now)[0]

        # the credential stops working: one outage report over 5 failed checks
        git.auth = "ada:changed-pass"
        errors = []
        for i in range(1, 6):
            ok, error = poll(rig, now + i * HOUR)
            assert not ok
            errors.append(error)
        assert all(e and "authentication" in e.lower() for e in errors), errors
        outages = rig.kinds("poll_outage")
        assert len(outages) == 1 and "right-pass-123" not in outages[0], outages
        done = rig.cli("deploy", "shop")
        assert done.returncode == 1 and "authentication" in done.stderr.lower(), done.stderr
        assert "right-pass-123" not in done.stdout + done.stderr
        rig.prod_runs("1")
        git.auth = "ada:right-pass-123"
        assert poll(rig, now + 6 * HOUR)[0]
        assert len(rig.kinds("poll_recovered")) == 1
        print("auth failing:", errors[0], "|", done.stderr.strip())

        # the branch deleted: the outage names the branches that exist
        repo.commit("version 2", app_files("2"))
        repo.push(branch="other")
        sh_git("update-ref", "-d", "refs/heads/main", cwd=repo.bare)
        ok, error = poll(rig, now + 7 * HOUR)
        assert not ok and error and "main" in error and "other" in error, error
        assert not poll(rig, now + 8 * HOUR)[0]
        done = rig.cli("deploy", "shop")
        assert done.returncode == 1 and "main" in done.stderr, done.stderr
        rig.prod_runs("1")
        assert len(rig.kinds("poll_outage")) == 2
        print("branch deleted:", error, "|", done.stderr.strip())

        # history force-pushed onto main: the new head gets a new number and deploys
        repo.reset_hard(sh_git("rev-list", "--max-parents=0", "HEAD", cwd=repo.work))
        repo.commit("version 3", app_files("3"))
        repo.push(force=True)
        assert poll(rig, now + 9 * HOUR)[0]
        assert len(rig.kinds("poll_recovered")) == 2
        rig.ok("deploy", "shop")
        rig.prod_runs("3")
        numbers = {c.n: c.subject for c in rig.stack.store.commits("shop")}
        assert numbers[1] == "version 1" and numbers[max(numbers)] == "version 3", numbers
        rig.ok("rollback", "shop", "1")  # the commit history dropped still deploys
        rig.prod_runs("1")
    # the host gone: unreachable
    assert not poll(rig, now + 10 * HOUR)[0]
    assert not poll(rig, now + 11 * HOUR)[0]
    outages = rig.kinds("poll_outage")
    assert len(outages) == 3, outages
    done = rig.cli("deploy", "shop")
    assert done.returncode == 1, done.stdout
    rig.prod_runs("1")
    print("host gone:", outages[-1], "|", done.stderr.strip())
    Store.open(rig.box.settings).list_projects()  # the store parses


@pytest.mark.timeout(200)
def test_python_missing_and_disk_full(
    rig_factory: Callable[..., Rig], origin: Callable[..., Origin]
) -> None:
    rig = rig_factory(tmpfs_mb=240)
    data = rig.box.settings.data_dir
    wheels = rig.box.base / "wheels"
    big = make_wheel(wheels, "bigpkg", "1.0")
    _stuff(big, 130)
    uv = rig.box.base / "uv.toml"
    uv.write_text(f'no-index = true\nfind-links = ["{wheels}"]\nlink-mode = "copy"\n')
    for path in (wheels, big, uv):
        path.chmod(0o755 if path.is_dir() else 0o644)
    repo = origin("shop")
    repo.commit("version 1", app_files("1"))
    repo.push()
    rig.ok("project", "add", "shop", "--repo", repo.url, "--path", str(rig.live))
    rig.ok("env", "set", "shop", f"UV_CONFIG_FILE={uv}")
    rig.ok("project", "set", "shop", "health-window", "1")
    rig.ok("deploy", "shop")
    rig.prod_runs("1")

    # the projects' Python missing: the pre-flight says so, nothing is built
    repo.commit("version 2", app_files("2"))
    repo.push()
    engine = rig.stack.engine
    good = engine.settings
    engine.settings = dataclasses.replace(good, python="/opt/nowhere/python3")
    try:
        done = rig.cli("deploy", "shop")
    finally:
        engine.settings = good
    assert done.returncode == 1 and "/opt/nowhere/python3" in done.stderr, done.stderr
    rig.prod_runs("1")
    print("python missing:", done.stderr.strip().splitlines()[-1])

    # the volume fills up during the install
    repo.commit("version 3", app_files("3", **{"requirements.txt": "bigpkg\n"}))
    repo.push()
    free_before = shutil.disk_usage(data).free
    store_before = rig.stack.store.releases("shop")
    done = rig.cli("deploy", "shop")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "space" in out.lower(), out
    rig.prod_runs("1")
    releases = {r.n: r.state for r in Store.open(rig.box.settings).releases("shop")}
    assert releases[1] == "ready" and releases[max(releases)] == "failed", releases
    assert [r for r in store_before if r.state == "ready"] == [
        r for r in Store.open(rig.box.settings).releases("shop") if r.state == "ready"
    ]
    free_after = shutil.disk_usage(data).free
    print(
        f"disk full: free before {free_before // 2**20} MB, after {free_after // 2**20} MB;",
        [line for line in out.splitlines() if "space" in line.lower()][:2],
    )
    assert free_after >= free_before - 5 * 2**20, "the failed build kept its space"


def _stuff(wheel: Path, mb: int) -> None:
    """Add `mb` MB of incompressible data to a wheel (and to its RECORD)."""
    import zipfile

    with zipfile.ZipFile(wheel, "a", compression=zipfile.ZIP_STORED) as archive:
        for i in range(mb // 10):
            archive.writestr(f"bigpkg/blob{i}.bin", os.urandom(10 * 2**20))
