"""The event listener's pure parts: protocol parsing, records, the events file, wake-ups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controlplane.adapters.supervisor.client import ProcessInfo
from controlplane.adapters.supervisor.events import (
    EventLog,
    ProtocolReader,
    parse_tokens,
    state_record,
    wake,
)
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
