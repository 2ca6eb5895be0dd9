"""A repository with 10,000 commits on its branch: adding it (fetch into a new mirror,
number the whole first-parent history, write the commit file), the first page of the
rollback picker, a new commit numbered and a state write, each against the same work for
a repository of 20 commits, measured in the same run."""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import RUNS, Figure, log, tempdir
from bench.populate import open_store
from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.runner import SupervisorRunner
from controlplane.bot.screens import rollback_menu
from controlplane.domain.history import CommitRow
from controlplane.domain.models import Project
from controlplane.engine.releases import Engine, Quiet
from controlplane.service.outbox import Outbox
from tests.support.fixtures_repos import Origin, sh_git

BIG = 10_000
SMALL = 20


def make_origin(base: Path, name: str, n: int) -> Origin:
    bare, work = base / "origins" / f"{name}.git", base / "work" / name
    sh_git("init", "-q", "--bare", "--initial-branch=main", str(bare))
    sh_git("clone", "-q", str(bare), str(work))
    sh_git("checkout", "-q", "-b", "main", cwd=work)
    origin = Origin(bare=bare, work=work)
    origin.bulk(n)
    return origin


def add(base: Path, origin: Origin, k: int) -> tuple[Store, float]:
    """A fresh data dir; `project add`'s work (the project, the first fetch and numbering)."""
    store = open_store(base / f"data-{origin.bare.stem}-{k}")
    engine = Engine(store.settings, store, Outbox(store), runner=SupervisorRunner(store.settings))
    t = time.perf_counter()
    store.add_project(Project(name="app", repo=str(origin.bare), path=str(base / f"live-{k}")))
    engine.sync(store.get_project("app"), Quiet())
    return store, time.perf_counter() - t


def first_page(store: Store, *, cold: bool) -> float:
    """The picker's first page as the bot makes it. `cold`: by a new Store on the same
    data dir, so the commit file is read and parsed (serve's first press after a restart
    or a new commit); warm: the parsed rows are cached (every other press)."""
    if cold:
        store = Store.open(store.settings)
    t = time.perf_counter()
    commits, releases, state = store.commits("app"), store.releases("app"), store.state("app")
    rollback_menu("en", "app", commits, {r.n: r for r in releases}, state, 0)
    return (time.perf_counter() - t) * 1000


def writes(store: Store, k: int) -> tuple[float, float]:
    """ms of one new commit numbered after the others, and of one slot-state write."""
    row = CommitRow(0, f"{k:040x}", time.time(), "Ada", f"new commit {k}")
    t = time.perf_counter()
    assert len(store.add_commits("app", [row])) == 1
    numbered = time.perf_counter() - t
    t = time.perf_counter()
    store.update_state("app", op={"k": k})
    return numbered * 1000, (time.perf_counter() - t) * 1000


def main() -> None:
    with tempdir("cpbench-history-") as base:
        big, small = make_origin(base, "big", BIG), make_origin(base, "small", SMALL)
        log(f"origins of {BIG} and {SMALL} commits ready")
        adds: dict[str, list[float]] = {"big": [], "small": []}
        pages: dict[str, list[float]] = {"big": [], "small": [], "warm": []}
        numbered: list[float] = []
        state_writes: list[float] = []
        size = 0
        for k in range(RUNS):  # interleaved: both see the same noise
            big_store, took = add(base, big, k)
            adds["big"].append(took)
            small_store, took = add(base, small, k)
            adds["small"].append(took)
            assert len(big_store.commits("app")) == BIG and len(small_store.commits("app")) == SMALL
            pages["big"].append(first_page(big_store, cold=True))
            pages["small"].append(first_page(small_store, cold=True))
            pages["warm"].append(first_page(big_store, cold=False))
            new, state = writes(big_store, k)
            numbered.append(new)
            state_writes.append(state)
            size = big_store.settings.layout.commit_store("app").stat().st_size
        Figure(
            key="history_add",
            title=f"add a project whose branch has {BIG:,} commits (all numbered)",
            unit="s",
            samples=adds["big"],
            baselines={f"the same with {SMALL} commits": adds["small"]},
            target="≤ 3 s",
            kind="max",
            limit=3.0,
            note="A local origin: the first fetch into a new mirror, one `git log "
            "--first-parent` of the whole branch, the numbering and the commit file's "
            "atomic write (no build).",
        ).emit()
        Figure(
            key="history_page",
            title=f"first page of the rollback picker, {BIG:,} commits",
            unit="ms",
            samples=pages["big"],
            baselines={
                f"the same with {SMALL} commits": pages["small"],
                f"{BIG:,} commits, the rows cached (every later press)": pages["warm"],
            },
            target="≤ 100 ms",
            kind="max",
            limit=100.0,
            note="The store's reads the bot's handler makes (commits, releases, state) and the "
            "screen, by a Store that has not read the commit file yet (serve's first press "
            "after a restart or a new commit); the file is parsed once per change, then its "
            "rows are cached.",
        ).emit()
        Figure(
            key="history_write",
            title=f"a new commit numbered after {BIG:,} (the commit file rewritten)",
            unit="ms",
            samples=numbered,
            baselines={"a slot-state write of the same project": state_writes},
            target="≤ 100 ms",
            kind="max",
            limit=100.0,
            note=f"The commit file of {BIG:,} rows is {size / 2**20:.2f} MB "
            f"({size / BIG:.0f} bytes a commit), in its own file: the project's state file, "
            "written at every operation, does not hold the commits.",
        ).emit()


if __name__ == "__main__":
    main()
