"""A slot's marks that survive setsid(): its cgroup and the marker in its environment.

run-slot calls `join()` (still root) and puts `slot_id(...)` into the app's environment
(as domain.appenv.MARKER); adapters.slotprocs finds, measures and ends the processes so
marked. This module is on the restart path: it imports only the standard library and the
mount parsing it shares with the load figures (adapters.cgroupmounts).

The slot's cgroup is `controlplane-TAG/NAME-SLOT` below supervisord's cgroup (run-slot
is its child, so its own cgroup is the same); TAG is a hash of the data dir, so two boxes
on one host never share one. It is made in the cgroup v2 hierarchy where that is mounted
writable, else in the v1 `pids` hierarchy; no controller is enabled, so nothing else in
the tree changes. A read-only /sys/fs/cgroup (a container that is not privileged) or a
control plane that is not root makes none: the marker is all there is then.
"""

from __future__ import annotations

import os
import re
import zlib
from pathlib import Path

from controlplane.adapters.cgroupmounts import cgroup_mounts, folder_in

PROC = Path("/proc")
TAG_PREFIX = "controlplane-"
TAG_RE = re.compile(TAG_PREFIX + "[0-9a-f]{16}")


def slot_id(data_dir: Path, name: str, slot: str) -> str:
    """The marker's value: 'shop-prod@/data' (the data dir, resolved, tells two boxes
    apart)."""
    return f"{name}-{slot}@{os.path.realpath(data_dir)}"


def box_tag(data_dir: Path) -> str:
    """The folder that holds one box's slot cgroups."""
    raw = os.path.realpath(data_dir).encode()
    return f"{TAG_PREFIX}{zlib.crc32(raw):08x}{zlib.adler32(raw):08x}"


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def hierarchies(mountinfo: str) -> list[tuple[str, str, str]]:
    """(key, root inside the hierarchy, mount point) of the v2 ('') and the v1 pids
    hierarchy, v2 first; from /proc/PID/mountinfo."""
    found = cgroup_mounts(mountinfo)
    return [(key, *found[key]) for key in ("", "pids") if key in found]


def memberships(cgroup_text: str) -> dict[str, str]:
    """A process's cgroup in the v2 ('') and v1 pids hierarchies; from /proc/PID/cgroup."""
    paths: dict[str, str] = {}
    for line in cgroup_text.splitlines():
        _id, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not controllers:
            paths[""] = path
        elif "pids" in controllers.split(","):
            paths["pids"] = path
    return paths


def box_cgroups(
    data_dir: Path, pid: int | str = "self", keys: tuple[str, ...] = ("", "pids")
) -> list[Path]:
    """The folder of this box's slot cgroups below the cgroup of `pid` (supervisord's, or
    run-slot's own, which is the same), in the hierarchies `keys` ('' for v2, 'pids' for
    v1), v2 first."""
    paths = memberships(read_text(PROC / str(pid) / "cgroup"))
    folders: list[Path] = []
    for key, root, point in hierarchies(read_text(PROC / "self" / "mountinfo")):
        path = paths.get(key)
        if path is None or key not in keys:
            continue
        base = folder_in((root, point), path)
        if TAG_RE.fullmatch(base.parent.name):  # `pid` is in a slot's cgroup already
            base = base.parent.parent
        folders.append(base / box_tag(data_dir))
    return folders


def slot_cgroups(
    data_dir: Path,
    name: str,
    slot: str,
    pid: int | str = "self",
    keys: tuple[str, ...] = ("", "pids"),
) -> list[Path]:
    """Where the slot's cgroup is (see box_cgroups), v2 first."""
    return [box / f"{name}-{slot}" for box in box_cgroups(data_dir, pid, keys)]


def join(data_dir: Path, name: str, slot: str, keys: tuple[str, ...] = ("", "pids")) -> Path | None:
    """Move this process (run-slot, still root) into the slot's cgroup, made when missing;
    None where none can be made or joined."""
    for folder in slot_cgroups(data_dir, name, slot, "self", keys):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "cgroup.procs").write_text(str(os.getpid()))
        except OSError:
            continue
        return folder
    return None


def remove_empty(data_dir: Path, pid: int | str = "self") -> None:
    """Remove this box's slot cgroups that no process uses any more, and its folder when
    that is empty then (after supervisord has gone, or before it starts)."""
    for box in box_cgroups(data_dir, pid):
        try:
            slots = [p for p in box.iterdir() if p.is_dir()]
        except OSError:
            continue
        for path in [*slots, box]:
            try:
                path.rmdir()
            except OSError:
                continue
