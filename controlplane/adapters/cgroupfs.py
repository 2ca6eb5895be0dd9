"""cgroup v1 and v2 readers: pure functions over folders, so fixture copies can be read.

`locate` finds this process's cgroup folders from /proc/self/cgroup and mountinfo (a
mount shows its hierarchy from its own root, which is how Docker hides the host's path);
`read_cgroup` reads them. v1 wins in the hybrid layout (v1 controllers plus an empty
unified mount), because that is where the limits are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from controlplane.adapters.cgroupmounts import cgroup_mounts, folder_in

SYS_CGROUP = Path("/sys/fs/cgroup")
PROC_SELF = Path("/proc/self")
UNLIMITED = 1 << 62  # v1 writes PAGE_COUNTER_MAX * page size (9223372036854771712) for "none"


@dataclass(frozen=True)
class CgroupReading:
    """One reading of a cgroup's files."""

    version: int
    where: str  # the folder(s) read
    cpu_quota: float | None  # CPUs allowed (quota / period); None: no quota
    cpu_usage_ns: int  # CPU time used since the cgroup began
    memory_usage: int  # what the kernel charges, page cache included
    memory_limit: int | None  # None: no limit
    inactive_file: int  # page cache the kernel can take back at once

    @property
    def memory_used(self) -> int:
        """Working set, as `docker stats` shows it: usage less the inactive page cache."""
        return max(self.memory_usage - self.inactive_file, 0)


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, PermissionError):
        return None


def _int(path: Path, default: int = 0) -> int:
    text = _text(path)
    return int(text) if text and text.lstrip("-").isdigit() else default


def _keyed(path: Path) -> dict[str, int]:
    """'key value' lines (cpu.stat, memory.stat) → {key: value}."""
    pairs = (line.split() for line in (_text(path) or "").splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].lstrip("-").isdigit()}


def parse_cpu_max(text: str | None) -> float | None:
    """cpu.max 'max 100000' → None; '200000 100000' → 2.0; a missing file → None."""
    if not text:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max":
        return None
    return int(quota) / int(period or "100000")


def parse_memory_limit(text: str | None) -> int | None:
    """memory.max 'max' or v1's huge number → None; else the limit in bytes."""
    if not text or text == "max":
        return None
    value = int(text)
    return None if value >= UNLIMITED else value


def read_cgroup_v2(folder: Path) -> CgroupReading:
    """cpu.max, cpu.stat, memory.max, memory.current, memory.stat of one v2 cgroup."""
    return CgroupReading(
        version=2,
        where=str(folder),
        cpu_quota=parse_cpu_max(_text(folder / "cpu.max")),
        cpu_usage_ns=_keyed(folder / "cpu.stat").get("usage_usec", 0) * 1000,
        memory_usage=_int(folder / "memory.current"),
        memory_limit=parse_memory_limit(_text(folder / "memory.max")),
        inactive_file=_keyed(folder / "memory.stat").get("inactive_file", 0),
    )


def read_cgroup_v1(cpu: Path, cpuacct: Path, memory: Path) -> CgroupReading:
    """The cpu, cpuacct and memory controllers' folders of one v1 cgroup."""
    quota = _int(cpu / "cpu.cfs_quota_us", -1)
    period = _int(cpu / "cpu.cfs_period_us", 100000) or 100000
    stat = _keyed(memory / "memory.stat")
    return CgroupReading(
        version=1,
        where=str(memory),
        cpu_quota=quota / period if quota > 0 else None,
        cpu_usage_ns=_int(cpuacct / "cpuacct.usage"),
        memory_usage=_int(memory / "memory.usage_in_bytes"),
        memory_limit=parse_memory_limit(_text(memory / "memory.limit_in_bytes")),
        inactive_file=stat.get("total_inactive_file", stat.get("inactive_file", 0)),
    )


def read_cgroup_v1_root(root: Path) -> CgroupReading:
    """A v1 layout under `root` (cpu/, cpuacct/ or cpu,cpuacct/, memory/)."""
    cpu = root / "cpu" if (root / "cpu").is_dir() else root / "cpu,cpuacct"
    cpuacct = root / "cpuacct" if (root / "cpuacct").is_dir() else cpu
    return read_cgroup_v1(cpu, cpuacct, root / "memory")


def locate(cgroup_text: str, mountinfo_text: str) -> tuple[int, dict[str, Path]] | None:
    """Where this process's cgroup folders are: (1, {controller: folder}) or (2, {"": folder}).

    From /proc/self/cgroup and /proc/self/mountinfo: a mount shows the hierarchy from its
    root (field 4), so the folder is the mount point plus the cgroup path below that
    root. v1 wins when its memory controller is mounted (the hybrid layout)."""
    v1: dict[str, Path] = {}
    v2: Path | None = None
    mounts = cgroup_mounts(mountinfo_text)
    for line in cgroup_text.splitlines():
        _id, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        for key in controllers.split(",") if controllers else [""]:
            mount = mounts.get(key)
            if mount is None:
                continue
            folder = folder_in(mount, path)
            if key:
                v1[key] = folder
            else:
                v2 = folder
    if "memory" in v1:
        return 1, v1
    return (2, {"": v2}) if v2 is not None else None


def _existing(folder: Path, mount_point: Path) -> Path:
    """The folder, or its nearest existing parent within the mount (a namespaced view)."""
    while not folder.exists() and folder != mount_point and mount_point in folder.parents:
        folder = folder.parent
    return folder


def cgroup_folders(proc: Path = PROC_SELF) -> tuple[int, dict[str, Path]] | None:
    """This process's cgroup folders as `locate` finds them, each the nearest existing one
    (a namespaced view hides the path above it); None where there is no cgroup (not Linux)."""
    cgroup_text, mountinfo = _text(proc / "cgroup"), _text(proc / "mountinfo")
    if not cgroup_text or not mountinfo:
        return None
    found = locate(cgroup_text, mountinfo)
    if found is None:
        return None
    version, dirs = found
    return version, {key: _existing(folder, SYS_CGROUP) for key, folder in dirs.items()}


def read_cgroup(proc: Path = PROC_SELF) -> CgroupReading | None:
    """This process's own cgroup, v1 or v2; None where there is none (not Linux)."""
    found = cgroup_folders(proc)
    if found is None:
        return None
    version, dirs = found
    if version == 2:
        return read_cgroup_v2(dirs[""])
    cpu = dirs.get("cpu") or _existing(SYS_CGROUP / "cpu", SYS_CGROUP)
    return read_cgroup_v1(cpu, dirs.get("cpuacct", cpu), dirs["memory"])
