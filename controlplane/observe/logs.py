"""A slot's logs: the last lines of stdout and stderr, the full file, and following it.

supervisord writes each slot's stdout and stderr to their own files
($DATA/logs/NAME-SLOT.out.log and .err.log) and rotates them at 5 MB, keeping 3 backups
(NAME-SLOT.out.log.1 …), so logs never fill the disk. The last lines come from the end of
the file (and the newest backup when the file was just rotated); `follow` watches the
folder with watchfiles and keeps reading across a rotation.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from controlplane.adapters.supervisor.client import program_name, slot_logs
from controlplane.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_LINES = 30
BLOCK = 8192
STREAMS = ("stdout", "stderr")

OnLines = Callable[[Path, list[str]], None]


def tail_lines(path: Path, n: int = DEFAULT_LINES, *, rotated: bool = True) -> list[str]:
    """The last `n` lines of a file, read from its end; topped up from `path.1` when the
    file holds fewer (it was just rotated). A missing file has no lines."""
    if n <= 0:
        return []
    lines = _tail(path, n)
    backup = path.with_name(path.name + ".1")
    if rotated and len(lines) < n and backup.exists():
        lines = _tail(backup, n - len(lines)) + lines
    return lines


def _tail(path: Path, n: int) -> list[str]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return []
    with handle:
        end = handle.seek(0, os.SEEK_END)
        data = b""
        pos = end
        while pos > 0 and data.count(b"\n") <= n:
            step = min(BLOCK, pos)
            pos -= step
            handle.seek(pos)
            data = handle.read(step) + data
    lines = data.decode("utf-8", "replace").splitlines()
    return lines[-n:]


@dataclass(frozen=True)
class SlotLogs:
    """The last lines of one slot's stdout and stderr, and where the full files are."""

    project: str
    slot: str
    program: str
    stdout_path: str
    stderr_path: str
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slot_tail(
    settings: Settings, name: str, slot: str, n: int = DEFAULT_LINES, which: str = "both"
) -> SlotLogs:
    """The last `n` lines of a slot's stdout and/or stderr (`which`: stdout, stderr, both)."""
    out_log, err_log = slot_logs(settings, name, slot)
    return SlotLogs(
        project=name,
        slot=slot,
        program=program_name(name, slot),
        stdout_path=str(out_log),
        stderr_path=str(err_log),
        stdout=tail_lines(out_log, n) if which in ("stdout", "both") else [],
        stderr=tail_lines(err_log, n) if which in ("stderr", "both") else [],
    )


def log_file(settings: Settings, name: str, slot: str, stream: str = "stdout") -> Path:
    """The full log file of a slot's stream, to be sent as a document."""
    out_log, err_log = slot_logs(settings, name, slot)
    return err_log if stream == "stderr" else out_log


def format_logs(logs: SlotLogs, which: str = "both") -> str:
    """Plain text: each stream under its own heading, or a note that it is empty."""
    parts: list[str] = []
    for stream in STREAMS:
        if which not in (stream, "both"):
            continue
        lines: list[str] = getattr(logs, stream)
        head = f"── {logs.program} {stream} ({len(lines)} lines) ──"
        parts.append(head + "\n" + ("\n".join(lines) if lines else "(empty)"))
    return "\n".join(parts)


# -- following -----------------------------------------------------------------------------


class FileCursor:
    """Where reading a log file got to; survives rotation (rename) and truncation."""

    def __init__(self, path: Path, *, from_end: bool = True) -> None:
        self.path = path
        self.inode = 0
        self.offset = 0
        self.partial = b""
        if from_end:
            try:
                st = path.stat()
                self.inode, self.offset = st.st_ino, st.st_size
            except FileNotFoundError:
                pass

    def read_new(self) -> list[str]:
        """Complete lines added since the last call, the rotated file's rest first."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return []
        data = b""
        if st.st_ino != self.inode:
            backup = self.path.with_name(self.path.name + ".1")
            if self.inode and _inode(backup) == self.inode:
                data = _read_from(backup, self.offset)
            self.inode, self.offset = st.st_ino, 0
        elif st.st_size < self.offset:  # truncated in place
            self.offset = 0
        fresh = _read_from(self.path, self.offset)
        self.offset += len(fresh)
        data = self.partial + data + fresh
        cut = data.rfind(b"\n") + 1
        self.partial = data[cut:]
        return data[:cut].decode("utf-8", "replace").splitlines()


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return -1


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.read()
    except FileNotFoundError:
        return b""


def follow(
    paths: Path | Sequence[Path],
    stop: threading.Event,
    on_lines: OnLines,
    *,
    from_end: bool = True,
    debounce_ms: int = 200,
) -> None:
    """Call `on_lines(path, lines)` with what each file gains until `stop` is set.

    The folders are watched with watchfiles (inotify, polling where it is missing), so a
    quiet log costs nothing; a rotated file is read to its end before the new one."""
    import watchfiles

    files = [paths] if isinstance(paths, Path) else list(paths)
    cursors = {str(p): FileCursor(p, from_end=from_end) for p in files}
    names = {p.name for p in files} | {p.name + ".1" for p in files}
    folders = sorted({str(p.parent) for p in files})

    def wanted(_change: watchfiles.Change, changed: str) -> bool:
        return os.path.basename(changed) in names

    _deliver(cursors, on_lines)
    for _changes in watchfiles.watch(
        *folders,
        watch_filter=wanted,
        stop_event=stop,
        debounce=debounce_ms,
        rust_timeout=500,
        recursive=False,
        raise_interrupt=False,
    ):
        _deliver(cursors, on_lines)
    _deliver(cursors, on_lines)


def _deliver(cursors: dict[str, FileCursor], on_lines: OnLines) -> None:
    for cursor in cursors.values():
        lines = cursor.read_new()
        if lines:
            try:
                on_lines(cursor.path, lines)
            except Exception:
                logger.exception("a follower of %s failed", cursor.path)
