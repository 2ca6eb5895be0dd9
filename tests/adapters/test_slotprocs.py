"""The one walk of the process tree: a process's descendants, and this process's ancestors."""

from __future__ import annotations

import os
import subprocess
import time

import psutil

from controlplane.adapters.slotprocs import descendants, protected


def test_descendants_are_every_process_below_the_given_ones() -> None:
    parent = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    other = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 10
        while len(psutil.Process(parent.pid).children()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        below = {p.pid for p in psutil.Process(parent.pid).children(recursive=True)}
        assert len(below) == 2
        assert descendants(parent.pid) == {parent.pid, *below}
        assert descendants(parent.pid, other.pid) == {parent.pid, other.pid, *below}
    finally:
        for proc in psutil.Process(parent.pid).children(recursive=True):
            proc.kill()
        parent.kill()
        other.kill()
        parent.wait()
        other.wait()
    assert descendants(parent.pid) == set()  # gone: nothing, and no error


def test_protected_is_this_process_its_ancestors_and_supervisord() -> None:
    spare = protected(4242)
    assert {os.getpid(), os.getppid(), 1, 4242} <= spare
    assert protected(None) == spare - {4242}
