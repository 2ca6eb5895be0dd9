"""The container's load: cgroup v1/v2, psutil, per-project process trees, disk, disk I/O
and network (observe.iorates), Docker. The screen's text is observe.loadtext's.

Figures are the container's own where it has them: CPU use is measured against the
cgroup's quota (cpu.max / cpu.cfs_quota_us) and memory against the cgroup's limit
(memory.max / memory.limit_in_bytes). Without a limit the host's CPUs and memory are the
yardstick, and the snapshot says so (`cpu_limited`, `memory_limited` are False).

The cgroup readers are pure functions over folders, so fixture copies of the real files
can be read in tests. `Sampler` keeps a sample every 30 s for the last hour, writes them
to $DATA/logs/load.json (so `controlplane load` can draw them while `serve` samples) and
publishes `load_warning` / `load_ok` events once per episode. When the Docker socket is
reachable, the Docker API's figures for this container and its neighbours are added.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from controlplane.adapters.cgroupfs import PROC_SELF, CgroupReading, read_cgroup
from controlplane.adapters.dockerapi import docker_figures
from controlplane.adapters.files import folder_size, write_atomic
from controlplane.adapters.slotprocs import slot_usage
from controlplane.domain.events import EventSink
from controlplane.domain.kinds import EventKind
from controlplane.errors import ControlPlaneError
from controlplane.i18n import Number, Percent, Size, Text, tr
from controlplane.observe.iorates import IoRates, NetRates, RateMeter

if TYPE_CHECKING:
    from controlplane.domain.runner import ProcessInfo
    from controlplane.settings import Settings

logger = logging.getLogger(__name__)

INTERVAL = 30.0
KEEP = 120  # one hour of 30 s samples
DISK_EVERY = 10  # the walk of releases/logs/cache runs every 10th sample (5 min)
DISK_FREE_MIN = 10.0  # % free under which a warning goes out
MEMORY_MAX = 90.0  # % of the limit above which a warning goes out


def cpu_percent(prev_ns: int, now_ns: int, seconds: float, cpus: float) -> float:
    """CPU time used over a wall-clock window, in % of `cpus` CPUs (100 = all of them)."""
    if seconds <= 0 or cpus <= 0:
        return 0.0
    return max(now_ns - prev_ns, 0) / 1e9 / seconds / cpus * 100.0


# -- process trees -------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotUsage:
    """One running slot's processes: its app's tree and whatever else is the slot's
    (controlplane.slotprocs: its cgroup, its marker)."""

    program: str
    pid: int
    pids: int
    memory: int  # PSS summed over the processes; RSS where smaps cannot be read
    cpu_percent: float | None  # of one CPU; None on the first reading
    memory_kind: str = "PSS"


# -- disk ----------------------------------------------------------------------------------


def disk_parts(settings: Settings) -> dict[str, int]:
    """What releases, logs and caches take (releases first: venvs hard-link the cache)."""
    seen: set[tuple[int, int]] = set()
    layout = settings.layout

    def du(folder: Path) -> int:
        return folder_size(folder, seen, on_disk=True)

    releases = sum(du(layout.releases_dir(p.name)) for p in _subdirs(layout.projects_dir))
    return {"releases": releases, "logs": du(layout.logs_dir), "cache": du(layout.cache_dir)}


def _subdirs(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


# -- the snapshot --------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """The container's load at one moment."""

    at: float
    source: str  # 'cgroup v1 <folder>', 'cgroup v2 <folder>' or 'host'
    cpu_percent: float | None  # of cpu_capacity; None on the first reading
    cpu_capacity: float  # CPUs: the quota, or the host's CPUs
    cpu_limited: bool
    memory_used: int
    memory_limit: int  # the cgroup's limit, or the host's memory
    memory_limited: bool
    load_avg: tuple[float, float, float]
    host_cpus: int
    disk_path: str
    disk_total: int
    disk_free: int
    disk_parts: dict[str, int] | None = None
    slots: tuple[SlotUsage, ...] = ()
    docker: tuple[dict[str, Any], ...] = ()
    docker_note: Text | str | None = None
    slots_note: Text | str | None = None  # why there are no per-project figures
    disk_io: IoRates | None = None  # None on the first reading, or without a source
    disk_io_note: Text | str | None = None  # why there are no disk I/O figures
    net: NetRates | None = None  # None on the first reading, or without a source
    net_note: Text | str | None = None  # why there are no network figures

    @property
    def memory_percent(self) -> float:
        return 100.0 * self.memory_used / self.memory_limit if self.memory_limit else 0.0

    @property
    def disk_free_percent(self) -> float:
        return 100.0 * self.disk_free / self.disk_total if self.disk_total else 100.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["memory_percent"] = round(self.memory_percent, 1)
        data["disk_free_percent"] = round(self.disk_free_percent, 1)
        for note in ("docker_note", "slots_note", "disk_io_note", "net_note"):
            data[note] = None if data[note] is None else str(data[note])
        return data


InfoSource = Callable[[], Sequence["ProcessInfo"]]


