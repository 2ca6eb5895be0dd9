"""Disk I/O and network on the load screen: the kernel's files (fixture copies of two
samples, 30 s apart, for cgroup v1 and v2 and /proc/net/dev) read through a /proc of our
own, the rows and sparklines the screen shows in English and Russian, sources that are
missing or cannot be read, and `controlplane load` on this machine."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from controlplane.adapters.iocounters import (
    parse_blkio,
    parse_io_stat,
    parse_net_dev,
    read_io_v2,
)
from controlplane.i18n import Text
from controlplane.observe.load import Probe, Sampler, read_samples
from controlplane.observe.loadtext import format_load
from controlplane.settings import Settings
from tests.conftest import cli_env
from tests.support.fixtures_supervisor import ensure_run_as_user
from tests.support.language import Outside, Said, not_russian

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CGROUP, NET = FIXTURES / "cgroup", FIXTURES / "net"
ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20


def test_the_kernel_files_are_summed_over_devices() -> None:
    # v2: both devices' rbytes and wbytes; rios, wios, dbytes are not bytes moved
    assert parse_io_stat((CGROUP / "io-v2/1/io.stat").read_text()) == (
        4517888 + 10444800,
        1753088,
    )
    # v1: the devices' Read and Write lines; Sync, Async, the Totals not counted again
    v1 = (CGROUP / "io-v1/1/blkio.throttle.io_service_bytes_recursive").read_text()
    assert parse_blkio(v1) == (10444800 + 4517888, 1753088)
    assert parse_blkio("Total 0\n") == (0, 0)  # a cgroup that has done no I/O
    net = parse_net_dev((NET / "1/dev").read_text())
    assert net.interfaces == ("eth0",)  # lo is not the container's traffic
    assert (net.bytes_in, net.packets_in, net.bytes_out, net.packets_out) == (
        2804557380,
        116777,
        8023073,
        94005,
    )


class FakeProc:
    """A /proc/self of our own: cgroup and mountinfo naming a cgroup tree under `base`,
    and net/dev; `sample(n)` puts the files of the fixtures' sample n in place."""

    def __init__(self, base: Path, version: int) -> None:
        self.proc, self.tree, self.version = base / "proc", base / "cgroup", version
        (self.proc / "net").mkdir(parents=True)
        if version == 2:
            shutil.copytree(CGROUP / "v2-limited", self.tree)
            (self.proc / "cgroup").write_text("0::/\n")
            mounts = f"690 689 0:30 / {self.tree} rw - cgroup2 cgroup2 rw\n"
        else:
            shutil.copytree(CGROUP / "v1-limited", self.tree)
            (self.tree / "blkio").mkdir()
            (self.proc / "cgroup").write_text("11:memory:/\n7:blkio:/\n3:cpu:/\n2:cpuacct:/\n")
            mounts = "".join(
                f"{700 + i} 699 0:{40 + i} / {self.tree / c} rw - cgroup cgroup rw,{c}\n"
                for i, c in enumerate(("memory", "blkio", "cpu", "cpuacct"))
            )
        (self.proc / "mountinfo").write_text(mounts)

    def sample(self, n: int) -> None:
        if self.version == 2:
            shutil.copy(CGROUP / f"io-v2/{n}/io.stat", self.tree / "io.stat")
        else:
            for f in (CGROUP / f"io-v1/{n}").iterdir():
                shutil.copy(f, self.tree / "blkio" / f.name)
        shutil.copy(NET / f"{n}/dev", self.proc / "net" / "dev")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def two_samples(settings: Settings, fake: FakeProc) -> tuple[Sampler, str]:
    """The sampler's two samples 30 s apart: the first has no rates yet, the second has."""
    clock = Clock()
    sampler = Sampler(Probe(settings, proc=fake.proc, clock=clock))
    fake.sample(1)
    first = sampler.sample_once()
    assert first.disk_io is None and first.net is None  # no rate from one reading
    assert "disk I/O …" in format_load(first) and "network  …" in format_load(first)
    fake.sample(2)
    clock.now += 30
    snap = sampler.sample_once()
    return sampler, format_load(snap, list(sampler.samples))


