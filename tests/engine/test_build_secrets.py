"""A build hides the project's secrets from its output, never its plain values (issue #14:
masking ate words): a real uv build from a local wheel folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.engine.test_build import SECRET, Project, offline_env
from tests.support.fixtures_repos import Origin

PLAIN = "plainword42"  # a plain variable's value, and a package name the build prints


@pytest.fixture
def project(origin: Callable[..., Origin], tmp_path: Path) -> Project:
    return Project(origin(), tmp_path)


def test_a_build_hides_the_secrets_and_shows_the_plain_values(
    project: Project, wheelhouse: Callable[..., Path]
) -> None:
    wheels = wheelhouse("tinylib", "1.0")
    env = offline_env(project.tmp, wheels, MODE=PLAIN)
    sha = project.commit({"requirements.txt": f"{PLAIN}==9.9\n"})
    result = project.build(sha, env, installer="uv", secrets=[SECRET])
    shown = "\n".join(result.steps[-1].tail_lines)
    assert result.state == "failed" and PLAIN in shown, shown  # a plain value is a word
    sha = project.commit({"requirements.txt": f"{SECRET}==9.9\n"})
    result = project.build(sha, env, installer="uv", secrets=[SECRET])
    shown = "\n".join(result.steps[-1].tail_lines)
    assert "***" in shown and SECRET not in shown and SECRET not in result.log_path.read_text()
