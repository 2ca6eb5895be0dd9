"""A data dir with many projects, each with numbered commits, releases and state, written
through the store the way `controlplane project add` and the engine do (for the store,
poll and memory benchmarks)."""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Callable
from pathlib import Path

from controlplane.adapters.store import Store
from controlplane.domain.history import CommitRow, Release
from controlplane.domain.models import Project
from controlplane.settings import Settings


def bench_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTROLPLANE_", "TELEGRAM"))}
    env.update(
        CONTROLPLANE_DATA_DIR=str(data),
        CONTROLPLANE_PYTHON="/usr/bin/python3",
        CONTROLPLANE_RUN_AS=pwd.getpwuid(os.getuid()).pw_name,
        CONTROLPLANE_ALLOW_FILE_URLS="1",
    )
    return env


def populate(
    store: Store,
    projects: int,
    commits: int,
    *,
    repo: str | Callable[[int], str] = "https://example.com/x.git",
    base: Path = Path("/tmp/bench-apps"),
    poll: int = 0,
) -> list[str]:
    """`projects` projects named p000…, each with `commits` numbered commits, 3 releases,
    a prod slot state and two variables per slot. Returns the names."""
    names = []
    now = time.time()
    for i in range(projects):
        name = f"p{i:03d}"
        url = repo(i) if callable(repo) else repo
        store.add_project(Project(name=name, repo=url, path=str(base / name), poll=poll))
        store.set_env(name, "prod", {"API_KEY": f"sk-{i}-prod", "HTTPS_PROXY": "http://p:3128"})
        store.set_env(name, "test", {"API_KEY": f"sk-{i}-test"})
        rows = [
            CommitRow(0, f"{i:08x}{n:032x}", now - n, "Ada Author", f"change number {n} of {name}")
            for n in range(commits)
        ]
        store.add_commits(name, rows)
        for n in (commits - 2, commits - 1, commits):
            sha = f"{i:08x}{n - 1:032x}"
            store.put_release(
                name,
                Release(
                    n=n,
                    sha=sha,
                    state="ready",
                    created=now,
                    finished=now,
                    seconds=1.2,
                    installer="uv",
                    steps=({"name": "venv", "ok": True, "seconds": 0.1, "tail": ["ok"]},),
                ),
            )
        store.update_state(name, prod=commits, prod_previous=commits - 1, prod_running=True)
        names.append(name)
    return names


def open_store(data: Path) -> Store:
    return Store.open(Settings.from_env(bench_env(data)))
