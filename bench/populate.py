"""A data dir with many projects, each with numbered commits, releases and state, in the
store's own file formats (for the store, poll, memory and scale benchmarks).

Documents are built by the domain's own `to_dict` and written the way the store writes
them, but batched: one write of store.json for all the projects, one write of each
project's file and of its commit file. Adding 1,000 projects one `project add` at a time
rewrites store.json (which grows to about 1 MB) 3,000 times, which is minutes of setup
and no part of what is measured.
"""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controlplane.adapters import commitfile
from controlplane.adapters.store import Store
from controlplane.domain.history import CommitRow, Release, SlotState
from controlplane.domain.models import SLOTS, Project
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


def project_name(i: int) -> str:
    return f"p{i:03d}"


def _project_doc(store: Store, project: Project, i: int) -> dict[str, Any]:
    """What add_project, then set_env of both slots, leave in store.json."""
    enc = store.keyring.encrypt
    doc = project.to_dict()
    doc["repo_auth"] = None
    doc["env"] = {
        "prod": {"API_KEY": enc(f"sk-{i}-prod"), "HTTPS_PROXY": enc("http://p:3128")},
        "test": {"API_KEY": enc(f"sk-{i}-test")},
    }
    doc["env_marks"] = {slot: {} for slot in SLOTS}
    doc["env_rev_prod"], doc["env_rev_test"] = 1, 2
    return doc


def _history(store: Store, name: str, i: int, commits: int, running: bool) -> None:
    """A project's numbered commits, 3 ready releases and a prod slot on the newest."""
    now = time.time()
    rows = [
        CommitRow(n + 1, f"{i:08x}{n:032x}", now - n, "Ada Author", f"change number {n} of {name}")
        for n in range(commits)
    ]
    releases = {}
    for k, n in enumerate((commits - 2, commits - 1, commits), start=1):
        release = Release(
            n=n,
            sha=f"{i:08x}{n - 1:032x}",
            state="ready",
            created=now,
            finished=now,
            seconds=1.2,
            installer="uv",
            steps=({"name": "venv", "ok": True, "seconds": 0.1, "tail": ["ok"]},),
        )
        releases[str(k)] = {**release.to_dict(), "project": name}
    state = SlotState().with_(prod=commits, prod_previous=commits - 1, prod_running=running)
    with store.locked():
        store._shard(f"commits:{name}").write(commitfile.encode(rows))
        store._shard(f"project:{name}").write(
            {"releases": releases, "state": {"1": {**state.to_dict(), "project": name}}}
        )


def populate(
    store: Store,
    projects: int,
    commits: int,
    *,
    repo: str | Callable[[int], str] = "https://example.com/x.git",
    base: Path = Path("/tmp/bench-apps"),
    poll: int = 0,
    start: int = 0,
    running: Callable[[int], bool] = lambda i: True,
) -> list[str]:
    """Projects p{start}… (`projects` of them), each with `commits` numbered commits, 3
    releases, a prod slot state (running when `running(i)`) and two variables per slot.
    Returns the names."""
    names = [project_name(i) for i in range(start, start + projects)]
    with store.rows(None, "projects", write=True) as docs:
        next_id = max((int(k) for k in docs), default=0) + 1
        for k, (i, name) in enumerate(zip(range(start, start + projects), names, strict=True)):
            url = repo(i) if callable(repo) else repo
            project = Project(name=name, repo=url, path=str(base / name), poll=poll)
            docs[str(next_id + k)] = _project_doc(store, project, i)
    for i, name in zip(range(start, start + projects), names, strict=True):
        _history(store, name, i, commits, running(i))
    return names


def open_store(data: Path) -> Store:
    return Store.open(Settings.from_env(bench_env(data)))
