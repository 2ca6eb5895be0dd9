"""Faults under a real supervisord running `controlplane serve`: serve SIGKILLed during a
fetch, a test run, a promote's health window and at random moments of link switches and
store writes; supervisord itself killed and started again (a container restart).

Each scenario ends with the invariants of tests/fixtures_faults.py: prod serves a ready
release the store records, the store parses, no operation is left in progress, and the
admin's outbox says once what was cut short. A kill mid-build is tests/test_recovery.py.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from controlplane.adapters.supervisor.client import Supervisor, find_supervisord
from controlplane.errors import SupervisorError
from tests.support import gitserver
from tests.support.fixtures_faults import Served, app_files, wait_for
from tests.support.fixtures_repos import Origin
from tests.support.fixtures_supervisor import Box

KILLS = int(os.environ.get("CONTROLPLANE_FAULT_KILLS", "6"))


def cut_short(served: Served, seen: int) -> list[str]:
    """Texts of the operation notes ("… was cut short") published since `seen` events."""
    return [
        e.text for e in served.events("interrupted")[seen:] if "cut short by a restart" in e.text
    ]


@pytest.fixture
def served(
    box_factory: Callable[..., Box],
    run_as_user: str | None,
) -> Iterator[Served]:
    box = box_factory(run_as_user, serve=True)
    wait_for("serve's socket", lambda: box.settings.control_sock.exists())
    yield Served(box)


def restart_container(box: Box) -> None:
    """What a container restart does: every process of the box dies at once, then
    supervisord starts again from the same data dir."""
    session = box.proc.pid
    victims = [p for p in psutil.process_iter() if _sid(p.pid) == session]
    for proc in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(victims, timeout=10)
    box.proc.wait(timeout=10)
    box.client.close()
    box.proc = subprocess.Popen(
        [find_supervisord(), "-n", "-c", str(box.settings.data_dir / "supervisord.conf")],
        env=box.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    box.client = Supervisor(box.settings, timeout=15.0)

    def up() -> bool:
        try:
            return bool(box.client.call("getState")["statename"] == "RUNNING")
        except SupervisorError:
            assert box.proc.poll() is None, "supervisord did not start again"
            return False

    wait_for("supervisord to start again", up, timeout=20, step=0.05)


def _sid(pid: int) -> int:
    try:
        return os.getsid(pid)
    except OSError:
        return -1


@pytest.mark.timeout(600)
def test_serve_killed_at_every_step(
    served: Served,
    origin: Callable[..., Origin],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    repo = origin("shop")
    for v in ("1", "2"):
        repo.commit(f"version {v}", app_files(v))
    repo.push()
    with gitserver.serve(repo.bare.parent) as git:
        served.ok(
            "project", "add", "shop", "--repo", f"{git.base_url}/shop.git",
            "--path", str(served.live),
        )  # fmt: skip
        served.ok("project", "set", "shop", "health-window", "1")
        served.ok("project", "set", "shop", "keep", "10")
        served.ok("deploy", "shop", "--commit", "1")
        served.ok("deploy", "shop", "--commit", "2")
        assert served.assert_consistent() == 2

        # 1. during a fetch: the git server holds every answer for 4 s
        repo.commit("version 3", app_files("3"))
        repo.push()
        git.delay = 4.0
        mark, seen = len(git.requests), len(served.events("interrupted"))
        served.ok("deploy", "shop", "--detach")
        wait_for(
            "the fetch",
            lambda: any(r.startswith("POST") for r in git.requests[mark:]),
            timeout=30,
            step=0.02,
        )
        served.kill_serve()
        git.delay = 0.0
        assert served.assert_consistent() == 2, "prod moved although the deploy was cut short"
        notes = cut_short(served, seen)
        assert notes == ["shop: deploy was cut short by a restart"], notes
        print("fetch kill:", notes)

        # 2. during a test run: the test slot is stopped and the verdict says why
        seen = len(served.events("interrupted"))
        served.ok("deploy", "shop", "--test", "--duration", "120", "--detach")
        served.wait_version("3", slot="test", timeout=90)
        served.kill_serve()
        served.assert_consistent()
        store = served.fresh_store()
        state = store.state("shop")
        assert not state.test_running and state.test == 3
        assert "interrupted" in str((state.test_run or {}).get("verdict")), state.test_run
        served.box.wait_state("shop-test", ("STOPPED", "EXITED"), timeout=30)
        notes = cut_short(served, seen)
        assert len(notes) == len(set(notes)) and any("test" in n for n in notes), notes
        print("test-run kill:", notes)

        # 3. during a promote's health window (30 s): prod stays on a whole release
        served.ok("project", "set", "shop", "health-window", "30")
        seen = len(served.events("interrupted"))
        served.ok("promote", "shop", "--force", "--detach")
        served.wait_version("3", timeout=60)
        time.sleep(0.5)
        served.kill_serve()
        prod = served.assert_consistent()
        notes = cut_short(served, seen)
        assert notes == ["shop: promote was cut short by a restart"], notes
        print("health-window kill: prod on", prod, notes)

        # 4. at random moments of rollbacks (link switches, program files, store writes)
        served.ok("project", "set", "shop", "health-window", "1")
        rng = random.Random(int(os.environ.get("CONTROLPLANE_FAULT_SEED", "7")))
        outcomes: list[tuple[int, float, int, int]] = []
        for _ in range(KILLS):
            target = rng.choice([n for n in (1, 2, 3) if n != prod])
            delay = rng.uniform(0.0, 1.2)
            seen = len(served.events("interrupted"))
            served.ok("rollback", "shop", str(target), "--detach")
            time.sleep(delay)
            served.kill_serve()
            prod = served.assert_consistent()
            notes = cut_short(served, seen)
            assert len(notes) <= 1, notes
            outcomes.append((target, round(delay, 2), prod, len(notes)))
        print("random kills (target, delay, prod after, reports):", outcomes)
        assert {p for _, _, p, _ in outcomes} <= {1, 2, 3}

        # 5. a container restart: every process dies, supervisord starts again
        before = served.box.client.info("shop-prod")
        restart_container(served.box)
        after = served.box.wait_state("shop-prod", ("RUNNING",), timeout=30, not_pid=before.pid)
        served.box.wait_state("controlplane", ("RUNNING",), timeout=40)
        wait_for("serve to answer", served.answers, timeout=40, step=0.2)
        assert served.assert_consistent() == prod
        assert served.box.client.info("shop-test").state == "STOPPED", "a stopped test slot ran"
        print("container restart: prod back as pid", after.pid, "on #", prod)
