"""The container's disk I/O and network counters: pure parsers over the kernel's text,
readers over folders (fixture copies in tests).

Disk I/O is the cgroup's own: bytes read and written, every device summed (as `docker
stats` sums them), from `io.stat` on cgroup v2 and the blkio controller's
`io_service_bytes` files on v1. The network is the interfaces of the process's network
namespace (the container's, from /proc/self/net/dev), `lo` left out. A source that cannot
be read (no such file, no permission, no controller) is a reason, a Text, never an
exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from controlplane.adapters.cgroupfs import PROC_SELF, cgroup_folders
from controlplane.i18n import Text, tr

# v1's files, best first: the throttle layer counts every I/O whatever the scheduler, and
# the _recursive files count the cgroups below ours (the slots') too
BLKIO_FILES = (
    "blkio.throttle.io_service_bytes_recursive",
    "blkio.io_service_bytes_recursive",
    "blkio.throttle.io_service_bytes",
    "blkio.io_service_bytes",
)


@dataclass(frozen=True)
class IoCounters:
    """Bytes a cgroup read and wrote since it began, every device summed."""

    read_bytes: int
    write_bytes: int
    where: str  # the file read


@dataclass(frozen=True)
class NetCounters:
    """What the interfaces but `lo` received and sent since they came up."""

    bytes_in: int
    bytes_out: int
    packets_in: int
    packets_out: int
    interfaces: tuple[str, ...]


def parse_io_stat(text: str) -> tuple[int, int]:
    """v2 io.stat ('8:0 rbytes=1024 wbytes=2048 rios=1 …' a line) → (read, write) bytes,
    summed over the devices."""
    read = write = 0
    for line in text.splitlines():
        for pair in line.split()[1:]:
            key, _, value = pair.partition("=")
            if value.isdigit() and key in ("rbytes", "wbytes"):
                read += int(value) if key == "rbytes" else 0
                write += int(value) if key == "wbytes" else 0
    return read, write


def parse_blkio(text: str) -> tuple[int, int]:
    """v1 io_service_bytes ('8:0 Read 1024' a line, then Write, Sync, Async, Discard, Total
    of each device, and a last 'Total N') → (read, write) bytes, summed over the devices."""
    totals = {"Read": 0, "Write": 0}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in totals and fields[2].isdigit():
            totals[fields[1]] += int(fields[2])
    return totals["Read"], totals["Write"]


def parse_net_dev(text: str) -> NetCounters:
    """/proc/net/dev (two heading lines, then 'eth0: bytes packets … | bytes packets …')
    → the received and sent bytes and packets of every interface but `lo`, summed."""
    names: list[str] = []
    sums = [0, 0, 0, 0]  # bytes in, bytes out, packets in, packets out
    for line in text.splitlines()[2:]:
        name, _, rest = line.partition(":")
        fields = rest.split()
        if name.strip() == "lo" or len(fields) < 10 or not all(f.isdigit() for f in fields):
            continue
        names.append(name.strip())
        for i, column in enumerate((0, 8, 1, 9)):
            sums[i] += int(fields[column])
    return NetCounters(sums[0], sums[1], sums[2], sums[3], tuple(names))


def _read(path: Path) -> str | Text:
    """The file's text, or why it cannot be read."""
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        return tr("no {path}", path=str(path))
    except PermissionError:
        return tr("no permission to read {path}", path=str(path))
    except (OSError, UnicodeDecodeError) as exc:
        return tr("{path} cannot be read: {error}", path=str(path), error=str(exc))


def read_io_v2(folder: Path) -> IoCounters | Text:
    """io.stat of one v2 cgroup (missing where the io controller is not enabled for it)."""
    text = _read(folder / "io.stat")
    if isinstance(text, Text) and not (folder / "io.stat").exists():
        return tr(
            "no {path}: the io controller is not enabled for this cgroup",
            path=str(folder / "io.stat"),
        )
    if isinstance(text, Text):
        return text
    return IoCounters(*parse_io_stat(text), where=str(folder / "io.stat"))


def read_io_v1(folder: Path) -> IoCounters | Text:
    """The first of BLKIO_FILES that is there in one v1 blkio cgroup."""
    for name in BLKIO_FILES:
        text = _read(folder / name)
        if not isinstance(text, Text):
            return IoCounters(*parse_blkio(text), where=str(folder / name))
        if (folder / name).exists():  # there, but it cannot be read: that is the reason
            return text
    return tr("no {path}", path=str(folder / BLKIO_FILES[0]))


def read_io(proc: Path = PROC_SELF) -> IoCounters | Text:
    """This process's cgroup's disk I/O counters, v1 or v2, or why there are none."""
    found = cgroup_folders(proc)
    if found is None:
        return tr("no cgroup to read disk I/O from")
    version, dirs = found
    if version == 2:
        return read_io_v2(dirs[""])
    if "blkio" not in dirs:
        return tr("no blkio controller mounted")
    return read_io_v1(dirs["blkio"])


def read_net(proc: Path = PROC_SELF) -> NetCounters | Text:
    """The counters of the interfaces of this process's network namespace but `lo`."""
    text = _read(proc / "net" / "dev")
    if isinstance(text, Text):
        return text
    counters = parse_net_dev(text)
    return counters if counters.interfaces else tr("no network interface but lo")
