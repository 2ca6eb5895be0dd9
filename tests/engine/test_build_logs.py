"""Build logs: one file per build attempt, pruned with their release, gone with their
project; `controlplane logs NAME --build N` reads them (real builds, real git)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.runner import SupervisorRunner
from controlplane.domain.history import Release
from controlplane.domain.models import Project
from controlplane.engine.releases import BuildFailed, Engine, Quiet, logs_to_prune
from controlplane.layout import build_log_of
from controlplane.service.outbox import Outbox
from controlplane.settings import Settings
from tests.conftest import cli_env
from tests.support.fixtures_repos import Origin

ROOT = Path(__file__).resolve().parents[2]
ENGLISH = {"LANG": "C.UTF-8", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": ""}


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controlplane", *args],
        capture_output=True,
        text=True,
        env=cli_env(data_dir, **ENGLISH),
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def builds(settings: Settings) -> list[str]:
    folder = settings.layout.builds_dir
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_build_log_names() -> None:
    assert build_log_of("shop-7.log") == ("shop", 7, 1)
    assert build_log_of("shop-7.2.log") == ("shop", 7, 2)
    assert build_log_of("my-shop-12.log") == ("my-shop", 12, 1)
    assert build_log_of("shop-prod.out.log") is None
    assert build_log_of("shop-7.txt") is None


def test_logs_to_prune_takes_pruned_and_old_failed_builds() -> None:
    releases = [
        Release(1, "a" * 40, state="pruned"),
        Release(2, "b" * 40, state="failed"),
        Release(3, "c" * 40, state="failed"),
        Release(4, "d" * 40, state="ready"),
        Release(5, "e" * 40, state="failed"),
    ]
    assert logs_to_prune(releases, keep=2, gone=[4]) == [1, 2, 4]


def test_each_attempt_has_a_log_pruned_with_its_release(
    settings: Settings, store: Store, origin: Callable[..., Origin], tmp_path: Path
) -> None:
    repo = origin("shop")
    repo.commit("broken", {"main.py": "print(1)\n", "requirements.txt": "no-such-pkg==1.0\n"})
    repo.push()
    (tmp_path / "uv.toml").write_text("no-index = true\n")
    store.add_project(Project(name="shop", repo=repo.url, path=str(tmp_path / "live"), keep=1))
    store.set_env(
        "shop", "prod", {"PIP_NO_INDEX": "1", "UV_CONFIG_FILE": str(tmp_path / "uv.toml")}
    )
    engine = Engine(settings, store, Outbox(store), runner=SupervisorRunner(settings))
    project = store.get_project("shop")
    first = engine.sync(project, Quiet())
    for _ in range(2):  # the same commit built twice: two files
        with pytest.raises(BuildFailed):
            engine.ensure_release(project, first, Quiet())
    assert builds(settings) == ["shop-1.2.log", "shop-1.log"]
    assert store.releases("shop")[0].log == str(settings.layout.builds_dir / "shop-1.2.log")

    shown = cli(settings.data_dir, "logs", "shop", "--build", "1", "-n", "200")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("── build #1 of shop, attempt 2 (")
    assert "no-such-pkg" in shown.stdout and "shop-1.2.log" in shown.stdout
    found = json.loads(cli(settings.data_dir, "logs", "shop", "--build", "1", "--json").stdout)
    assert (found["n"], found["attempt"]) == (1, 2)
    missing = cli(settings.data_dir, "logs", "shop", "--build", "9")
    assert missing.returncode != 0
    assert "shop has no build log of #9" in missing.stderr

    repo.commit("fixed", {"requirements.txt": ""})
    repo.commit("again")
    repo.push()
    engine.sync(project, Quiet())
    for ref in ("2", "3"):
        engine.ensure_release(project, engine.commit(project, ref, Quiet()), Quiet())
    other = settings.layout.build_log("shopping", 2)  # another project's, named alike
    other.write_text("kept\n")
    assert engine.prune("shop", Quiet()) == [2]  # keep=1: #2's folder goes, and its log
    assert builds(settings) == ["shop-1.2.log", "shop-1.log", "shop-3.log", "shopping-2.log"]

    removed = cli(settings.data_dir, "project", "remove", "shop")
    assert removed.returncode == 0, removed.stderr
    assert builds(settings) == ["shopping-2.log"]
