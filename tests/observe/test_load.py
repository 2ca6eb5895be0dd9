"""Container load: cgroup readers on fixture copies and on this machine, a real app's process
tree under supervisord, sparklines, warnings once per episode, and the Docker path."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from controlplane.adapters.cgroupfs import (
    PROC_SELF,
    locate,
    read_cgroup,
    read_cgroup_v1,
    read_cgroup_v1_root,
    read_cgroup_v2,
)
from controlplane.adapters.dockerapi import docker_figures, docker_reason, parse_docker_stats
from controlplane.adapters.supervisor.client import write_program
from controlplane.observe.load import (
    Probe,
    Sampler,
    SlotUsage,
    Snapshot,
    conditions,
    measure,
    read_samples,
    supervisor_source,
    transitions,
)
from controlplane.observe.loadtext import format_load, sparkline
from controlplane.settings import Settings
from tests.support.fixtures_supervisor import BoxFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cgroup"
GiB = 1 << 30


# -- fixture copies ------------------------------------------------------------------------


def test_v2_without_limits() -> None:
    r = read_cgroup_v2(FIXTURES / "v2-unlimited")
    assert (r.version, r.cpu_quota, r.memory_limit) == (2, None, None)
    assert r.cpu_usage_ns == 1481146047 * 1000  # usage_usec of cpu.stat
    assert r.memory_usage == 160604160
    assert r.inactive_file == 41365504
    assert r.memory_used == 160604160 - 41365504


def test_v2_with_limits() -> None:
    r = read_cgroup_v2(FIXTURES / "v2-limited")
    assert r.cpu_quota == 2.0  # "200000 100000"
    assert r.memory_limit == GiB


def test_v1_without_limits() -> None:
    r = read_cgroup_v1_root(FIXTURES / "v1-unlimited")
    assert r.version == 1
    assert r.cpu_quota is None  # cfs_quota_us -1
    assert r.memory_limit is None  # 9223372036854771712: no limit
    assert r.cpu_usage_ns == 1497255771699
    assert r.memory_usage == 10801152
    assert r.inactive_file == 2637824  # total_inactive_file of memory.stat


def test_v1_with_limits() -> None:
    root = FIXTURES / "v1-limited"
    r = read_cgroup_v1(root / "cpu", root / "cpuacct", root / "memory")
    assert r.cpu_quota == 1.5  # 150000 / 100000
    assert r.memory_limit == 512 << 20


def test_missing_files_read_as_no_limit(tmp_path: Path) -> None:
    r = read_cgroup_v2(tmp_path)  # the root cgroup of v2 has no cpu.max or memory.max
    assert (r.cpu_quota, r.memory_limit, r.memory_usage) == (None, None, 0)


HOST_V1_CGROUP = "4:memory:/process_api/abc\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n"
HOST_V1_MOUNTS = """\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
DOCKER_V1_CGROUP = "11:memory:/docker/0123abcd\n3:cpu,cpuacct:/docker/0123abcd\n"
DOCKER_V1_MOUNTS = """\
700 699 0:40 /docker/0123abcd /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
701 699 0:41 /docker/0123abcd /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct
"""
DOCKER_V2_CGROUP = "0::/\n"
DOCKER_V2_MOUNTS = "690 689 0:30 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw,nsdelegate\n"


def test_locate_follows_the_mount_roots() -> None:
    assert locate(HOST_V1_CGROUP, HOST_V1_MOUNTS) == (
        1,
        {
            "memory": Path("/sys/fs/cgroup/memory/process_api/abc"),
            "cpuacct": Path("/sys/fs/cgroup/cpuacct"),
            "cpu": Path("/sys/fs/cgroup/cpu"),
        },
    )
    # Docker on v1 mounts the container's own cgroup as the hierarchy's root
    version, dirs = locate(DOCKER_V1_CGROUP, DOCKER_V1_MOUNTS) or (0, {})
    assert version == 1
    assert dirs["memory"] == Path("/sys/fs/cgroup/memory")
    assert dirs["cpu"] == dirs["cpuacct"] == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert locate(DOCKER_V2_CGROUP, DOCKER_V2_MOUNTS) == (2, {"": Path("/sys/fs/cgroup")})
    assert locate("", "") is None