@pytest.fixture
def data(settings: Settings) -> Settings:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return settings


def test_v2_rates_and_their_rows(data: Settings, tmp_path: Path) -> None:
    sampler, text = two_samples(data, FakeProc(tmp_path, 2))
    print(text)
    lines = text.splitlines()
    assert "disk I/O read 1.0 MiB/s, write 512.0 KiB/s" in lines  # 30 MiB, 15 MiB in 30 s
    assert "network  in 120.0 KiB/s (100 pkt/s), out 5.0 KiB/s (5.0 pkt/s)" in lines
    # the sampler keeps the rates (one known value each): no sparkline yet
    kept = read_samples(data)
    assert [(s["io_read"], s["net_in"]) for s in kept] == [(None, None), (MiB, 122880)]
    assert "peak" not in text
    snap = sampler.last
    assert snap is not None and snap.source == f"cgroup v2 {tmp_path / 'cgroup'}"
    assert snap.to_dict()["disk_io"] == {"read": MiB, "write": MiB / 2}


def test_v1_rates_from_blkio(data: Settings, tmp_path: Path) -> None:
    _sampler, text = two_samples(data, FakeProc(tmp_path, 1))
    assert "disk I/O read 102.4 KiB/s, write 2.0 MiB/s" in text.splitlines()  # 3, 60 MiB
    assert "network  in 120.0 KiB/s (100 pkt/s)" in text


def test_sparklines_of_the_last_hour_in_russian(data: Settings, tmp_path: Path) -> None:
    fake = FakeProc(tmp_path, 2)
    sampler, _ = two_samples(data, fake)
    # a third sample with nothing read or written: the rates fall to zero
    fake.sample(2)
    clock = sampler.probe.clock
    assert isinstance(clock, Clock)
    clock.now += 30
    snap = sampler.sample_once()
    english = format_load(snap, list(sampler.samples))
    text = format_load(snap, list(sampler.samples), lang="ru")
    print(english, text, sep="\n")
    assert "disk I/O read 0 B/s, write 0 B/s" in english
    assert " █▁ read, peak 1.0 MiB/s (last hour)" in english
    assert " █▁ write, peak 512.0 KiB/s (last hour)" in english
    assert " █▁ in, peak 120.0 KiB/s (last hour)" in english
    assert " █▁ out, peak 5.0 KiB/s (last hour)" in english
    lines = text.splitlines()
    assert "ввод-вывод чтение 0 Б/с, запись 0 Б/с" in lines
    assert "сеть     приём 0 Б/с (0,0 пак./с), отдача 0 Б/с (0,0 пак./с)" in lines
    assert "          █▁ чтение, пик 1,0 МБ/с (за час)" in lines
    assert "          █▁ запись, пик 512,0 КБ/с (за час)" in lines
    assert "          █▁ приём, пик 120,0 КБ/с (за час)" in lines
    assert "          █▁ отдача, пик 5,0 КБ/с (за час)" in lines
    ours = [x for x in lines if x.startswith(("ввод-вывод", "сеть")) or " пик " in x]
    assert len(ours) == 6 and not re.findall(r"[A-Za-z]{3,}", "".join(ours)), ours


def test_missing_sources_say_why_and_nothing_fails(data: Settings, tmp_path: Path) -> None:
    fake = FakeProc(tmp_path, 2)
    (fake.proc / "net" / "dev").write_text((NET / "1/dev").read_text().rsplit("\n", 2)[0] + "\n")
    probe = Probe(data, proc=fake.proc)  # no io.stat: the io controller is not enabled
    probe.take(disk=False, docker=False)
    snap = probe.take(disk=False, docker=False)
    text = format_load(snap)
    print(text)
    why = "the io controller is not enabled for this cgroup"
    assert f"disk I/O — no {fake.tree}/io.stat: {why}" in text.splitlines()
    assert "network  — no network interface but lo" in text.splitlines()
    ru = format_load(snap, lang="ru").splitlines()
    assert f"ввод-вывод — нет {fake.tree}/io.stat: контроллер io не включён для этой cgroup" in ru
    assert "сеть     — нет сетевых интерфейсов, кроме lo" in ru
    assert snap.to_dict()["disk_io_note"] == f"no {fake.tree}/io.stat: {why}"
    # a v1 cgroup without the blkio controller
    v1 = FakeProc(tmp_path / "v1", 1)
    (v1.proc / "cgroup").write_text("11:memory:/\n3:cpu:/\n2:cpuacct:/\n")
    snap = Probe(data, proc=v1.proc).take(disk=False, docker=False)
    assert "disk I/O — no blkio controller mounted" in format_load(snap)
    assert f"network  — no {v1.proc}/net/dev" in format_load(snap)  # no /proc/self/net
    ru += format_load(snap, lang="ru").splitlines()
    # what a Russian chat shows of them passes its language check (tests/support/language.py)
    reasons = [x for x in ru if " — " in x]
    assert len(reasons) == 4, ru
    for line in reasons:
        assert not_russian(Said("message", f"<pre>{line}</pre>"), Outside()) == [], line


