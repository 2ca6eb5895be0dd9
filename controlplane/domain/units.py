"""Figures in English: bytes and durations as the logs and plain English output write them.

Pure functions, one per way a figure is written, so a size reads the same wherever English
is written. A text for a person carries the figure itself instead (`Size`, `Duration` of
controlplane.i18n, inside a Text), which each language writes its own way.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

MIB = 2**20
BYTE_UNITS = ("B", "KiB", "MiB", "GiB")


def human_bytes(n: float) -> str:
    """Bytes in the largest binary unit under 1024: '512 B', '1.5 KiB', '3.2 GiB'; TiB at
    most."""
    for unit in BYTE_UNITS:
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def megabytes(n: float) -> str:
    """Bytes as whole mebibytes, the short form of lists and live cards: '41 MB'."""
    return f"{n / MIB:.0f} MB"


def human_duration(seconds: float) -> str:
    """The two largest units of a span: 3725 → '1h 2m', 42 → '42s', 200000 → '2d 7h'."""
    total = max(round(seconds), 0)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        value, total = divmod(total, size)
        if value:
            parts.append(f"{value}{unit}")
    return " ".join(parts[:2]) or "0s"
