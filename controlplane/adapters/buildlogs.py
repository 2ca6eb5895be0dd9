"""Build logs on disk: one file per build attempt, $DATA/logs/builds/NAME-N.log, then
NAME-N.2.log, NAME-N.3.log … when the same commit is built again (the names are
controlplane.layout's), the newest ATTEMPTS_KEPT of a commit kept. They go with their
release (prune) and with their project, as do the project's slot logs (`remove_slot_logs`)."""

from __future__ import annotations

import contextlib
import glob
from pathlib import Path

from controlplane.layout import Layout, build_log_of

ATTEMPTS_KEPT = 5


def attempts(layout: Layout, name: str, n: int | None = None) -> list[Path]:
    """A project's build logs (those of commit #n only, when given), oldest build first."""
    try:
        files = list(layout.builds_dir.iterdir())
    except OSError:
        return []
    found: list[tuple[int, int, Path]] = []
    for path in files:
        parsed = build_log_of(path.name)
        if parsed is None or parsed[0] != name or (n is not None and parsed[1] != n):
            continue
        found.append((parsed[1], parsed[2], path))
    return [path for _n, _attempt, path in sorted(found)]


def new_attempt(layout: Layout, name: str, n: int) -> Path:
    """The log for a new build of commit #n: the next attempt's name. Only the newest
    ATTEMPTS_KEPT builds of one commit keep their logs (a commit retried all day does not
    fill the disk); older ones are deleted here."""
    earlier = attempts(layout, name, n)
    numbers = [parsed[2] for parsed in map(build_log_of, (p.name for p in earlier)) if parsed]
    for path in earlier[: max(0, len(earlier) - ATTEMPTS_KEPT + 1)]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return layout.build_log(name, n, 1 + max(numbers, default=0))


def remove(layout: Layout, name: str, numbers: list[int] | None = None) -> int:
    """Delete the build logs of commits `numbers` (every one of the project for None);
    how many files went."""
    gone = 0
    for path in attempts(layout, name):
        parsed = build_log_of(path.name)
        if parsed is None or (numbers is not None and parsed[1] not in numbers):
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            gone += 1
    return gone


def remove_slot_logs(layout: Layout, name: str) -> int:
    """Delete a removed project's slot logs (stdout and stderr of each slot, with the
    backups supervisord rotated: NAME-SLOT.out.log, .out.log.1, …); how many files went.
    Call it once supervisord has let go of the program."""
    gone = 0
    for slot in ("prod", "test"):
        for log in layout.program_logs(f"{name}-{slot}"):
            for path in log.parent.glob(glob.escape(log.name) + "*"):
                if path.name != log.name and not path.name[len(log.name) + 1 :].isdecimal():
                    continue
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    gone += 1
    return gone
