"""The swarm for the Runner contract's swarm rig (swarm_rig.py).

The swarm comes from `swarm_engine`: a manager's socket, a base image with python3 and
the registry the nodes pull from. It is the shared two-node swarm (tests/support/swarm.py)
or, for a quick local run, the engine CP_TEST_SWARM_HOST names (with CP_TEST_SWARM_BASE,
the base image, and CP_TEST_SWARM_REGISTRY when it has one); without either the swarm
cases skip, saying why. Every test leaves the swarm as it found it: its services and
secrets are removed afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from controlplane.adapters.swarm.client import LABEL_SLOT, connect
from controlplane.adapters.swarm.runner import SwarmRunner
from controlplane.adapters.swarm.services import Limits, Shape
from controlplane.settings import Settings


@dataclass(frozen=True)
class SwarmEngine:
    """A swarm manager's API and the base image releases are built on."""

    base_url: str
    base_image: str
    registry: str = ""


@pytest.fixture(scope="session")
def swarm_engine(request: pytest.FixtureRequest) -> SwarmEngine:
    """CP_TEST_SWARM_HOST's engine when set, else the shared two-node swarm (`swarm`,
    tests/support/swarm.py, which skips by itself, saying why, where none can run)."""
    host, base = os.environ.get("CP_TEST_SWARM_HOST"), os.environ.get("CP_TEST_SWARM_BASE")
    if host and base:
        return SwarmEngine(host, base, os.environ.get("CP_TEST_SWARM_REGISTRY", ""))
    try:
        swarm = request.getfixturevalue("swarm")
    except pytest.FixtureLookupError:
        pytest.skip("no swarm to test on: no swarm fixture, CP_TEST_SWARM_HOST unset")
    return SwarmEngine(swarm.manager.docker_host, swarm.base_image, swarm.registry)


def clean(base_url: str) -> None:
    """Remove every slot service and variables secret the tests made."""
    client = connect(base_url)
    try:
        for service in client.services.list(filters={"label": LABEL_SLOT}):
            service.remove()
        for secret in client.secrets.list(filters={"label": LABEL_SLOT}):
            try:
                secret.remove()
            except Exception:
                continue
    finally:
        client.close()


@pytest.fixture
def swarm_runner(
    swarm_engine: SwarmEngine, make_settings: Callable[..., Settings]
) -> Iterator[SwarmRunner]:
    settings = make_settings()
    runner = SwarmRunner(
        settings,
        base_url=swarm_engine.base_url,
        base_image=swarm_engine.base_image,
        registry=swarm_engine.registry,
        shape=Shape(entry="main.py", restart_delay=0.5, stop_grace=5, monitor=5),
        limits=Limits(startsecs=1.0, startretries=1),  # as the supervisord rig's
    )
    clean(swarm_engine.base_url)
    yield runner
    runner.close()
    clean(swarm_engine.base_url)