class Probe:
    """Takes snapshots; CPU figures are deltas against the previous one."""

    def __init__(
        self,
        settings: Settings,
        infos: InfoSource | None = None,
        *,
        proc: Path = PROC_SELF,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.infos = infos
        self.proc = proc
        self.clock = clock
        self._prev_cpu: tuple[float, float] | None = None  # (wall, cpu seconds or ns)
        self._prev_trees: dict[int, tuple[float, float]] = {}
        self.rates = RateMeter(proc)

    def take(self, *, disk: bool = True, docker: bool = True) -> Snapshot:
        now = self.clock()
        cgroup = read_cgroup(self.proc)
        host_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        usage = self._cpu(now, cgroup, host_cpus)
        vm = psutil.virtual_memory()
        limit = cgroup.memory_limit if cgroup and cgroup.memory_limit else None
        limit = limit if limit is not None and limit < vm.total else None
        du = shutil.disk_usage(self.settings.data_dir)
        dock, note = docker_figures() if docker else ((), None)
        slots, slots_note = self._slots(now)
        disk_io, disk_io_note = self.rates.io(now)
        net, net_note = self.rates.net(now)
        return Snapshot(
            at=now,
            source=f"cgroup v{cgroup.version} {cgroup.where}" if cgroup else "host",
            cpu_percent=usage[0],
            cpu_capacity=usage[1],
            cpu_limited=bool(cgroup and cgroup.cpu_quota),
            memory_used=cgroup.memory_used if cgroup else vm.total - vm.available,
            memory_limit=limit or vm.total,
            memory_limited=limit is not None,
            load_avg=os.getloadavg(),
            host_cpus=host_cpus,
            disk_path=str(self.settings.data_dir),
            disk_total=du.total,
            disk_free=du.free,
            disk_parts=disk_parts(self.settings) if disk else None,
            slots=slots,
            slots_note=slots_note,
            docker=dock,
            docker_note=note,
            disk_io=disk_io,
            disk_io_note=disk_io_note,
            net=net,
            net_note=net_note,
        )

    def _cpu(
        self, now: float, cgroup: CgroupReading | None, host_cpus: int
    ) -> tuple[float | None, float]:
        capacity = min(cgroup.cpu_quota, host_cpus) if cgroup and cgroup.cpu_quota else host_cpus
        used = cgroup.cpu_usage_ns / 1e9 if cgroup else sum(psutil.cpu_times()[:3])
        prev, self._prev_cpu = self._prev_cpu, (now, used)
        if prev is None:
            return None, capacity
        return cpu_percent(int(prev[1] * 1e9), int(used * 1e9), now - prev[0], capacity), capacity

    def _slots(self, now: float) -> tuple[tuple[SlotUsage, ...], Text | str | None]:
        if self.infos is None:
            return (), None
        try:
            infos = [i for i in self.infos() if i.state == "RUNNING" and i.pid]
        except Exception as exc:  # supervisord down: no per-project figures this time
            logger.info("no per-project figures: %s", exc)
            return (), exc.text if isinstance(exc, ControlPlaneError) else str(exc)
        slots: list[SlotUsage] = []
        trees: dict[int, tuple[float, float]] = {}
        for info in infos:
            name, _, slot = info.name.rpartition("-")
            tree = slot_usage(self.settings, name, slot, info.pid)
            trees[info.pid] = (now, tree.cpu_seconds)
            prev = self._prev_trees.get(info.pid)
            pct = (
                cpu_percent(int(prev[1] * 1e9), int(tree.cpu_seconds * 1e9), now - prev[0], 1)
                if prev
                else None
            )
            slots.append(
                SlotUsage(info.name, info.pid, len(tree.pids), tree.memory, pct, tree.memory_kind)
            )
        self._prev_trees = trees
        return tuple(sorted(slots, key=lambda s: s.program)), None


def supervisor_source(settings: Settings) -> InfoSource:
    """Our slots' programs as supervisord reports them (raises SupervisorError when down)."""

    def infos() -> list[ProcessInfo]:
        from controlplane.adapters.supervisor.client import Supervisor
        from controlplane.domain.runner import is_ours

        with Supervisor(settings, timeout=5.0) as client:
            return [i for i in client.all_info() if is_ours(i.group)]

    return infos


def measure(settings: Settings, infos: InfoSource | None = None, window: float = 0.5) -> Snapshot:
    """One snapshot with CPU figures over `window` seconds (what `controlplane load` shows);
    per-project figures from supervisord unless `infos` says otherwise."""
    probe = Probe(settings, infos if infos is not None else supervisor_source(settings))
    probe.take(disk=False, docker=False)
    time.sleep(window)
    return probe.take()


# -- warnings ------------------------------------------------------------------------------


def conditions(snap: Snapshot) -> dict[str, Text]:
    """The warning conditions that hold now: {'disk' | 'memory': what a person reads}."""
    found: dict[str, Text] = {}
    if snap.disk_free_percent < DISK_FREE_MIN:
        found["disk"] = tr(
            "disk free {percent}% ({free} of {total}) on {path}",
            percent=Number(snap.disk_free_percent),
            free=Size(snap.disk_free),
            total=Size(snap.disk_total),
            path=snap.disk_path,
        )
    if snap.memory_percent > MEMORY_MAX:
        figures = {
            "percent": Percent(snap.memory_percent),
            "used": Size(snap.memory_used),
            "limit": Size(snap.memory_limit),
        }
        found["memory"] = (
            tr("memory at {percent} of the container's limit ({used} of {limit})", **figures)
            if snap.memory_limited
            else tr("memory at {percent} of the host's memory ({used} of {limit})", **figures)
        )
    return found


def transitions(
    active: Mapping[str, Text], now: Mapping[str, Text]
) -> list[tuple[EventKind, str, Text]]:
    """(event kind, what, text) for conditions that began or ended since `active`."""
    out = [(EventKind.LOAD_WARNING, k, v) for k, v in now.items() if k not in active]
    out += [(EventKind.LOAD_OK, k, back_to_normal(k, v)) for k, v in active.items() if k not in now]
    return out


def back_to_normal(what: str, was: Text) -> Text:
    if what == "disk":
        return tr("disk back to normal (was: {was})", was=was)
    return tr("memory back to normal (was: {was})", was=was)


# -- the sampler ---------------------------------------------------------------------------


def compact(snap: Snapshot) -> dict[str, Any]:
    """What one kept sample holds (small: 120 of them are written every 30 s)."""
    return {
        "at": round(snap.at, 1),
        "cpu": None if snap.cpu_percent is None else round(snap.cpu_percent, 1),
        "mem": round(snap.memory_percent, 1),
        "mem_used": snap.memory_used,
        "disk_free": round(snap.disk_free_percent, 1),
        "load1": snap.load_avg[0],
        "io_read": None if snap.disk_io is None else round(snap.disk_io.read),
        "io_write": None if snap.disk_io is None else round(snap.disk_io.write),
        "net_in": None if snap.net is None else round(snap.net.bytes_in),
        "net_out": None if snap.net is None else round(snap.net.bytes_out),
        "slots": {s.program: [s.memory, s.cpu_percent] for s in snap.slots},
    }


def samples_path(settings: Settings) -> Path:
    return settings.layout.load_samples


def read_samples(settings: Settings, since: float | None = None) -> list[dict[str, Any]]:
    """The samples `serve` kept (newest last); [] when there are none."""
    try:
        rows = json.loads(samples_path(settings).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return []
    return [r for r in rows if isinstance(r, dict) and (since is None or r.get("at", 0) >= since)]


def series(samples: Iterable[Mapping[str, Any]], key: str) -> list[float | None]:
    """One figure of every sample ('cpu', 'mem', 'disk_free', 'load1', 'io_read',
    'io_write', 'net_in', 'net_out', or a program's memory)."""
    out: list[float | None] = []
    for s in samples:
        if key in s:
            out.append(s[key])
        else:
            out.append((s.get("slots") or {}).get(key, [None])[0])
    return out


@dataclass
class Sampler:
    """Every `interval` seconds: a snapshot, kept for an hour, warnings published."""

    probe: Probe
    outbox: EventSink | None = None
    interval: float = INTERVAL
    keep: int = KEEP
    samples: deque[dict[str, Any]] = field(default_factory=deque)
    active: dict[str, Text] = field(default_factory=dict)
    last: Snapshot | None = None
    on_error: Callable[[Exception], None] | None = None  # serve's error report (alarms)
    _count: int = 0

    def __post_init__(self) -> None:
        self.samples = deque(read_samples(self.probe.settings)[-self.keep :], maxlen=self.keep)

    def sample_once(self) -> Snapshot:
        """Take one snapshot, keep it, write the samples, publish warnings."""
        fresh_disk = self._count % DISK_EVERY == 0
        snap = self.probe.take(disk=fresh_disk)
        if not fresh_disk and self.last is not None:
            snap = replace(snap, disk_parts=self.last.disk_parts)
        self._count += 1
        self.last = snap
        self.samples.append(compact(snap))
        try:
            write_atomic(samples_path(self.probe.settings), json.dumps(list(self.samples)))
        except OSError as exc:
            logger.warning("cannot write the load samples: %s", exc)
        self._warn(conditions(snap))
        return snap

    def _warn(self, now: dict[str, Text]) -> None:
        for kind, what, text in transitions(self.active, now):
            logger.warning("%s: %s", kind, str(text))
            if self.outbox is not None:
                self.outbox.publish(kind, None, text, what=what)
        self.active = now

    def run(self, stop: threading.Event) -> None:
        """Sample until `stop` is set; a failed sample is logged (and told to `on_error`)
        and the loop goes on."""
        while not stop.is_set():
            try:
                self.sample_once()
            except Exception as exc:
                if self.on_error is None:
                    logger.exception("load sample failed")
                else:
                    self.on_error(exc)  # logs it with its traceback, never raises
            stop.wait(self.interval)
