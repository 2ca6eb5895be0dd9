"""Files: durable writes (a temp file in the same folder, fsync, rename, fsync the folder),
what a folder takes, handing a tree to another user, and why a file call failed (the
system's words for the common causes, in the reader's language).

A reader (or a restart after a kill) sees either the old content or the new, never half.
`write_atomic` is the one way a file is replaced: the store, the keys, supervisord's
files, a release's ready marker and the load samples all go through it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

from controlplane.adapters.account import account_ids
from controlplane.i18n import N_, Text, tr

# The system's own words (os.strerror) for the failures an admin can act on.
REASONS = {
    errno.ENOSPC: N_("No space left on device"),
    errno.EDQUOT: N_("Disk quota exceeded"),
    errno.EACCES: N_("Permission denied"),
    errno.EPERM: N_("Operation not permitted"),
    errno.EROFS: N_("Read-only file system"),
    errno.ENOENT: N_("No such file or directory"),
}


def os_reason(exc: OSError) -> Text | str:
    """Why a file call failed, as the reader's language says it (the system's words for
    a cause that is not in REASONS)."""
    known = REASONS.get(exc.errno or 0)
    return tr(known) if known else (exc.strerror or str(exc))


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: Path, data: str | bytes, mode: int = 0o600, *, backup: Path | None = None
) -> Path:
    """Replace `path` with `data` atomically; the file has `mode` from its first byte.
    With `backup`, the content being replaced is kept there first (the last good copy)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        if backup is not None and path.exists():
            _link_over(path, backup)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def _link_over(path: Path, dest: Path) -> None:
    """Make `dest` another name of `path`'s file, replacing whatever `dest` was at once."""
    tmp = dest.with_name(dest.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.link(path, tmp)
    os.replace(tmp, dest)


def folder_size(
    folder: Path, seen: set[tuple[int, int]] | None = None, *, on_disk: bool = False
) -> int:
    """Bytes under `folder`, links not followed: the sizes of its files, or with `on_disk`
    the blocks allocated to everything in it (what du counts). A file linked more than once
    counts once, also across calls that share `seen`. A missing folder takes nothing."""
    seen = set() if seen is None else seen
    total = 0
    for here, dirs, files in os.walk(folder):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(here, name))
            except OSError:
                continue
            if not on_disk and not stat.S_ISREG(st.st_mode):
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512 if on_disk else st.st_size
    return total


def chown_tree(root: Path, user: str | None) -> None:
    """Give a tree (links themselves, not their targets) to `user`, or back to us (None)."""
    uid, gid = account_ids(user)
    for here, dirs, files in os.walk(root):
        for path in [here] + [os.path.join(here, n) for n in files + dirs]:
            os.lchown(path, uid, gid)
