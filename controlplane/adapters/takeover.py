"""Taking over a project folder that holds someone's files: they are moved, never deleted.

On the admin's explicit request (`project add --take-over`, the bot's 📦 button) the
folder's entries are moved into a dated backup, $DATA/backups/NAME-YYYYMMDD-HHMMSS/ (UTC),
and the folder is then the project's (a link to its live release from the first deploy).
A move within one file system is a rename: nothing is copied and owners, modes and times
stay; across file systems an entry is copied first and removed from the folder only once
the copy is whole (shutil.move). Putting the files back is a move the other way
(docs/operations.md, "Taking over a folder").
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from controlplane.adapters.files import fsync_dir


@dataclass(frozen=True)
class Survey:
    """What a folder holds: its files (symlinks and other non-folders counted as files),
    its folders and the bytes of its regular files."""

    files: int
    folders: int
    size: int


def survey(folder: Path) -> Survey:
    """Count what `folder` holds, without following symlinks (a symlinked folder is one
    file, as it moves as one)."""
    files = folders = size = 0
    for root, dirs, names in os.walk(folder, followlinks=False):
        for d in list(dirs):
            if os.path.islink(os.path.join(root, d)):
                dirs.remove(d)
                files += 1
            else:
                folders += 1
        for n in names:
            files += 1
            st = os.lstat(os.path.join(root, n))
            size += st.st_size if not os.path.islink(os.path.join(root, n)) else 0
    return Survey(files, folders, size)


def backup_path(backups: Path, name: str, now: float | None = None) -> Path:
    """A new dated folder name for `name`'s backup (a second one in the same second gets
    -2, -3 …)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    path, k = backups / f"{name}-{stamp}", 2
    while path.exists():
        path, k = backups / f"{name}-{stamp}-{k}", k + 1
    return path


def move_to_backup(folder: Path, dest: Path) -> Survey:
    """Move every entry of `folder` into `dest` (made, 0700: someone's files may be
    private); `folder` stays, empty. Returns what was moved. A symlink as `folder` is
    moved itself, as `dest/LINK-NAME`."""
    moved = survey(folder) if not folder.is_symlink() else Survey(1, 0, 0)
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    dest.mkdir(mode=0o700)
    if folder.is_symlink():
        shutil.move(str(folder), str(dest / folder.name))
    else:
        for entry in sorted(folder.iterdir()):
            shutil.move(str(entry), str(dest / entry.name))
        fsync_dir(folder)
    fsync_dir(dest)
    return moved
