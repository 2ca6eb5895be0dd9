"""The one tailer: the last lines from a file's end, topped up across rotation, and a
cursor that reads what a file gained across rotation and truncation."""

from __future__ import annotations

import os
from pathlib import Path

from controlplane.adapters.supervisor.events import EventTail
from controlplane.adapters.tail import FileCursor, last_lines


def write(path: Path, lines: list[str], mode: str = "w") -> None:
    with path.open(mode) as handle:
        handle.write("".join(line + "\n" for line in lines))


def test_last_lines_are_read_from_the_end(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    lines = [f"line {i} " + "x" * 100 for i in range(5000)]  # ~0.5 MB: several blocks
    write(log, lines)
    assert last_lines(log, 30) == lines[-30:]
    assert last_lines(log, 1) == lines[-1:]
    assert last_lines(log, 0) == []
    assert last_lines(tmp_path / "missing.log", 30) == []


def test_last_lines_top_up_from_the_rotated_file(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write(tmp_path / "a.log.1", [f"old {i}" for i in range(50)])
    write(log, ["new 0", "new 1"])
    assert last_lines(log, 5) == ["old 47", "old 48", "old 49", "new 0", "new 1"]
    assert last_lines(log, 2) == ["new 0", "new 1"]


def test_last_lines_of_a_file_without_a_last_newline(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"one\ntwo\nthr\xffee")
    assert last_lines(log, 2) == ["two", "thr\ufffdee"]


def test_cursor_reads_across_rotation_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write(log, ["before"])
    cursor = FileCursor(log)
    write(log, ["one", "half"], "a")
    with log.open("a") as handle:
        handle.write("partial")
    assert cursor.read_new() == ["one", "half"]
    with log.open("a") as handle:
        handle.write(" line\n")
    write(log, ["last of the old file"], "a")
    os.replace(log, tmp_path / "a.log.1")  # supervisord's rotation: rename, then a new file
    write(log, ["first of the new file"])
    assert cursor.read_new() == ["partial line", "last of the old file", "first of the new file"]
    log.write_text("")  # truncated in place
    write(log, ["after truncation"], "a")
    assert cursor.read_new() == ["after truncation"]
    assert cursor.read_new() == []


def test_cursor_from_the_start_and_on_a_file_made_later(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    write(log, ["kept"])
    assert FileCursor(log, from_end=False).read_new() == ["kept"]
    later = FileCursor(tmp_path / "later.log")
    assert later.read_new() == []
    write(tmp_path / "later.log", ["first"])
    assert later.read_new() == ["first"]


def test_event_tail_reads_records_through_the_cursor(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"n": 0}\n')
    tail = EventTail(path)
    with path.open("a") as handle:
        handle.write('\n{"n": 1}\n{"n": 2')
    assert tail.read_new() == [{"n": 1}]  # blank lines skipped, the half record waits
    with path.open("a") as handle:
        handle.write("}\n")
    os.replace(path, tmp_path / "events.jsonl.1")
    path.write_text('{"n": 3}\n')
    assert tail.read_new() == [{"n": 2}, {"n": 3}]
    assert EventTail(path, from_end=False).read_new() == [{"n": 3}]
