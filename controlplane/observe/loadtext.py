"""The load screen's text (pure): the snapshot's rows in the reader's language, with
last-hour sparklines drawn from the sampler's kept samples. The bot and `controlplane
load` show the same text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controlplane.i18n import N_, Number, Size, gettext, ntr, render, t
from controlplane.observe.load import Snapshot, series

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(
    series: Sequence[float | None],
    width: int = 30,
    lo: float | None = None,
    hi: float | None = None,
) -> str:
    """Unicode bars, one per value (buckets averaged when there are more than `width`);
    None is a gap. The scale is lo..hi (default the series' own min..max)."""
    values = _buckets(list(series), width)
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    low = min(known) if lo is None else lo
    high = max(known) if hi is None else hi
    span = high - low
    out = []
    for v in values:
        if v is None:
            out.append(" ")
            continue
        level = 0 if span <= 0 else round((min(max(v, low), high) - low) / span * 7)
        out.append(BLOCKS[level])
    return "".join(out)


def _buckets(values: list[float | None], width: int) -> list[float | None]:
    if width <= 0 or len(values) <= width:
        return values
    out: list[float | None] = []
    for i in range(width):
        part = [v for v in values[i * len(values) // width : (i + 1) * len(values) // width]]
        known = [v for v in part if v is not None]
        out.append(sum(known) / len(known) if known else None)
    return out


def row(lang: str, label: str, rest: str) -> str:
    """A line under its label ('CPU      12.5% of 2 CPUs'): the label in `lang`."""
    return f"{gettext(lang, label):<8} {rest}"


def format_load(
    snap: Snapshot, samples: Sequence[Mapping[str, Any]] = (), width: int = 30, lang: str = "en"
) -> str:
    """The container's load as plain text in `lang`, with last-hour sparklines when there
    are samples."""
    hour = [s for s in samples if float(s.get("at", 0)) >= snap.at - 3600]
    spark = Sparks(hour, width, lang)
    cpu = "…" if snap.cpu_percent is None else t(lang, "{p}%", p=Number(snap.cpu_percent))
    decimals = f"{snap.cpu_capacity:g}".partition(".")[2]
    cpus = Number(snap.cpu_capacity, min(len(decimals), 3))
    cpu_of = (
        N_("{cpu} of {n} CPUs (container quota)")
        if snap.cpu_limited
        else N_("{cpu} of {n} CPUs (no quota: the host's CPUs)")
    )
    memory = (
        N_("{used} of {limit} ({percent}%, container limit)")
        if snap.memory_limited
        else N_("{used} of {limit} ({percent}%, no limit: the host's memory)")
    )
    lines = [row(lang, N_("CPU"), t(lang, cpu_of, cpu=cpu, n=cpus)), *spark.percent("cpu")]
    figures = {"used": Size(snap.memory_used), "limit": Size(snap.memory_limit)}
    lines.append(
        row(lang, N_("memory"), t(lang, memory, percent=Number(snap.memory_percent), **figures))
    )
    lines += spark.percent("mem")
    la = " ".join(Number(v, 2).render(lang) for v in snap.load_avg)
    host = ntr("{load} (host, {n} CPU)", "{load} (host, {n} CPUs)", snap.host_cpus, load=la)
    lines.append(row(lang, N_("load"), host.render(lang)))
    lines += _disk_lines(snap, lang) + io_lines(snap, spark) + net_lines(snap, spark)
    lines += _slot_lines(snap, hour, width, lang) + _docker_lines(snap, lang)
    source = t(lang, "host") if snap.source == "host" else snap.source
    lines.append(row(lang, N_("source"), source))
    return "\n".join(lines)


def _disk_lines(snap: Snapshot, lang: str) -> list[str]:
    disk = t(
        lang,
        "{free} free of {total} ({percent}%) on {path}",
        free=Size(snap.disk_free),
        total=Size(snap.disk_total),
        percent=Number(snap.disk_free_percent, 0),
        path=snap.disk_path,
    )
    lines = [row(lang, N_("disk"), disk)]
    if snap.disk_parts:
        parts = ", ".join(
            t(lang, PARTS.get(k, k), size=Size(v)) for k, v in snap.disk_parts.items()
        )
        lines.append(f"{'':9}{parts}")
    return lines


def rate(lang: str, per_second: float) -> str:
    """Bytes per second in the reader's units: '1.2 MiB/s' / '1,2 МБ/с'."""
    return t(lang, "{size}/s", size=Size(per_second))


class Sparks:
    """The last hour's sparklines of one screen, each a line under its figure's row."""

    def __init__(self, hour: Sequence[Mapping[str, Any]], width: int, lang: str) -> None:
        self.hour, self.width, self.lang = hour, width, lang

    def percent(self, key: str) -> list[str]:
        """A figure in % ('cpu', 'mem'), drawn on 0..100."""
        values = series(self.hour, key)
        if len([v for v in values if v is not None]) < 2:
            return []
        hour_note = t(self.lang, "(last hour)")
        return [f"{'':9}{sparkline(values, self.width, 0.0, 100.0)} {hour_note}"]

    def rate(self, key: str, note: str) -> list[str]:
        """A rate ('io_read', 'net_in' …), drawn on 0..its peak, which `note` names."""
        values = series(self.hour, key)
        known = [v for v in values if v is not None]
        if len(known) < 2:
            return []
        said = t(self.lang, note, rate=rate(self.lang, max(known)))
        return [f"{'':9}{sparkline(values, self.width, 0.0, None)} {said}"]


def io_lines(snap: Snapshot, spark: Sparks) -> list[str]:
    """Disk I/O: read and write rates now, and their sparklines."""
    lang = spark.lang
    if snap.disk_io_note:
        now = f"— {render(snap.disk_io_note, lang)}"
    elif snap.disk_io is None:
        now = "…"
    else:
        io = snap.disk_io
        now = t(
            lang, "read {read}, write {write}", read=rate(lang, io.read), write=rate(lang, io.write)
        )
    return [
        row(lang, N_("disk I/O"), now),
        *spark.rate("io_read", N_("read, peak {rate} (last hour)")),
        *spark.rate("io_write", N_("write, peak {rate} (last hour)")),
    ]


def net_lines(snap: Snapshot, spark: Sparks) -> list[str]:
    """The network: bytes and packets in and out now, and the bytes' sparklines."""
    lang = spark.lang
    if snap.net_note:
        now = f"— {render(snap.net_note, lang)}"
    elif snap.net is None:
        now = "…"
    else:
        net = snap.net
        now = t(
            lang,
            "in {bytes_in} ({packets_in}), out {bytes_out} ({packets_out})",
            bytes_in=rate(lang, net.bytes_in),
            bytes_out=rate(lang, net.bytes_out),
            packets_in=packets(lang, net.packets_in),
            packets_out=packets(lang, net.packets_out),
        )
    return [
        row(lang, N_("network"), now),
        *spark.rate("net_in", N_("in, peak {rate} (last hour)")),
        *spark.rate("net_out", N_("out, peak {rate} (last hour)")),
    ]


def packets(lang: str, per_second: float) -> str:
    """Packets per second: '12 pkt/s', '0.5 pkt/s'."""
    return t(lang, "{n} pkt/s", n=Number(per_second, 0 if per_second >= 10 else 1))


PARTS = {  # what takes the disk (disk_parts' keys)
    "releases": N_("releases {size}"),
    "logs": N_("logs {size}"),
    "cache": N_("cache {size}"),
}


def _slot_lines(
    snap: Snapshot, hour: Sequence[Mapping[str, Any]], width: int, lang: str
) -> list[str]:
    if snap.slots_note:
        return [row(lang, N_("projects"), render(snap.slots_note, lang))]
    if not snap.slots:
        return []
    kinds = ", ".join(sorted({s.memory_kind for s in snap.slots}))
    lines = [t(lang, "projects (memory: {kinds})", kinds=kinds)]
    for s in snap.slots:
        cpu = "…" if s.cpu_percent is None else t(lang, "{p}% CPU", p=Number(s.cpu_percent))
        procs = ntr("{n} proc", "{n} proc", s.pids).render(lang)
        values = series(hour, s.program)
        line = f"  {s.program:<24} {Size(s.memory).render(lang):>10}  {cpu:<10} {procs}"
        if len([v for v in values if v is not None]) > 1:
            line += "  " + sparkline(values, width // 2, 0.0, None)
        lines.append(line)
    return lines


def _docker_lines(snap: Snapshot, lang: str) -> list[str]:
    if snap.docker_note:
        return [row(lang, N_("docker"), render(snap.docker_note, lang))]
    lines = ["docker"] if snap.docker else []
    for c in snap.docker:
        name = t(lang, "{name} (this one)", name=c["name"]) if c.get("own") else c["name"]
        figures = t(
            lang,
            "{cpu}% CPU  {used} of {limit}",
            cpu=Number(c["cpu_percent"]),
            used=Size(c["memory_used"]),
            limit=Size(c["memory_limit"]),
        )
        lines.append(f"  {name:<24} {figures}")
    return lines
