"""One poll cycle over 1,000 projects (one `git ls-remote` each, as serve's poller does)
against the baseline: a sequential `git fetch` of each project's mirror.

The 1,000 origins (and mirrors) are copies of one bare repository (and of one mirror
whose origin URL is rewritten), made by copying files: cloning 2,000 times would take
longer than what is measured, and ls-remote's cost does not depend on where a copy came
from."""

from __future__ import annotations

import shutil
import subprocess
import time

from bench.common import RUNS, Figure, log, tempdir
from bench.populate import open_store, populate
from controlplane.adapters.supervisor.runner import SupervisorRunner
from controlplane.engine.releases import Engine
from controlplane.service.outbox import Outbox
from controlplane.service.poller import Poller
from tests.support.fixtures_repos import GIT_ENV, sh_git

PROJECTS = 1000
BASE_RUNS = 3  # the baseline's fetches take tens of seconds a round


def main() -> None:
    with tempdir("cpbench-poll-") as base:
        work = base / "work"
        sh_git("init", "-q", "--initial-branch=main", str(work))
        for i in range(3):
            (work / "main.py").write_text(f"print({i})\n")
            sh_git("add", "-A", cwd=work)
            sh_git("commit", "-q", "-m", f"c{i}", cwd=work)
        first = base / "origins" / "o000.git"
        sh_git("clone", "-q", "--bare", str(work), str(first))
        model = base / "model.git"
        sh_git("clone", "-q", "--mirror", str(first), str(model))
        origins, mirrors = [], []
        for i in range(PROJECTS):
            origin = base / "origins" / f"o{i:03d}.git"
            if i:
                shutil.copytree(first, origin)
            mirror = base / "mirrors" / f"m{i:03d}.git"
            shutil.copytree(model, mirror)
            config = mirror / "config"
            config.write_text(config.read_text().replace(str(first), str(origin)))
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
            if k < BASE_RUNS:
                base_runs.append(fetch_all())
        poller.close()
        Figure(
            key="poll",
            title=f"one poll cycle over {PROJECTS} projects",
            unit="s",
            samples=ours,
            baselines={"sequential `git fetch` of each mirror": base_runs},
            ratio_of="sequential `git fetch` of each mirror",
            target="≤ 5 s wall",
            kind="max",
            limit=5.0,
            note=f"{poller.limit} checks at once (the poller's limit), each one `git ls-remote` "
            "of a local origin (git and git-upload-pack: two processes, about 5 ms on a quiet "
            "core) plus the project's state written durably (about 1 ms, under the store's "
            "one lock); the baseline fetches the same repositories one after another. With 2 "
            "cores the round is bound by starting 2,000 processes: more checks at once do not "
            "shorten it (8 and 16 measured the same at 300 projects). The runner used to wait "
            "for each command with Popen.wait's growing sleeps (a 5 ms command took 8–15 ms); "
            "it now wakes when the command's output ends.",
        ).emit()


if __name__ == "__main__":
    main()