def test_a_file_we_may_not_read_is_a_reason(tmp_path: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="cp-io-"))
    try:
        folder.chmod(0o755)
        shutil.copy(CGROUP / "io-v2/1/io.stat", folder / "io.stat")
        (folder / "io.stat").chmod(0o600)
        code = (
            "import sys; from pathlib import Path; "
            "from controlplane.adapters.iocounters import read_io_v2; "
            "print(read_io_v2(Path(sys.argv[1])))"
        )
        argv = [sys.executable, "-c", code, str(folder)]
        if os.geteuid() == 0:
            user = ensure_run_as_user()
            if user is None:
                pytest.skip("no user to read the file as")
            # the system's Python: the venv's may live where that user cannot go
            system = shutil.which("python3", path="/usr/bin:/bin")
            if system is None:
                pytest.skip("no system python3 to run as another user")
            argv = ["runuser", "-u", user, "--", "env", f"PYTHONPATH={ROOT}", system, *argv[1:]]
        else:
            (folder / "io.stat").chmod(0)
        done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"no permission to read {folder / 'io.stat'}"
    finally:
        shutil.rmtree(folder)
    assert isinstance(read_io_v2(tmp_path), Text)


def test_cli_load_shows_disk_io_and_network(data: Settings) -> None:
    """`controlplane load` on this machine: real figures or the reason, and the sparklines
    of what serve's sampler kept."""
    samples = [
        {
            "at": time.time() - 90 + 30 * i,
            "io_read": 1000 * i,
            "io_write": 0,
            "net_in": 2048 * i,
            "net_out": 1,
        }
        for i in range(3)
    ]
    data.layout.load_samples.parent.mkdir(parents=True, exist_ok=True)
    data.layout.load_samples.write_text(json.dumps(samples))
    langs = (("C.UTF-8", "disk I/O", "network "), ("ru_RU.UTF-8", "ввод-вывод", "сеть    "))
    for lang, io, net in langs:
        env = cli_env(data.data_dir, LANG=lang, LC_ALL=lang)
        done = subprocess.run(
            [sys.executable, "-m", "controlplane", "load"],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
        )
        print(done.stdout, done.stderr)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        (io_row,) = [x for x in lines if x.startswith(io)]
        (net_row,) = [x for x in lines if x.startswith(net)]
        rate = r"[\d.,]+ (B|KiB|MiB|GiB|Б|КБ|МБ|ГБ)/(s|с)"
        assert re.search(rate, io_row) or "—" in io_row, io_row
        assert re.search(rate, net_row) or "—" in net_row, net_row
        assert "…" not in io_row + net_row  # two readings, half a second apart
        assert not any(x.strip().startswith("(") for x in lines)  # no CPU figures kept
        english = lang.startswith("C")
        spark_io = (
            "read, peak 2.0 KiB/s (last hour)" if english else "чтение, пик 2,0 КБ/с (за час)"
        )
        spark_net = "in, peak 4.0 KiB/s (last hour)" if english else "приём, пик 4,0 КБ/с (за час)"
        assert any(x.endswith(" ▁▅█ " + spark_io) for x in lines), lines
        assert any(x.endswith(" ▁▅█ " + spark_net) for x in lines), lines
