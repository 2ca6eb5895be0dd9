"""The event listener's pure parts: protocol parsing, records, the events file, wake-ups."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controlplane.adapters.supervisor.events import (
    EventLog,
    ExitLines,
    ProtocolReader,
    exit_from_log,
    parse_tokens,
    state_record,
    wake,
    zombie_status,
)
from controlplane.adapters.supervisor.runner import slot_event
from controlplane.domain.runner import ProcessInfo, ProcessState, SlotEvent
from controlplane.errors import SupervisorError

HEADER = "ver:3.0 server:supervisor serial:21 pool:controlplane-events poolserial:10 "


def event(name: str, payload: str) -> bytes:
    return f"{HEADER}eventname:{name} len:{len(payload.encode())}\n{payload}".encode()


def info(pid: int, state: str = "RUNNING") -> ProcessInfo:
    return ProcessInfo(
        name="a-prod",
        group="a-prod",
        state=state,
        pid=pid,
        start=0,
        stop=0,
        now=0,
        exitstatus=0,
        description="",
    )


def test_tokens() -> None:
    assert parse_tokens("processname:a groupname:a pid:12") == {
        "processname": "a",
        "groupname": "a",
        "pid": "12",
    }
    with pytest.raises(ValueError, match="bad token"):
        parse_tokens("processname:a garbage")


def test_reader_joins_events_split_across_reads() -> None:
    one = event(
        "PROCESS_STATE_RUNNING", "processname:a-prod groupname:a-prod from_state:STARTING pid:42"
    )
    two = event(
        "PROCESS_STATE_EXITED",
        "processname:a-prod groupname:a-prod from_state:RUNNING expected:0 pid:42",
    )
    reader = ProtocolReader()
    data = one + two
    got = []
    for i in range(0, len(data), 7):
        got += reader.feed(data[i : i + 7])
    assert [h["eventname"] for h, _ in got] == ["PROCESS_STATE_RUNNING", "PROCESS_STATE_EXITED"]
    assert got[1][1].endswith("expected:0 pid:42")
    assert reader.buffer == b""


def test_state_record() -> None:
    header = parse_tokens(HEADER + "eventname:PROCESS_STATE_EXITED len:1")
    record = state_record(
        header, "processname:a-prod groupname:a-prod from_state:RUNNING expected:0 pid:42", 5.0
    )
    assert record == {
        "time": 5.0,
        "state": "EXITED",
        "program": "a-prod",
        "group": "a-prod",
        "from": "RUNNING",
        "pid": 42,
        "expected": False,
    }
    tick = parse_tokens(HEADER + "eventname:TICK_5 len:1")
    assert state_record(tick, "when:5", 5.0) is None


def test_event_log_appends_and_rotates(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl", max_bytes=200)
    for i in range(10):
        log.append({"state": "RUNNING", "n": i})
    current = [json.loads(x)["n"] for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    older = [json.loads(x)["n"] for x in (tmp_path / "events.jsonl.1").read_text().splitlines()]
    assert current[-1] == 9 and older and older[-1] + 1 == current[0]
    assert (tmp_path / "events.jsonl").stat().st_size <= 200


def test_wake_asks_until_the_dead_pid_is_gone() -> None:
    answers = [info(42), info(42), info(0, "EXITED")]
    asked: list[str] = []

    def ask(namespec: str) -> ProcessInfo:
        asked.append(namespec)
        return answers.pop(0)

    assert wake(ask, "a-prod:a-prod", 42) == info(0, "EXITED")
    assert asked == ["a-prod:a-prod"] * 3


def test_wake_is_bounded_and_survives_errors() -> None:
    asked: list[str] = []

    def stuck(namespec: str) -> ProcessInfo:
        asked.append(namespec)
        return info(42)

    assert wake(stuck, "a-prod:a-prod", 42, tries=4) == info(42)
    assert len(asked) == 4

    def down(namespec: str) -> ProcessInfo:
        raise SupervisorError("supervisord is not running")

    assert wake(down, "a-prod:a-prod", 42) is None


def zombie(proc: subprocess.Popen[bytes]) -> int:
    """The exit status read from the unreaped child (Popen reaps only when asked)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = zombie_status(proc.pid)
        if status is not None:
            return status
        time.sleep(0.01)
    raise AssertionError(f"{proc.pid} never became a zombie")


