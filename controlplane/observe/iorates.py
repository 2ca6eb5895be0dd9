"""Disk I/O and network as rates: how much the counters (adapters.iocounters) rose per
second between two readings.

A `RateMeter` keeps the previous reading; its first reading has no rates yet (the screen
shows "…", as for CPU). A source that cannot be read gives its reason instead, logged once
per reason, never raised: the load screen shows "—" and the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from controlplane.adapters.cgroupfs import PROC_SELF
from controlplane.adapters.iocounters import IoCounters, NetCounters, read_io, read_net
from controlplane.i18n import Text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IoRates:
    """Bytes per second the container's cgroup read and wrote."""

    read: float
    write: float


@dataclass(frozen=True)
class NetRates:
    """Bytes and packets per second in and out of the container's interfaces but `lo`."""

    bytes_in: float
    bytes_out: float
    packets_in: float
    packets_out: float


def per_second(prev: int, now: int, seconds: float) -> float:
    """A counter's rise per second; 0 where it fell (a reset counter, an interface gone)."""
    return max(now - prev, 0) / seconds if seconds > 0 else 0.0


def io_rates(prev: IoCounters, now: IoCounters, seconds: float) -> IoRates:
    return IoRates(
        per_second(prev.read_bytes, now.read_bytes, seconds),
        per_second(prev.write_bytes, now.write_bytes, seconds),
    )


def net_rates(prev: NetCounters, now: NetCounters, seconds: float) -> NetRates:
    return NetRates(
        per_second(prev.bytes_in, now.bytes_in, seconds),
        per_second(prev.bytes_out, now.bytes_out, seconds),
        per_second(prev.packets_in, now.packets_in, seconds),
        per_second(prev.packets_out, now.packets_out, seconds),
    )


class RateMeter:
    """Reads the counters of `proc` (/proc/self, or a fixture copy) at each `take` and
    gives the rates since the previous one."""

    def __init__(self, proc: Path = PROC_SELF) -> None:
        self.proc = proc
        self._io: tuple[float, IoCounters] | None = None
        self._net: tuple[float, NetCounters] | None = None
        self._told: set[str] = set()

    def io(self, now: float) -> tuple[IoRates | None, Text | None]:
        """(rates since the last reading or None on the first, why there are none)."""
        reading = read_io(self.proc)
        if isinstance(reading, Text):
            self._io = None
            return None, self._tell("disk I/O", reading)
        prev, self._io = self._io, (now, reading)
        if prev is None or reading.where != prev[1].where:
            return None, None
        return io_rates(prev[1], reading, now - prev[0]), None

    def net(self, now: float) -> tuple[NetRates | None, Text | None]:
        """(rates since the last reading or None on the first, why there are none)."""
        reading = read_net(self.proc)
        if isinstance(reading, Text):
            self._net = None
            return None, self._tell("network", reading)
        prev, self._net = self._net, (now, reading)
        if prev is None:
            return None, None
        return net_rates(prev[1], reading, now - prev[0]), None

    def _tell(self, what: str, reason: Text) -> Text:
        """The reason, logged the first time it is met."""
        if str(reason) not in self._told:
            self._told.add(str(reason))
            logger.info("no %s figures: %s", what, reason)
        return reason
