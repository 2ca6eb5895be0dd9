"""serve killed with SIGKILL in the middle of a build: supervisord restarts it, and the
restarted serve leaves a consistent state and says what was cut short."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import psutil

from controlplane.service.outbox import Outbox
from tests.support.fixtures_release import APP, ROOT
from tests.support.fixtures_repos import Origin
from tests.support.fixtures_supervisor import Box


def cli(box: Box, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**box.env, "CONTROLPLANE_ALLOW_FILE_URLS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "controlplane", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def wait_for(what: str, test: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def serve_answers(box: Box) -> bool:
    return cli(box, "cancel", "nothing-here").stderr.find("not running") < 0


def test_serve_killed_mid_build_recovers(
    box_factory: Callable[..., Box],
    run_as_user: str | None,
    origin: Callable[..., Origin],
) -> None:
    box = box_factory(run_as_user, serve=True)
    wait_for("serve's socket", lambda: box.settings.control_sock.exists())
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)
    try:
        config = box.base / "hang.toml"
        config.write_text(f'index-url = "http://127.0.0.1:{hang.getsockname()[1]}/simple"\n')
        config.chmod(0o644)
        repo = origin("shop")
        repo.commit("v1", {"main.py": APP, "VERSION": "1\n", "requirements.txt": "hangs\n"})
        repo.push()
        live = box.base / "live" / "shop"
        assert (
            cli(box, "project", "add", "shop", "--repo", repo.url, "--path", str(live)).returncode
            == 0
        )
        assert cli(box, "env", "set", "shop", f"UV_CONFIG_FILE={config}").returncode == 0
        started = cli(box, "deploy", "shop", "--detach")
        assert started.returncode == 0, started.stderr
        wait_for(
            "the build to start",
            lambda: any(r.state == "building" for r in box.store.releases("shop")),
        )
        releases = box.settings.project_dir("shop") / "releases"

        def builders() -> list[str]:
            return [
                " ".join(p.info["cmdline"] or [])
                for p in psutil.process_iter(["cmdline"])
                if str(releases) in " ".join(p.info["cmdline"] or [])
            ]

        wait_for("the install step", lambda: any("install" in c for c in builders()))

        old = box.client.info("controlplane").pid
        os.kill(old, signal.SIGKILL)
        box.wait_state("controlplane", ("RUNNING",), timeout=30, not_pid=old)
        outbox = Outbox(box.store)
        wait_for(
            "the interrupted report",
            lambda: any(e.kind == "interrupted" for e in outbox.recent("shop")),
        )

        texts = [e.text for e in outbox.recent("shop") if e.kind == "interrupted"]
        assert any("build of #1 was cut short" in t for t in texts), texts
        assert any("deploy was cut short" in t for t in texts), texts
        assert [r.state for r in box.store.releases("shop")] == ["failed"]
        assert box.store.state("shop").op is None
        assert not any(releases.iterdir()), list(releases.iterdir())
        assert not live.exists(), "prod was never deployed and must not appear"
        assert builders() == [], "a build process was left running"
        # and the restarted serve works: the next operation is accepted
        wait_for("serve to answer", lambda: serve_answers(box))
        again = cli(box, "history", "shop")
        assert again.returncode == 0 and "#1" in again.stdout and "failed" in again.stdout
    finally:
        hang.close()
