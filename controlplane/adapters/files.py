"""Durable file writes (a temp file in the same folder, fsync, rename, fsync the folder)
and handing a tree to another user.

A reader (or a restart after a kill) sees either the old content or the new, never half.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from controlplane.adapters.account import account_ids


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: str | bytes, mode: int = 0o600) -> Path:
    """Replace `path` with `data` atomically; the file has `mode` from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def chown_tree(root: Path, user: str | None) -> None:
    """Give a tree (links themselves, not their targets) to `user`, or back to us (None)."""
    uid, gid = account_ids(user)
    for here, dirs, files in os.walk(root):
        for path in [here] + [os.path.join(here, n) for n in files + dirs]:
            os.lchown(path, uid, gid)