def test_the_exit_status_of_a_dead_unreaped_process() -> None:
    exits = subprocess.Popen([sys.executable, "-c", "raise SystemExit(5)"])
    assert zombie(exits) == 5
    assert exits.wait() == 5 and zombie_status(exits.pid) is None  # reaped: gone
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert zombie_status(sleeper.pid) is None  # alive
    sleeper.send_signal(signal.SIGKILL)
    assert zombie(sleeper) == -signal.SIGKILL
    sleeper.wait()


def test_zombie_status_reads_past_a_name_with_brackets(tmp_path: Path) -> None:
    after = ["Z", *["0"] * 48, str(7 << 8), "0"]  # field 52 is the wait status: exit code 7
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "stat").write_text("42 (a) b) " + " ".join(after) + "\n")
    assert zombie_status(42, tmp_path) == 7
    (tmp_path / "42" / "stat").write_text("42 (a) b) S " + " ".join(after[1:]) + "\n")
    assert zombie_status(42, tmp_path) is None  # not a zombie


def test_listener_records_become_slot_events() -> None:
    record = {
        "time": 5.0,
        "state": "EXITED",
        "program": "a-prod",
        "group": "a-prod",
        "from": "RUNNING",
        "pid": 42,
        "expected": False,
        "exitstatus": 3,
    }
    assert slot_event(record) == SlotEvent(
        time=5.0,
        name="a",
        slot="prod",
        state=ProcessState.EXITED,
        previous="RUNNING",
        pid=42,
        expected=False,
        exitstatus=3,
    )
    starting = {"time": 6.0, "state": "STARTING", "program": "a-test", "from": "EXITED"}
    assert slot_event(starting) == SlotEvent(6.0, "a", "test", ProcessState.STARTING, "EXITED")
    assert slot_event({**record, "program": "controlplane-events"}) is None  # not a slot
    assert slot_event({**record, "state": "SOMETHING_NEW"}) is None


def test_the_exit_status_supervisord_logged() -> None:
    at = "2026-11-30 11:12:21,724 WARN "
    assert exit_from_log(at + "exited: a-test (exit status 1; not expected)") == ("a-test", 1)
    assert exit_from_log(
        at.replace("WARN", "INFO") + "exited: a-prod (exit status 0; expected)"
    ) == (
        "a-prod",
        0,
    )
    killed = at + "exited: a-test (terminated by SIGSEGV (core dumped); not expected)"
    assert exit_from_log(killed) == ("a-test", -signal.SIGSEGV)
    assert exit_from_log(at + "stopped: a-test (terminated by SIGTERM)") is None
    assert exit_from_log(at + "spawned: 'a-test' with pid 12") is None


def test_logged_exits_are_taken_in_order_per_program(tmp_path: Path) -> None:
    log = tmp_path / "supervisord.log"
    log.write_text("2026-11-30 10:00:00,000 WARN exited: a-test (exit status 9; not expected)\n")
    exits = ExitLines(log)  # from the end: what was there before is not ours
    with log.open("a") as handle:
        for line in (
            "exited: a-test (exit status 1; not expected)",
            "exited: b-test (exit status 4; not expected)",
            "exited: a-test (exit status 2; not expected)",
        ):
            handle.write(f"2026-11-30 10:00:01,000 WARN {line}\n")
    assert [exits.take("a-test"), exits.take("b-test"), exits.take("a-test")] == [1, 4, 2]
    assert exits.take("a-test") is None
