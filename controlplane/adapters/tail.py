"""Reading log files that another process writes: their last lines, and what they gained.

One reader for every such file: a slot's stdout and stderr (supervisord rotates each to
NAME.1 at 5 MB), the event listener's events.jsonl (rotated the same way at 1 MiB), the
logs a test run or a health window watches, the bot's 👁 Follow. `last_lines` reads blocks
from the end, so the last lines of a 5 MB log cost a few kilobytes, and tops them up from
NAME.1 when the file was just rotated. A `FileCursor` remembers the file (its inode) and
how far it read: after a rotation it first reads the rest of the old file, now NAME.1, then
the new one from its start; a file truncated in place is read again from its start. Only
complete lines come out: a line still being written waits for its newline.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from controlplane.layout import rotated

logger = logging.getLogger(__name__)

BLOCK = 8192


def last_lines(path: Path, n: int) -> list[str]:
    """The last `n` lines of a file, read from its end; topped up from NAME.1 when the file
    holds fewer (it was just rotated). A missing file has no lines."""
    if n <= 0:
        return []
    lines = _last(path, n)
    backup = rotated(path)
    if len(lines) < n and backup.exists():
        lines = _last(backup, n - len(lines)) + lines
    return lines


def _last(path: Path, n: int) -> list[str]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return []
    with handle:
        pos = handle.seek(0, os.SEEK_END)
        data = b""
        while pos > 0 and data.count(b"\n") <= n:
            step = min(BLOCK, pos)
            pos -= step
            handle.seek(pos)
            data = handle.read(step) + data
    return data.decode("utf-8", "replace").splitlines()[-n:]


class FileCursor:
    """Where reading a file got to (its inode and offset); survives rotation (rename) and
    truncation. `from_end` starts at the file's current end, else at its start."""

    def __init__(self, path: Path, *, from_end: bool = True) -> None:
        self.path = path
        self.inode = 0
        self.offset = 0
        self.partial = b""  # the start of a line whose newline has not come yet
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
            backup = rotated(self.path)
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
