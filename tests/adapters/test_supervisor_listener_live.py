"""The event listener against a real supervisord: it survives every switch and stop."""

from __future__ import annotations

import json
import os
import threading

import pytest

from controlplane.adapters.supervisor.client import write_program
from controlplane.adapters.supervisor.events import OK, READY, Listener
from controlplane.adapters.supervisor.runner import SupervisorRunner
from tests.support.fixtures_supervisor import BoxFactory, write_app

HEADER = "ver:3.0 server:supervisor serial:21 pool:controlplane-events poolserial:10 "


def event(name: str, payload: str) -> bytes:
    return f"{HEADER}eventname:{name} len:{len(payload.encode())}\n{payload}".encode()


def test_the_listener_survives_switches_and_stops(box_factory: BoxFactory) -> None:
    box = box_factory()
    project = box.add_project("shop")
    runner = SupervisorRunner(box.settings)
    releases = [box.base / "releases" / str(n) for n in (1, 2)]
    for release in releases:
        write_app(release)
    runner.switch(project, "test", releases[1])
    for slot in ("prod", "test"):
        write_program(box.settings, project, slot)
    box.client.apply()
    for program in ("shop-prod", "shop-test"):
        box.wait_state(program, ("RUNNING",))
    listener = box.client.info("controlplane-events").pid
    for round_ in range(4):
        release = releases[round_ % 2]
        runner.switch(project, "test", release)  # a slot switch: link, then restart
        runner.restart("shop", "test")
        runner.stop("shop", "prod")  # a stop, and a start
        runner.start("shop", "prod")
        runner.place(project, "test", autostart=bool(round_ % 2))  # program file changed
        runner.start("shop", "test")
        for program in ("shop-prod", "shop-test"):
            box.wait_state(program, ("RUNNING",))
        assert box.client.info("controlplane-events").pid == listener, "the listener died"
    runner.remove(project, "test")
    assert box.client.info("controlplane-events").pid == listener
    box.shutdown()  # as `docker stop`
    log = box.settings.layout.supervisord_log.read_text()
    errors = box.settings.layout.events_err_log.read_text()
    assert "stopped: controlplane-events (terminated by SIGTERM)" in log
    assert "exited: controlplane-events" not in log
    assert "Traceback" not in errors and "KeyError" not in errors


def test_a_death_told_by_an_earlier_event_is_skipped(box_factory: BoxFactory) -> None:
    """The crash of #15: a STOPPED event and the app's death read in one wake-up, the event
    handled first (it forgets the program), then the death."""
    box = box_factory()
    project = box.add_project("shop")
    write_program(box.settings, project, "prod")
    box.client.apply()
    pid = box.wait_state("shop-prod", ("RUNNING",)).pid
    with open(os.devnull, "rb") as stdin, open(os.devnull, "wb") as stdout:
        listener = Listener(box.settings, box.client, stdin=stdin, stdout=stdout)
        listener.seed()
        assert listener.watch.by_program["shop-prod:shop-prod"][0] == pid
        header = {"eventname": "PROCESS_STATE_STOPPED"}
        payload = f"processname:shop-prod groupname:shop-prod from_state:STOPPING pid:{pid}"
        listener.handle_event(header, payload)
        listener.handle_death("shop-prod:shop-prod")  # raised KeyError: 'shop-prod:shop-prod'
    assert listener.watch.by_program == {}


def test_an_event_that_breaks_a_handler_is_answered_and_logged(
    box_factory: BoxFactory, caplog: pytest.LogCaptureFixture
) -> None:
    box = box_factory()
    read_in, write_in = os.pipe()
    read_out, write_out = os.pipe()
    stdin, stdout = os.fdopen(read_in, "rb", buffering=0), os.fdopen(write_out, "wb")
    listener = Listener(box.settings, box.client, stdin=stdin, stdout=stdout)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(listener.run()))
    thread.start()
    bad = "processname:shop-prod groupname:shop-prod from_state:STARTING pid:not-a-pid"
    good = "processname:shop-prod groupname:shop-prod from_state:STARTING"
    os.write(write_in, event("PROCESS_STATE_RUNNING", bad))
    os.write(write_in, event("PROCESS_STATE_BACKOFF", good))
    answers = b""
    while answers.count(OK) < 2:
        answers += os.read(read_out, 4096)
    os.close(write_in)  # supervisord closes our stdin: the listener ends
    thread.join(timeout=10)
    stdin.close()
    stdout.close()
    os.close(read_out)
    assert result == [0]
    assert answers == READY + (OK + READY) * 2
    records = [json.loads(x) for x in box.settings.layout.events_log.read_text().splitlines()]
    assert any(r["state"] == "BACKOFF" and r["program"] == "shop-prod" for r in records)
    assert "handle_event" in caplog.text and "failed; going on" in caplog.text
    assert "Traceback" in caplog.text