# -- the live cgroup of this machine -------------------------------------------------------


def _cat(path: Path) -> int:
    return int(subprocess.run(["cat", str(path)], capture_output=True, text=True).stdout)


def test_live_cgroup_matches_the_files() -> None:
    found = locate((PROC_SELF / "cgroup").read_text(), (PROC_SELF / "mountinfo").read_text())
    if found is None or found[0] != 1:
        pytest.skip(f"this machine is not cgroup v1 ({found}); the v2 fixtures cover v2")
    memory = found[1]["memory"]
    before = _cat(memory / "memory.usage_in_bytes")
    reading = read_cgroup()
    after = _cat(memory / "memory.usage_in_bytes")
    assert reading is not None and reading.where == str(memory)
    print(f"live {reading}; cat said {before} and {after}")
    low, high = min(before, after), max(before, after)
    assert low * 0.8 <= reading.memory_usage <= high * 1.2
    limit = _cat(memory / "memory.limit_in_bytes")
    assert reading.memory_limit == (None if limit >= 1 << 62 else limit)
    quota = _cat(found[1]["cpu"] / "cpu.cfs_quota_us")
    assert reading.cpu_quota == (None if quota < 0 else quota / 100000)
    used = _cat(found[1]["cpuacct"] / "cpuacct.usage")
    assert abs(reading.cpu_usage_ns - used) < 5e9  # a few seconds of CPU apart at most


def test_live_root_hierarchy_matches_cat() -> None:
    root = Path("/sys/fs/cgroup")
    if not (root / "memory" / "memory.usage_in_bytes").exists():
        pytest.skip("no cgroup v1 memory controller at /sys/fs/cgroup/memory")
    before = _cat(root / "memory" / "memory.usage_in_bytes")
    reading = read_cgroup_v1_root(root)
    after = _cat(root / "memory" / "memory.usage_in_bytes")
    print(f"/sys/fs/cgroup: {reading.memory_usage} (cat: {before}, {after})")
    assert min(before, after) * 0.9 <= reading.memory_usage <= max(before, after) * 1.1
    assert reading.cpu_usage_ns >= _cat(root / "cpuacct" / "cpuacct.usage") - 5e9


