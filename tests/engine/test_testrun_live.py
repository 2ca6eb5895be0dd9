"""Test runs, verdicts and crash loops against a real supervisord (issue #14's defects).

A test run starts its app exactly once (the app's own output and supervisord's log say
so), Extend works from the moment the slot is started, a crash loop is told with the exit
status the app really had (supervisord's getProcessInfo says 0 for an app that died while
starting) and each distinct traceback once, a cancelled test is no pass, a first deploy
that crash-loops stays wanted and is started again, and a stopped test slot is neither
live in the history nor kept from pruning for ever.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from controlplane.adapters.supervisor.events import EventTail
from controlplane.domain.kinds import EventKind
from controlplane.service.serve import FatalRetry, Server
from tests.support.fixtures_release import Plant, add_shop

# crashes at import time, well within startsecs: supervisord keeps no exit status for it
CRASHER = """\
import sys
print("starting crasher", flush=True)

def main():
    raise ValueError("boom")

main()
"""


def background(plant: Plant, *args: str) -> tuple[threading.Thread, dict[str, Any]]:
    """Run the CLI in a thread; its CompletedProcess lands in the dict under 'done'."""
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(done=plant.cli(*args)))
    thread.start()
    return thread, out


def wait_program(plant: Plant, program: str, out: dict[str, Any], timeout: float = 100) -> None:
    """Until supervisord has the program (the run ending first fails with its output)."""
    deadline = time.monotonic() + timeout
    while plant.box.client.find(program) is None:
        done = out.get("done")
        assert done is None, f"ended before {program} appeared: {done.stdout}{done.stderr}"
        assert time.monotonic() < deadline, f"{program} never appeared"
        time.sleep(0.02)


def supervisord_log(plant: Plant) -> str:
    return Path(plant.settings.layout.supervisord_log).read_text(errors="replace")


def app_log(plant: Plant, program: str) -> str:
    out, _err = plant.settings.layout.program_logs(program)
    return Path(out).read_text(errors="replace")


def commit_crasher(plant: Plant, version: str) -> None:
    plant.origin.commit(
        f"version {version}",
        {"main.py": CRASHER, "VERSION": version + "\n", "requirements.txt": "tinylib\n"},
    )
    plant.origin.push()


def test_a_test_run_starts_its_app_once_and_extend_works_at_once(plant: Plant) -> None:
    plant.commit("1")
    add_shop(plant)
    thread, out = background(plant, "deploy", "shop", "--test", "--duration", "5")
    wait_program(plant, "shop-test", out)
    # the slot was just started: its run is there to extend already
    assert "test extended by 5 s" in plant.ok("extend", "shop", "5")
    thread.join(timeout=180)
    done = out["done"]
    assert done.returncode == 0 and "passed" in done.stdout, done.stdout + done.stderr
    # one start: one copy of the app said it runs, supervisord spawned it once and never
    # had to wait for (or kill) a first copy
    assert app_log(plant, "shop-test").count("running commit 1") == 1
    log = supervisord_log(plant)
    assert log.count("spawned: 'shop-test'") == 1, log
    assert log.count("stopped: shop-test") == 1 and "SIGKILL" not in log, log  # the end
    verdict = plant.stack.store.state("shop").test_verdict
    assert verdict is not None and verdict.evidence is not None
    assert verdict.evidence.duration >= 10  # 5 s and the 5 s of Extend

    # a second run on the program that exists now: again exactly one start
    done = plant.cli("deploy", "shop", "--test", "--duration", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert app_log(plant, "shop-test").count("running commit 1") == 2
    assert supervisord_log(plant).count("spawned: 'shop-test'") == 2

    # the stopped test slot is not live in the history
    row = next(r for r in plant.ok("history", "shop").splitlines() if r.startswith("#1"))
    assert "live" not in row and "test stopped" in row, row
    promote = plant.ok("promote", "shop")
    assert "promoted to #1" in promote
    row = next(r for r in plant.ok("history", "shop").splitlines() if r.startswith("#1"))
    assert "live prod" in row and "test stopped" in row, row

    # a stopped test release is kept like any other, not for ever: keep=2 and two newer
    # releases in prod prune it, and the test slot is discarded with it
    plant.ok("project", "set", "shop", "keep", "1")
    plant.commit("2")
    plant.ok("deploy", "shop")
    plant.commit("3")
    out_3 = plant.ok("deploy", "shop")
    state = plant.stack.store.state("shop")
    releases = {r.n: r.state for r in plant.stack.store.releases("shop")}
    assert state.test is None and state.test_run is None, state
    assert releases[1] == "pruned", (releases, out_3)
    assert plant.box.client.find("shop-test") is None
    assert "test slot of #1 discarded" in out_3
    # the verdict stays on the release record
    release = plant.stack.store.release("shop", 1)
    assert release is not None and release.verdict is not None and release.verdict["passed"]


def test_a_crash_loop_names_its_real_exit_status_and_each_error_once(plant: Plant) -> None:
    commit_crasher(plant, "1")
    add_shop(plant)
    done = plant.cli("deploy", "shop", "--test", "--duration", "6")
    assert done.returncode == 1, done.stdout + done.stderr
    # supervisord logged exit status 1 for each start; the verdict says the same
    assert "exit status 1; not expected" in supervisord_log(plant)
    assert "exit codes 1" in done.stderr and "exit codes 0" not in done.stderr, done.stderr
    verdict = plant.stack.store.state("shop").test_verdict
    assert verdict is not None and verdict.evidence is not None
    ev = verdict.evidence
    assert ev.restarts >= 2 and set(ev.exit_codes) == {1}, ev
    # the traceback came at every start, and is shown once, with its count
    starts = app_log(plant, "shop-test").count("starting crasher")
    assert starts >= 2
    assert done.stdout.count("Traceback (most recent call last)") == 1, done.stdout
    [seen] = ev.distinct
    assert seen["error"] == "ValueError: boom" and seen["where"] == "main.py:5"
    assert seen["count"] >= 2
    assert "× ValueError: boom (main.py:5)" in done.stdout

    # the same crash as a first deploy: nothing to go back to, prod stays wanted and is
    # started again (supervisord, then serve with a growing delay), the admin is told
    done = plant.cli("deploy", "shop")
    assert done.returncode == 1
    said = done.stderr
    assert "no earlier release to go back to" in said and "growing delay" in said, said
    assert "exit status" in said and "0 restarts" not in said, said
    assert plant.stack.store.state("shop").prod_running is True
    kinds = [e.kind for e in plant.stack.outbox.recent("shop")]
    assert EventKind.CRASH_LOOP in kinds
    plant.box.wait_state("shop-prod", ("FATAL",), timeout=60)
    status = plant.ok("status", "shop")
    assert "FATAL" in status and "exit status 1" in status, status
    assert "exit status 0" not in status
    server = Server(
        settings=plant.settings,
        store=plant.stack.store,
        client=plant.box.client,
        retry=FatalRetry(base=0.05, cap=0.05),
        tail=EventTail(plant.settings.layout.events_log, from_end=False),
        outbox=plant.stack.outbox,
        reconciled=True,
    )
    server.serve_once(now=100.0)
    server.serve_once(now=101.0)
    assert [r.program for r in server.retry.history] == ["shop-prod"]
    info = plant.box.client.info("shop-prod")
    assert info.state != "FATAL" or info.start > 0, info


def test_a_cancelled_test_is_no_pass(plant: Plant) -> None:
    plant.commit("1")
    add_shop(plant)
    thread, out = background(plant, "deploy", "shop", "--test", "--duration", "120")
    plant.box.wait_state("shop-test", ("RUNNING",), timeout=120)
    assert "cancel requested" in plant.ok("cancel", "shop")
    thread.join(timeout=60)
    done = out["done"]
    assert done.returncode == 1 and "passed" not in done.stdout + done.stderr, done.stdout
    state = plant.stack.store.state("shop")
    verdict = state.test_verdict
    assert verdict is not None and verdict.outcome == "cancelled" and not verdict.promotable
    assert "cancelled after" in str(verdict.reason_text)
    # the release keeps what it had: no verdict
    release = plant.stack.store.release("shop", 1)
    assert release is not None and release.verdict is None
    event = [e for e in plant.stack.outbox.recent("shop") if e.kind == EventKind.VERDICT][-1]
    assert event.data["outcome"] == "cancelled" and event.data["promotable"] is False
    refused = plant.cli("promote", "shop")
    assert refused.returncode == 1 and "cancelled" in refused.stderr, refused.stderr
    assert plant.box.client.info("shop-test").state == "STOPPED"
