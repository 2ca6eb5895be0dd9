"""One poll cycle over 200 projects (one `git ls-remote` each, as serve's poller does)
against the baseline: a sequential `git fetch` of each project's mirror."""

from __future__ import annotations

import subprocess
import time

from bench.common import RUNS, Figure, log, tempdir
from bench.populate import open_store, populate
from controlplane.adapters.supervisor.runner import SupervisorRunner
from controlplane.engine.releases import Engine
from controlplane.service.outbox import Outbox
from controlplane.service.poller import Poller
from tests.support.fixtures_repos import GIT_ENV, sh_git

PROJECTS = 200


def main() -> None:
    with tempdir("cpbench-poll-") as base:
        work = base / "work"
        sh_git("init", "-q", "--initial-branch=main", str(work))
        for i in range(3):
            (work / "main.py").write_text(f"print({i})\n")
            sh_git("add", "-A", cwd=work)
            sh_git("commit", "-q", "-m", f"c{i}", cwd=work)
        origins, mirrors = [], []
        for i in range(PROJECTS):
            origin = base / "origins" / f"o{i:03d}.git"
            sh_git("clone", "-q", "--bare", str(work), str(origin))
            mirror = base / "mirrors" / f"m{i:03d}.git"
            sh_git("clone", "-q", "--mirror", str(origin), str(mirror))
            origins.append(origin)
            mirrors.append(mirror)
        store = open_store(base / "data")
        populate(store, PROJECTS, 20, repo=lambda i: str(origins[i]), poll=60)
        outbox = Outbox(store)
        engine = Engine(store.settings, store, outbox, runner=SupervisorRunner(store.settings))
        poller = Poller(store, outbox, check=engine.head, on_new=lambda p, sha: None)
        log(f"{PROJECTS} origins, mirrors and projects ready")

        def cycle(k: int) -> float:
            t = time.perf_counter()
            results = poller.poll_once(time.time() + 10**6 * (k + 1))
            took = time.perf_counter() - t
            bad = [r for r in results if not r.ok]
            assert len(results) == PROJECTS and not bad, bad[:3]
            return took

        def fetch_all() -> float:
            t = time.perf_counter()
            for mirror in mirrors:
                subprocess.run(
                    ["git", "-C", str(mirror), "fetch", "-q", "origin"],
                    env=GIT_ENV,
                    check=True,
                    capture_output=True,
                )
            return time.perf_counter() - t

        ours, base_runs = [], []
        for k in range(RUNS):  # interleaved: both see the same noise
            ours.append(cycle(k))
            base_runs.append(fetch_all())
        poller.close()
        Figure(
            key="poll",
            title=f"one poll cycle over {PROJECTS} projects",
            unit="s",
            samples=ours,
            baselines={"sequential `git fetch` of each mirror": base_runs},
            ratio_of="sequential `git fetch` of each mirror",
            target="≤ 2 s wall",
            kind="max",
            limit=2.0,
            note=f"{poller.limit} checks at once (the poller's limit), each one `git ls-remote` "
            "of a local origin plus the state write; the baseline fetches the same "
            "repositories one after another.",
        ).emit()


if __name__ == "__main__":
    main()
