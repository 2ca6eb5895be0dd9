"""End-to-end scenarios: the whole control plane against real supervisord, git, venvs and
the local Bot API server. Every test here is marked `slow` (`pytest -m "not slow"` runs
the rest in a few minutes); `make test` runs everything."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.slow)
