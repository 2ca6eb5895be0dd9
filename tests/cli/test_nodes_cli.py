"""`controlplane nodes` on a plain box (no swarm): one line saying so and where the docs
tell how to set one up, exit status 1, in the locale's language. On the swarm:
tests/swarm/test_nodes.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli.test_cli import run

SOCK = Path("/var/run/docker.sock")


@pytest.mark.skipif(SOCK.exists(), reason="this machine has a Docker socket")
def test_nodes_without_a_swarm_says_so_in_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert "DOCKER_HOST" not in os.environ
    for args in (("nodes",), ("nodes", "--json"), ("nodes", "drain", "pi")):
        proc = run(data_dir, *args)
        assert proc.returncode == 1
        assert proc.stdout == ""
        assert proc.stderr == (
            "controlplane: error: no swarm here: DOCKER_HOST is unset and there is no Docker "
            "socket at /var/run/docker.sock (docs/multihost.md tells how to set up a swarm)\n"
        )
    russian = run(data_dir, "nodes", LANG="ru_RU.UTF-8")
    assert russian.returncode == 1
    assert "здесь нет роя: DOCKER_HOST не задан" in russian.stderr
    assert len(russian.stderr.splitlines()) == 1


def test_nodes_with_an_engine_that_is_not_there(data_dir: Path) -> None:
    proc = run(data_dir, "nodes", DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert proc.returncode == 1
    assert proc.stderr.startswith(
        "controlplane: error: cannot reach the Docker engine at unix:///nonexistent/docker.sock"
    )
    assert len(proc.stderr.splitlines()) == 1