def test_measure_labels_host_figures_when_unlimited(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    snap = measure(settings, lambda: [], window=0.2)
    cgroup = read_cgroup()
    assert snap.cpu_percent is not None and 0 <= snap.cpu_percent <= 100 * snap.host_cpus
    if cgroup is not None and cgroup.memory_limit is None:
        assert not snap.memory_limited and snap.memory_limit == psutil.virtual_memory().total
        assert "no limit: the host's memory" in format_load(snap)
    if cgroup is not None and cgroup.cpu_quota is None:
        assert not snap.cpu_limited and snap.cpu_capacity == snap.host_cpus
        assert "no quota: the host's CPUs" in format_load(snap)
    df = subprocess.run(
        ["df", "-B1", "--output=avail", str(settings.data_dir)], capture_output=True, text=True
    ).stdout.split()[-1]
    assert abs(snap.disk_free - int(df)) < 64 << 20  # free for us: df's "Available"
    assert snap.load_avg == pytest.approx(os.getloadavg(), abs=0.5)


# -- a real app under supervisord ----------------------------------------------------------

TREE_APP = """\
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import time; block = bytearray(40 * 2**20); block[::4096] = b'x' * len(block[::4096]); "
    "time.sleep(3600)"])
print("parent with child", child.pid, flush=True)
while True:
    time.sleep(3600)
"""


def _smaps_pss(pids: list[int]) -> int:
    """The kernel's own PSS figures (smaps_rollup), summed."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


def test_app_tree_memory_matches_smaps(box_factory: BoxFactory) -> None:
    box = box_factory()
    project = box.add_project("shop")
    (Path(project.path) / "main.py").write_text(TREE_APP)
    write_program(box.settings, project, "prod")
    box.client.apply()
    pid = box.wait_state("shop-prod", ("RUNNING",)).pid
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        kids = psutil.Process(pid).children(recursive=True)
        if kids and kids[0].memory_info().rss > 40 << 20:
            break
        time.sleep(0.1)
    probe = Probe(box.settings, supervisor_source(box.settings))
    probe.take(disk=False, docker=False)
    time.sleep(0.3)
    snap = probe.take(docker=False)
    (slot,) = [s for s in snap.slots if s.program == "shop-prod"]
    tree = [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    expected = _smaps_pss(tree)
    print(f"shop-prod: pid {pid}, {slot.pids} processes, PSS {slot.memory} (smaps: {expected})")
    assert slot.pid == pid and slot.pids == len(tree) == 2
    assert slot.memory_kind == "PSS" and slot.memory > 40 << 20
    assert abs(slot.memory - expected) <= 0.05 * expected
    assert slot.cpu_percent is not None and slot.cpu_percent >= 0
    text = format_load(snap)
    assert "shop-prod" in text and "projects (memory: PSS)" in text


# -- sparklines, warnings, the sampler -----------------------------------------------------


def test_sparklines() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([0, 50, 100], lo=0, hi=100) == "▁▅█"
    assert sparkline([5, 5, 5]) == "▁▁▁"
    assert sparkline([1, None, 3]) == "▁ █"
    assert sparkline([]) == ""
    # more values than width: averaged in buckets
    assert sparkline([0, 0, 7, 7, 0, 0, 7, 7], width=4) == "▁█▁█"
    assert sparkline([200], lo=0, hi=100) == "█"


def snapshot(**over: Any) -> Snapshot:
    base: dict[str, Any] = dict(
        at=1000.0,
        source="host",
        cpu_percent=12.5,
        cpu_capacity=2.0,
        cpu_limited=True,
        memory_used=100 << 20,
        memory_limit=1 << 30,
        memory_limited=True,
        load_avg=(0.5, 0.4, 0.3),
        host_cpus=4,
        disk_path="/data",
        disk_total=100 * GiB,
        disk_free=50 * GiB,
    )
    base.update(over)
    return Snapshot(**base)


def test_conditions_and_transitions() -> None:
    assert conditions(snapshot()) == {}
    bad = conditions(snapshot(disk_free=9 * GiB, memory_used=950 << 20))
    assert set(bad) == {"disk", "memory"}
    assert "9.0%" in str(bad["disk"]) and "container's limit" in str(bad["memory"])
    assert [k for k, *_ in transitions({}, bad)] == ["load_warning", "load_warning"]
    assert transitions(bad, bad) == []
    assert [(k, w) for k, w, _ in transitions(bad, {})] == [
        ("load_ok", "disk"),
        ("load_ok", "memory"),
    ]


def test_load_screen_in_russian() -> None:
    snap = snapshot(
        cpu_capacity=1.5,
        host_cpus=1,
        disk_free=9 * GiB,
        disk_parts={"releases": 5 << 20, "logs": 1000, "cache": 3 * GiB},
        slots=(SlotUsage("shop-prod", 12, 3, 40 << 20, 2.25),),
    )
    samples = [{"at": 900.0 + 30 * i, "cpu": 10.0 * i, "mem": 50.0} for i in range(4)]
    text = format_load(snap, samples, lang="ru")
    print(text)
    lines = text.splitlines()
    assert lines[0] == "ЦП       12,5% из 1,5 ЦП (квота контейнера)"
    assert lines[1].endswith(" (за час)")
    assert "память   100,0 МБ из 1,0 ГБ (9,8%, лимит контейнера)" in lines
    assert "нагрузка 0,50 0,40 0,30 (хост, 1 ЦП)" in lines
    assert "диск     свободно 9,0 ГБ из 100,0 ГБ (9%) на /data" in lines
    assert "         релизы 5,0 МБ, логи 1000 Б, кэш 3,0 ГБ" in lines
    assert "ввод-вывод …" in lines and "сеть     …" in lines  # no rates from one reading
    assert "проекты (память: PSS)" in lines
    assert "  shop-prod                   40,0 МБ  2,2% ЦП    3 проц." in lines
    assert lines[-1] == "источник хост"
    words = set(re.findall(r"[A-Za-z]+", text)) - {"shop", "prod", "data", "PSS"}
    assert not words, words
    english = format_load(snap, samples)
    assert "load     0.50 0.40 0.30 (host, 1 CPU)" in english  # one CPU, not "1 CPUs"
    assert "CPU      12.5% of 1.5 CPUs (container quota)" in english
    warning = conditions(snap)["disk"]
    assert warning.render("ru") == "на диске /data свободно 9,0% (9,0 ГБ из 100,0 ГБ)"
    ((_kind, _what, back),) = transitions({"disk": warning}, {})
    assert back.render("ru").startswith("диск снова в норме (было: на диске /data")


class FakeProbe:
    def __init__(self, settings: Settings, snaps: list[Snapshot]) -> None:
        self.settings = settings
        self.snaps = snaps
        self.disk_asked: list[bool] = []

    def take(self, *, disk: bool = True, docker: bool = True) -> Snapshot:
        self.disk_asked.append(disk)
        return self.snaps.pop(0)


class FakeOutbox:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def publish(self, kind: str, project: str | None, text: str, **data: Any) -> None:
        self.events.append((kind, data["what"]))


def test_sampler_warns_once_per_episode_and_keeps_an_hour(settings: Settings) -> None:
    low = snapshot(disk_free=5 * GiB)
    snaps = [snapshot(at=1000.0 + 30 * i) for i in range(2)]
    snaps += [low, low, low, snapshot(), snapshot()]
    probe, outbox = FakeProbe(settings, snaps), FakeOutbox()
    sampler = Sampler(probe, outbox, keep=4)  # type: ignore[arg-type]
    for _ in range(7):
        sampler.sample_once()
    assert outbox.events == [("load_warning", "disk"), ("load_ok", "disk")]
    assert len(sampler.samples) == 4
    kept = read_samples(settings)
    assert len(kept) == 4 and kept[-1]["disk_free"] == 50.0
    assert probe.disk_asked[:2] == [True, False]  # the folder walk is not every sample
    text = format_load(snapshot(at=kept[-1]["at"]), kept)
    assert "(last hour)" in text and "container quota" in text


def test_sampler_run_stops(settings: Settings) -> None:
    import threading

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    sampler = Sampler(Probe(settings), interval=0.05)
    thread = threading.Thread(target=sampler.run, args=(stop,))
    thread.start()
    time.sleep(0.3)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and len(sampler.samples) >= 2
    assert sampler.last is not None and sampler.last.cpu_percent is not None


# -- Docker --------------------------------------------------------------------------------

STATS = {
    "name": "/controlplane",
    "id": "0123456789abcdef" * 4,
    "cpu_stats": {
        "cpu_usage": {"total_usage": 2_000_000_000},
        "system_cpu_usage": 40_000_000_000,
        "online_cpus": 4,
    },
    "precpu_stats": {
        "cpu_usage": {"total_usage": 1_000_000_000},
        "system_cpu_usage": 20_000_000_000,
    },
    "memory_stats": {"usage": 300 << 20, "limit": 1 << 30, "stats": {"inactive_file": 100 << 20}},
}


def test_docker_stats_are_read_like_docker_stats() -> None:
    row = parse_docker_stats(STATS)
    assert row["name"] == "controlplane" and row["id"] == "0123456789ab"
    assert row["cpu_percent"] == pytest.approx(20.0)  # 1e9 / 20e9 * 4 CPUs
    assert (row["memory_used"], row["memory_limit"]) == (200 << 20, 1 << 30)
    assert docker_reason({}, Path("/nonexistent.sock")) is not None
    assert docker_reason({"DOCKER_HOST": "tcp://127.0.0.1:2375"}, Path("/nonexistent")) is None


def test_docker_engine() -> None:
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=20)
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"no Docker engine: {exc}")
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["docker info failed"])[-1]
        print(f"skipped: {reason}")
        pytest.skip(f"no Docker engine to test against: {reason}")
    rows, note = docker_figures()
    assert note is None, note
    listed = subprocess.run(["docker", "ps", "-q"], capture_output=True, text=True).stdout.split()
    assert sorted(r["id"] for r in rows) == sorted(listed)[: len(rows)]
    for row in rows:
        assert row["memory_limit"] > 0 and row["cpu_percent"] >= 0
