"""Logs: a slot's streams told apart, and following them (the reading itself: test_tail.py)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from controlplane.observe.logs import follow, format_logs, slot_tail
from controlplane.settings import Settings


def write(path: Path, lines: list[str], mode: str = "w") -> None:
    with path.open(mode) as handle:
        handle.write("".join(line + "\n" for line in lines))


def test_slot_tail_tells_the_streams_apart(settings: Settings) -> None:
    settings.logs_dir.mkdir(parents=True)
    write(settings.logs_dir / "shop-prod.out.log", ["hello"])
    write(settings.logs_dir / "shop-prod.err.log", ["Traceback: boom"])
    logs = slot_tail(settings, "shop", "prod", 30)
    assert (logs.stdout, logs.stderr) == (["hello"], ["Traceback: boom"])
    text = format_logs(logs)
    assert text.index("stdout") < text.index("hello") < text.index("stderr") < text.index("boom")
    only = slot_tail(settings, "shop", "prod", 30, "stderr")
    assert only.stdout == [] and "stdout" not in format_logs(only, "stderr")
    assert "(empty)" in format_logs(slot_tail(settings, "shop", "test", 30))
    assert "── shop-prod stdout (1 line) ──" in text
    ru = format_logs(slot_tail(settings, "shop", "test", 30), lang="ru")
    assert "── shop-test stdout (0 строк) ──\n(пусто)" in ru
    write(settings.logs_dir / "shop-prod.out.log", ["a", "b"], "a")
    assert "(3 строки)" in format_logs(slot_tail(settings, "shop", "prod", 30), lang="ru")


def test_follow_sees_new_lines_and_rotation(tmp_path: Path) -> None:
    out, err = tmp_path / "shop-prod.out.log", tmp_path / "shop-prod.err.log"
    write(out, ["old"])
    seen: list[tuple[str, str]] = []
    stop = threading.Event()

    def on_lines(path: Path, lines: list[str]) -> None:
        seen.extend((path.name, line) for line in lines)

    thread = threading.Thread(target=follow, args=([out, err], stop, on_lines))
    thread.start()
    try:
        time.sleep(0.5)
        write(out, ["a"], "a")
        write(err, ["e"])  # created after following began
        wait_for(lambda: len(seen) >= 2)
        write(out, ["b"], "a")
        os.replace(out, tmp_path / "shop-prod.out.log.1")
        write(out, ["c"])
        wait_for(lambda: len(seen) >= 4)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    expected = [("shop-prod.out.log", x) for x in "abc"]
    assert sorted(seen) == sorted([*expected, ("shop-prod.err.log", "e")])
    assert [line for name, line in seen if name == "shop-prod.out.log"] == ["a", "b", "c"]


def wait_for(cond: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")
