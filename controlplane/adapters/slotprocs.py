"""Every process a slot started, also those that left its process tree: found, measured, ended.

supervisord knows the one process it started; `stopasgroup`/`killasgroup` end that
process's group, and a daemon that called setsid() (or forked twice) has left it. So
run-slot marks the app (controlplane.slotcgroup): a cgroup of the slot's own where one
can be made, which the app cannot leave, and CONTROLPLANE_SLOT_ID=NAME-SLOT@DATA in its
environment, which every descendant inherits unless it clears it. A slot's processes are
the members of its cgroup and the run-as user's processes carrying its marker exactly.

`end()` signals them (TERM, then KILL after a grace period) after supervisord stopped the
slot, and never this process, its ancestors or supervisord. `usage()` measures memory as
PSS: a page shared by N processes counts 1/N to each, so forked children that share their
parent's memory add up to what the slot really uses (RSS would count it once per child);
RSS where smaps cannot be read, and the figure says which. `descendants()` is the one walk
down the process tree (psutil) that the watch, the load figures and recovery use.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from controlplane.adapters.slotcgroup import PROC, read_text, slot_cgroups, slot_id
from controlplane.domain.appenv import MARKER
from controlplane.settings import Settings

logger = logging.getLogger(__name__)

GRACE = 2.0  # seconds between TERM and KILL for what escaped supervisord's stop
KILL_WAIT = 5.0


# -- cgroups -------------------------------------------------------------------------------


def _supervisord_pid(pidfile: Path) -> int | None:
    text = read_text(pidfile).strip()
    return int(text) if text.isascii() and text.isdigit() else None


def existing_cgroups(data_dir: Path, name: str, slot: str, supervisord: int | None) -> list[Path]:
    """The slot's cgroup folders that exist, found below supervisord's cgroup and ours."""
    found: list[Path] = []
    for pid in dict.fromkeys(p for p in (supervisord, "self") if p is not None):
        for folder in slot_cgroups(data_dir, name, slot, pid):
            if folder not in found and (folder / "cgroup.procs").exists():
                found.append(folder)
    return found


def cgroup_members(folders: Iterable[Path]) -> set[int]:
    pids: set[int] = set()
    for folder in folders:
        pids |= {int(x) for x in read_text(folder / "cgroup.procs").split() if x.isdigit()}
    return pids


def _rmdir(folders: Iterable[Path]) -> None:
    """Drop the slot's empty cgroups, then the box's folder when it is empty too."""
    for folder in folders:
        for path in (folder, folder.parent):
            try:
                path.rmdir()
            except OSError:
                break


# -- the marker ----------------------------------------------------------------------------


def marked(value: str, uid: int) -> set[int]:
    """Processes of `uid` whose environment holds CONTROLPLANE_SLOT_ID=`value` exactly."""
    entry = f"{MARKER}={value}".encode()
    found: set[int] = set()
    try:
        names = os.listdir(PROC)
    except OSError:
        return found
    for pid_text in names:
        if not pid_text.isdigit():
            continue
        folder = PROC / pid_text
        try:
            if os.stat(folder).st_uid != uid:
                continue
            environ = (folder / "environ").read_bytes()
        except OSError:
            continue
        if entry in environ.split(b"\0"):
            found.add(int(pid_text))
    return found


# -- the slot's processes ------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """Where to look for one slot's processes."""

    data_dir: Path
    name: str
    slot: str
    uid: int  # the run-as user's
    supervisord: int | None  # its pid, which is never signalled

    @classmethod
    def of(cls, settings: Settings, name: str, slot: str) -> Slot:
        return cls(
            data_dir=settings.data_dir,
            name=name,
            slot=slot,
            uid=run_as_uid(settings.run_as),
            supervisord=_supervisord_pid(settings.layout.supervisord_pid),
        )

    def cgroups(self) -> list[Path]:
        return existing_cgroups(self.data_dir, self.name, self.slot, self.supervisord)

    def members(self, spare: set[int] | None = None) -> set[int]:
        """Every process of the slot that is alive: in its cgroup, or carrying its marker."""
        pids = cgroup_members(self.cgroups()) | marked(
            slot_id(self.data_dir, self.name, self.slot), self.uid
        )
        return pids - (spare if spare is not None else protected(self.supervisord))


def run_as_uid(run_as: str | None) -> int:
    import pwd

    try:
        return pwd.getpwnam(run_as).pw_uid if run_as else os.getuid()
    except KeyError:
        return os.getuid()


def protected(supervisord: int | None) -> set[int]:
    """This process, its ancestors and supervisord: never signalled by a sweep."""
    import psutil

    spare = {os.getpid(), 0, 1, *(p.pid for p in psutil.Process().parents())}
    if supervisord is not None:
        spare.add(supervisord)
    return spare


def _signal(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except OSError:
            continue


def end(settings: Settings, name: str, slot: str, *, grace: float = GRACE) -> int:
    """End every process the slot still has after supervisord stopped it (TERM, then KILL
    after `grace`); returns how many there were. Its empty cgroups are removed."""
    where = Slot.of(settings, name, slot)
    spare = protected(where.supervisord)
    first = where.members(spare)
    if first:
        logger.warning(
            "%s-%s: %d processes outlived the stop (%s); ending them",
            name,
            slot,
            len(first),
            " ".join(map(str, sorted(first))),
        )
        _signal(first, signal.SIGTERM)
        _wait_gone(where, spare, grace)
        deadline = time.monotonic() + KILL_WAIT
        while (left := where.members(spare)) and time.monotonic() < deadline:
            _signal(left, signal.SIGKILL)
            time.sleep(0.02)
        if left:
            logger.error("%s-%s: %d processes would not end", name, slot, len(left))
    _rmdir(where.cgroups())
    return len(first)


def _wait_gone(where: Slot, spare: set[int], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not where.members(spare):
            return
        time.sleep(0.05)


# -- memory and CPU ------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """A slot's processes: count, memory (PSS, or RSS where smaps is denied), CPU time."""

    pids: tuple[int, ...]
    memory: int
    memory_kind: str  # "PSS" or "RSS"
    cpu_seconds: float


def descendants(*pids: int) -> set[int]:
    """The processes that are alive among `pids`, and all their descendants (psutil)."""
    import psutil

    found: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            found |= {root.pid, *(p.pid for p in root.children(recursive=True))}
        except psutil.Error:
            continue
    return found


def usage(pids: Iterable[int]) -> Usage:
    """Memory and CPU time of these processes: PSS summed (shared pages divided among the
    processes that share them), RSS for all when any smaps cannot be read."""
    import psutil

    seen: list[int] = []
    pss, rss, cpu = 0, 0, 0.0
    denied = False
    for pid in sorted(set(pids)):
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                one_rss = proc.memory_info().rss
                times = proc.cpu_times()
                one_pss = 0
                if not denied:
                    try:
                        one_pss = proc.memory_full_info().pss
                    except psutil.AccessDenied:
                        denied = True
        except psutil.Error:
            continue
        rss, pss = rss + one_rss, pss + one_pss
        cpu += times.user + times.system
        seen.append(pid)
    if denied:
        return Usage(tuple(seen), rss, "RSS", cpu)
    return Usage(tuple(seen), pss, "PSS", cpu)


def slot_usage(settings: Settings, name: str, slot: str, pid: int) -> Usage:
    """What a slot uses: the tree of supervisord's process and whatever else is the slot's."""
    where = Slot.of(settings, name, slot)
    return usage(descendants(pid) | where.members()) if pid else usage(where.members())
