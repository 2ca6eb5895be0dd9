"""Whether supervisord has read conf.d as it is now, so a start can skip `reloadConfig`.

supervisord's `reloadConfig` re-reads every program file, and its config parser does so
in time that grows with the square of the number of files: about 0.2 s with 100
programs and 2 s with 500 on 2 cores, more than 15 s with 1,000, while supervisord
answers nobody else. A `serve` start that changed no file has nothing to reload, as long
as supervisord has read every file since it last changed. It has when each file (and the
folder, which a removal or a rename into it changes) is older than the latest of:

- supervisord's own start (it reads its config when it starts), from /proc, taken a
  second early to stay on the safe side of the boot time's whole seconds;
- the start of the last `reloadConfig` that was applied in full (`mark_read`, called by
  `Supervisor.apply`; a file written while it ran counts as unread).

Anything unknown (no record, no /proc, a file that cannot be looked at) says "not read",
and the caller reloads as before.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from controlplane.adapters.files import write_atomic

RECORD = "conf-read"
MARGIN = 1.0  # seconds: /proc's boot time is whole seconds, clocks are adjusted


def record_path(supervisor_dir: Path) -> Path:
    return supervisor_dir / RECORD


def mark_read(supervisor_dir: Path, started: float) -> None:
    """A reloadConfig begun at `started` (time.time()) was applied in full."""
    with contextlib.suppress(OSError):  # only a speed-up is lost
        write_atomic(record_path(supervisor_dir), f"{started!r}\n", mode=0o600)


def last_read(supervisor_dir: Path, pid: int) -> float | None:
    """When supervisord (pid) last read all its config, or None when that is not known."""
    times = [t for t in (_recorded(supervisor_dir), _started(pid)) if t is not None]
    return max(times) if times else None


def files_read(supervisor_dir: Path, confd: Path, pid: int) -> bool:
    """Whether supervisord has read conf.d (and supervisord.conf) as they are now."""
    since = last_read(supervisor_dir, pid)
    if since is None:
        return False
    try:
        paths = [confd, *confd.glob("*.conf")]
        newest = max(os.stat(p).st_mtime for p in paths)
    except OSError:
        return False
    return newest < since


def _recorded(supervisor_dir: Path) -> float | None:
    try:
        return float(record_path(supervisor_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _started(pid: int) -> float | None:
    """The process's start time (wall clock, a second early), from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22, after the name
        boot = next(
            int(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    started = boot + ticks / os.sysconf("SC_CLK_TCK") - MARGIN
    return started if started <= time.time() else None
