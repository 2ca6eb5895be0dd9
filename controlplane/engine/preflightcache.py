"""The pre-flight check's answer, remembered while nothing it looked at has changed.

The check (buildsteps.preflight) starts the projects' interpreter as the run-as user to
see that it runs, can make venvs and reaches the releases folder: a Python start, 30 ms
on a quiet machine and 100 ms on a busy one, a fifth of a deploy whose venv is reused.
Its answer depends on the interpreter's file, the user and the modes and owners of the
releases folder and of every folder above it; a passed check is remembered for
`FRESH` seconds under a key made of those (os.stat only), so any change to them runs the
check again, and so does the next build after `FRESH`. A failed check is never
remembered. The memory is this process's: a restart of serve checks again.
"""

from __future__ import annotations

import os
import pwd
import threading
import time
from pathlib import Path

FRESH = 600.0
Key = tuple[object, ...]

_lock = threading.Lock()
_passed: dict[Key, tuple[float, str]] = {}


def key(python: str, user: str | None, folder: Path, pip: bool) -> Key | None:
    """What the check's answer depends on; None when something cannot be looked at."""
    try:
        real = os.path.realpath(python)
        st = os.stat(real)
        account = None if user is None else pwd.getpwnam(user)[2:4]
        chain = [os.stat(p) for p in (folder, *folder.parents)]
    except (OSError, KeyError):
        return None
    folders = tuple((s.st_ino, s.st_mode, s.st_uid, s.st_gid) for s in chain)
    return (python, real, st.st_ino, st.st_size, st.st_mtime_ns, user, account, pip, folders)


def recall(k: Key | None) -> str | None:
    """The output of a check passed under `k` less than FRESH seconds ago, or None."""
    if k is None:
        return None
    with _lock:
        found = _passed.get(k)
    if found is None or time.monotonic() - found[0] > FRESH:
        return None
    return found[1]


def remember(k: Key | None, output: str) -> None:
    """A check passed under `k` with this output."""
    if k is None:
        return
    with _lock:
        _passed[k] = (time.monotonic(), output)
