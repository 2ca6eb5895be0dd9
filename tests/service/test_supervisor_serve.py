"""serve: reconciliation with the store, the events hand-off, and FATAL retries."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from supervisor.xmlrpc import Faults

from controlplane.adapters.supervisor.client import (
    ProgramOptions,
    RPCFault,
    program_name,
    write_program,
)
from controlplane.adapters.supervisor.events import EventTail
from controlplane.errors import SupervisorError
from controlplane.service.serve import FatalRetry, next_delay, reconcile_once, serve
from tests.support.fixtures_supervisor import BoxFactory


def test_retry_delays_grow_and_are_capped() -> None:
    assert [next_delay(i) for i in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert next_delay(1000, base=1, cap=7) == 7


def test_fatal_programs_are_retried_later_and_forgotten_once_running() -> None:
    retry = FatalRetry(base=5, cap=300)
    started: list[str] = []
    retry.observe("controlplane", "FATAL", 0)
    retry.observe("a-prod", "FATAL", 0)
    assert retry.retry_once(started.append, 4.9) == [] and started == []
    assert [r.attempt for r in retry.retry_once(started.append, 5.0)] == [1]
    assert started == ["a-prod"]
    retry.observe("a-prod", "FATAL", 6)
    assert retry.retry_once(started.append, 15.9) == []
    assert [r.attempt for r in retry.retry_once(started.append, 16)] == [2]
    retry.observe("a-prod", "RUNNING", 17)
    retry.observe("a-prod", "FATAL", 100)
    assert retry.ready(105) == ["a-prod"]
    assert [r.program for r in retry.history] == ["a-prod", "a-prod"]


def test_failed_retries_are_rescheduled_or_dropped() -> None:
    retry = FatalRetry(base=1, cap=10)

    def down(program: str) -> None:
        raise SupervisorError("supervisord is not running")

    def gone(program: str) -> None:
        raise RPCFault("startProcess", (program,), Faults.BAD_NAME, "BAD_NAME: " + program)

    retry.observe("a-prod", "FATAL", 0)
    tried = retry.retry_once(down, 1)
    assert tried[0].error == "supervisord is not running" and retry.ready(3) == ["a-prod"]
    retry.retry_once(gone, 3)
    assert retry.ready(1000) == [] and "a-prod" not in retry.attempts


def test_event_tail_reads_new_lines_and_follows_rotation(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"n": 0}\n')
    tail = EventTail(path)
    assert tail.read_new() == []
    with path.open("a") as handle:
        handle.write('{"n": 1}\n{"n": 2')
    assert tail.read_new() == [{"n": 1}]
    with path.open("a") as handle:
        handle.write("}\n")
    path.rename(tmp_path / "events.jsonl.1")
    path.write_text('{"n": 3}\n')
    assert tail.read_new() == [{"n": 2}, {"n": 3}]


def test_reconcile_writes_applies_and_leaves_running_apps_alone(box_factory: BoxFactory) -> None:
    box = box_factory()
    box.add_project("shop")
    blog = box.add_project("blog")
    write_program(box.settings, blog, "prod")
    box.client.apply()
    box.wait_state("blog-prod", ("RUNNING",))
    box.store.remove_project("blog")
    plan = reconcile_once(box.settings, box.store, box.client)
    assert (plan.added, plan.removed) == (["shop-prod"], ["blog-prod"])
    pid = box.wait_state("shop-prod", ("RUNNING",)).pid
    assert sorted(p.name for p in box.settings.confd.iterdir()) == ["shop-prod.conf"]
    plan = reconcile_once(box.settings, box.store, box.client)
    assert plan.empty
    assert box.client.info("shop-prod").pid == pid
    box.add_test_slot("shop")
    plan = reconcile_once(box.settings, box.store, box.client)
    assert plan.added == ["shop-test"] and box.client.info("shop-prod").pid == pid
    box.store.remove_project("shop")
    plan = reconcile_once(box.settings, box.store, box.client)
    assert plan.removed == ["shop-prod", "shop-test"]
    assert {i.name for i in box.client.all_info()} == {"controlplane-events"}


def test_reconcile_reloads_a_program_file_supervisord_has_not_read(
    box_factory: BoxFactory,
) -> None:
    """A start that changed no file skips supervisord's reload (seconds with 1,000
    programs), but a file written and never applied (serve killed in between) still is."""
    box = box_factory()
    shop = box.add_project("shop")
    reconcile_once(box.settings, box.store, box.client)
    pid = box.wait_state("shop-prod", ("RUNNING",)).pid
    assert reconcile_once(box.settings, box.store, box.client).empty
    slower = ProgramOptions(startsecs=2)
    time.sleep(0.01)  # the file's time is after the last reload's
    assert write_program(box.settings, shop, "prod", options=slower)  # then serve died
    plan = reconcile_once(box.settings, box.store, box.client, slower)  # same text: kept
    assert plan.changed == ["shop-prod"]
    assert box.wait_state("shop-prod", ("RUNNING",), not_pid=pid).pid != pid
    assert reconcile_once(box.settings, box.store, box.client, slower).empty


def test_serve_restarts_an_app_that_supervisord_gave_up_on(box_factory: BoxFactory) -> None:
    box = box_factory()
    box.add_project("shop", {"EXIT_AT_ONCE": "1"})
    stop = threading.Event()
    retry = FatalRetry(base=0.5, cap=1.0)
    # startsecs well above the app's start-up time, so a loaded machine never sees RUNNING
    options = ProgramOptions(startretries=0, startsecs=10)
    thread = threading.Thread(
        target=serve,
        args=(box.settings, stop),
        kwargs={"retry": retry, "interval": 0.1, "options": options},
    )
    thread.start()
    try:
        box.wait_state("shop-prod", ("FATAL",))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(retry.history) < 2:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive(), "serve did not stop when asked"
    assert [(r.program, r.attempt) for r in retry.history][:2] == [
        (program_name("shop", "prod"), 1),
        (program_name("shop", "prod"), 2),
    ]
    assert all(r.error is None for r in retry.history)
    events = [
        json.loads(x) for x in (box.settings.logs_dir / "events.jsonl").read_text().splitlines()
    ]
    fatal = [e for e in events if e["program"] == "shop-prod" and e["state"] == "FATAL"]
    assert len(fatal) >= 2, "supervisord gave up again after each retry"


def test_serve_process_stops_cleanly_on_sigterm(box_factory: BoxFactory) -> None:
    import signal
    import subprocess
    import sys

    box = box_factory()
    box.add_project("shop")
    proc = subprocess.Popen(
        [sys.executable, "-m", "controlplane", "serve"],
        env=box.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        box.wait_state("shop-prod", ("RUNNING",))  # serve reconciled at start
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopping" in out  # the log on stdout; warnings and errors on stderr as well
    assert "stopping" not in err and "WARNING" in err
    assert box.client.info("shop-prod").state == "RUNNING", "apps outlive the control plane"
