"""Shared fixtures: a fresh data dir, settings pointing at it, and an opened store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controlplane.adapters.store import Store
from controlplane.settings import Settings

# Shared fixtures are registered once, here; test modules never import a fixture.
pytest_plugins = [
    "tests.support.fixtures_repos",
    "tests.support.fixtures_supervisor",
    "tests.support.fixtures_release",
    "tests.support.fixtures_faults",
    "tests.support.chat",
    "tests.support.swarm",
]

MakeSettings = Callable[..., Settings]


def pytest_sessionstart(session: pytest.Session) -> None:
    """The compiled catalogs, as `make` and the wheel's build hook make them: the CLI's
    argparse words are read by the standard library's gettext, which needs the `.mo`."""
    from controlplane.i18n import compile_stale

    compile_stale()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def make_settings(data_dir: Path) -> MakeSettings:
    """Settings from an environment like the box's, with overrides."""

    def make(**env: str) -> Settings:
        base = {"CONTROLPLANE_DATA_DIR": str(data_dir), "CONTROLPLANE_ALLOW_FILE_URLS": "1"}
        base.update(env)
        return Settings.from_env(base)

    return make


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings()


@pytest.fixture
def store(settings: Settings) -> Store:
    return Store.open(settings)


@pytest.fixture
def bot_api_options() -> dict[str, object]:
    """Extra options of the local Bot API server behind `phone` (tests/test_bot.py); a test
    module overrides this fixture, e.g. to run its chats under Telegram's flood limits."""
    return {}


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment a CLI subprocess runs with in tests."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLPLANE_", "TELEGRAM"))}
    env.update(CONTROLPLANE_DATA_DIR=str(data_dir), CONTROLPLANE_ALLOW_FILE_URLS="1")
    env.update(extra)
    return env
