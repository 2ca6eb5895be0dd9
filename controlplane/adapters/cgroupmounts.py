"""Where the cgroup hierarchies are mounted, from /proc/PID/mountinfo: pure parsing.

A mount shows its hierarchy from its own root (field 4 of mountinfo), which is how a
container hides the host's path; a cgroup path from /proc/PID/cgroup is found under the
mount point as the part below that root. The load figures (adapters.cgroupfs) and a
slot's own cgroup (adapters.slotcgroup) both read the mounts this way. Standard library
only and nothing made at import: run-slot loads it on the restart path.
"""

from __future__ import annotations

import os
from pathlib import Path


def cgroup_mounts(mountinfo_text: str) -> dict[str, tuple[str, str]]:
    """controller ('' for cgroup2; a v1 hierarchy under each of its mount options, 'pids',
    'memory', 'systemd' for name=systemd …) → (root inside the hierarchy, mount point),
    the first mount of each."""
    mounts: dict[str, tuple[str, str]] = {}
    for line in mountinfo_text.splitlines():
        head, _, tail = line.partition(" - ")
        fields, after = head.split(), tail.split()
        if len(fields) < 5 or len(after) < 3:
            continue
        if after[0] == "cgroup2":
            mounts.setdefault("", (fields[3], fields[4]))
        elif after[0] == "cgroup":
            for opt in after[2].split(","):
                mounts.setdefault(opt.removeprefix("name="), (fields[3], fields[4]))
    return mounts


def folder_in(mount: tuple[str, str], path: str) -> Path:
    """The folder of cgroup `path` (as /proc/PID/cgroup names it) under a mount that shows
    its hierarchy from `root`: the mount point plus the path below that root."""
    root, point = mount
    below = os.path.relpath(path, root) if path.startswith(root) else "."
    return Path(os.path.normpath(Path(point) / below))
