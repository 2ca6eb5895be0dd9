"""An append-only log of records: one JSON object a line, each append fsynced.

The file starts with a header line (`{"log": ID}`, a fresh ID each time the file is
written whole), then one record a line. Appending writes the new lines at the end and
fsyncs the file (its creation also fsyncs the folder), as durable as the store's atomic
writes; compaction rewrites the file whole through `write_atomic` (temp file, fsync,
rename, fsync of the folder), so a kill leaves the old log or the new one.

A reader remembers how far it has read and, on the next call, reads only what was
appended since; a new file (another inode, another header, or shorter than what was read)
is read again from the start. A last line without its newline is an append cut short (a
kill, a full disk): it is not read, and the next append cuts it off first. A damaged line
in the middle is skipped with a warning. The caller holds the lock that orders writers
(the store's lock file).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from controlplane.adapters.files import os_reason, write_atomic
from controlplane.errors import StoreError
from controlplane.i18n import tr

logger = logging.getLogger(__name__)

Record = dict[str, Any]
HEAD = 64  # bytes of the header compared to tell one file from its replacement


class AppendLog:
    """One log file, read incrementally; the caller serialises calls (under its lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ino: int | None = None
        self._head = b""
        self._offset = 0  # bytes of complete lines read so far
        self._torn = False  # the file ends in a line cut short
        self.lines = 0  # record lines in the file (what compaction would drop)

    def read_new(self) -> tuple[bool, list[Record]]:
        """(fresh, records): the records appended since the last call; with `fresh`, the
        file is not the one read so far and `records` are all of its records."""
        try:
            fh = open(self.path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            fresh = self._ino is not None
            self._ino, self._head, self._offset, self._torn, self.lines = None, b"", 0, False, 0
            return fresh, []
        with fh:
            st = os.fstat(fh.fileno())
            head = _head(os.pread(fh.fileno(), HEAD, 0))
            fresh = st.st_ino != self._ino or st.st_size < self._offset or head != self._head
            if fresh:
                self._ino, self._head, self._offset, self.lines = st.st_ino, head, 0, 0
            fh.seek(self._offset)
            raw = fh.read()
        end = raw.rfind(b"\n") + 1
        torn = end < len(raw)
        if torn and not self._torn:
            logger.warning(
                "%s: a last line cut short (%d bytes) is ignored", self.path, len(raw) - end
            )
        self._torn = torn
        records = _parse(self.path, raw[:end])
        self._offset += end
        self.lines += len(records)
        return fresh, records

    def append(self, records: list[Record]) -> None:
        """Write `records` at the end and fsync (the caller has read everything first)."""
        if self._ino is None:
            self.rewrite(records)
            return
        data = b"".join(_line(r) for r in records)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise _cannot_write(self.path, exc) from exc
        try:
            if self._torn:
                os.ftruncate(fd, self._offset)
                self._torn = False
            _write_all(fd, data)
            os.fsync(fd)
        except OSError as exc:
            _cut(fd, self._offset)
            raise _cannot_write(self.path, exc) from exc
        finally:
            os.close(fd)
        self._offset += len(data)
        self.lines += len(records)

    def rewrite(self, records: list[Record]) -> None:
        """Replace the file with a new header and `records`, atomically."""
        head = _line({"log": secrets.token_hex(8)})[:-1]
        data = head + b"\n" + b"".join(_line(r) for r in records)
        try:
            write_atomic(self.path, data, 0o600)
            st = os.stat(self.path)
        except OSError as exc:
            raise _cannot_write(self.path, exc) from exc
        self._ino, self._head, self._offset, self._torn = st.st_ino, head, len(data), False
        self.lines = len(records)

    def exists(self) -> bool:
        return self._ino is not None


def _line(record: Record) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _head(raw: bytes) -> bytes:
    """The header line (what tells one file from its replacement) of the file's start."""
    return raw.partition(b"\n")[0]


def _parse(path: Path, raw: bytes) -> list[Record]:
    records: list[Record] = []
    for line in raw.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            logger.warning("%s: skipping a damaged line (%d bytes)", path, len(line))
        elif "log" not in record:  # not the header
            records.append(record)
    return records


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _cut(fd: int, offset: int) -> None:
    """Take back an append that failed half way (best effort: the disk may be gone)."""
    try:
        os.ftruncate(fd, offset)
    except OSError:
        logger.warning("cannot cut a failed append back to %d bytes", offset)


def _cannot_write(path: Path, exc: OSError) -> StoreError:
    return StoreError(tr("cannot write {path}: {reason}", path=str(path), reason=os_reason(exc)))
