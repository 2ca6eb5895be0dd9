"""Figures for a person: one byte formatter for every face."""

from __future__ import annotations

from controlplane.domain.units import human_bytes, megabytes


def test_human_bytes_picks_the_largest_unit_under_1024() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(512) == "512 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1024) == "1.0 KiB"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(3.2 * 2**30) == "3.2 GiB"
    assert human_bytes(5 * 2**40) == "5.0 TiB"
    assert human_bytes(2048 * 2**40) == "2048.0 TiB"  # TiB at most
    assert human_bytes(-1536) == "-1.5 KiB"


def test_megabytes_are_whole() -> None:
    assert megabytes(41 * 2**20 + 100) == "41 MB"
    assert megabytes(0) == "0 MB"
    assert megabytes(2**19 + 1) == "1 MB"
