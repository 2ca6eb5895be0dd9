"""Deploys and rollbacks of the sample project (bench/samples/small) through the real
engine against a real supervisord, against the plain procedure in the same run; the
CLI's `status` and `rollback` from start to exit.

Times end at the app's first output ("running commit N", read from its log), so the
start of the app is in every figure. Requirements come from a local wheel folder built
at run time (no network); uv's and pip's caches are warm (one deploy and one plain
procedure run before anything is timed).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import time
from pathlib import Path

from bench.common import ROOT, RUNS, SAMPLES, Figure, log, plain_procedure, tempdir, wait_until
from controlplane.adapters.supervisor.client import slot_logs
from controlplane.engine.releases import Quiet
from controlplane.service.serve import build_stack
from tests.support.fixtures_repos import make_wheel, sh_git
from tests.support.fixtures_supervisor import start_box

PLAIN = "plain procedure (clone, venv, pip -U pip, pip install -r, start)"


class Sample:
    """A git origin of the sample project; each commit changes VERSION only."""

    def __init__(self, base: Path) -> None:
        self.bare = base / "origin.git"
        self.work = base / "work"
        sh_git("init", "-q", "--bare", "--initial-branch=main", str(self.bare))
        sh_git("clone", "-q", str(self.bare), str(self.work))
        sh_git("checkout", "-q", "-b", "main", cwd=self.work)
        for f in (SAMPLES / "small").iterdir():
            shutil.copy(f, self.work / f.name)
        self.version = 0

    def commit(self) -> str:
        self.version += 1
        (self.work / "VERSION").write_text(f"{self.version}\n")
        sh_git("add", "-A", cwd=self.work)
        sh_git("commit", "-q", "-m", f"version {self.version}", cwd=self.work)
        sh_git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=self.work)
        return str(self.version)


def first_output(path: Path, needle: str, since: int, timeout: float = 60) -> None:
    def seen() -> bool:
        try:
            with open(path, "rb") as fh:
                fh.seek(since)
                return needle.encode() in fh.read()
        except FileNotFoundError:
            return False

    wait_until(seen, timeout, f"{needle!r} in {path}", step=0.001)


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def cli(env: dict[str, str], *args: str) -> float:
    t = time.perf_counter()
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "controlplane"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.perf_counter() - t
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return took


def main() -> None:
    with tempdir("cpbench-deploy-") as base:
        wheels = base / "wheels"
        make_wheel(wheels, "benchlib", "1.0")
        uv_config = base / "uv.toml"
        uv_config.write_text(f'no-index = true\nfind-links = ["{wheels}"]\n')
        box = start_box(base, None)
        settings = dataclasses.replace(box.settings, allow_file_urls=True)
        stack = build_stack(settings, box.store)
        stack.control.start()
        store, engine = box.store, stack.engine
        env = {**box.env, "CONTROLPLANE_ALLOW_FILE_URLS": "1"}
        try:
            sample = Sample(base)
            sample.commit()
            variables = {
                "UV_CONFIG_FILE": str(uv_config),
                "PIP_FIND_LINKS": str(wheels),
                "PIP_NO_INDEX": "1",
            }

            def add(name: str) -> None:
                config = stack.service.config
                new = config.check_new(
                    name=name, repo=str(sample.bare), path=str(base / "live" / name)
                )
                stack.service.add(new).result()
                store.set_env(name, "prod", variables)
                store.update_project(name, health_window=0)

            def deploy(name: str, ref: str | None, version: str) -> float:
                out = slot_logs(settings, name, "prod")[0]
                since = size(out)
                t = time.perf_counter()
                engine.deploy(name, ref, Quiet())
                first_output(out, f"running commit {version} ", since)
                return time.perf_counter() - t

            # warm caches: one deploy, one plain procedure
            add("warm")
            deploy("warm", None, "1")
            plain_procedure(sample.bare, base / "plain", wheels, base / "pip-cache")
            log("caches warm")

            first, plain_first = [], []
            for i in range(RUNS):
                add(f"first{i}")
                first.append(deploy(f"first{i}", None, "1"))
                plain_first.append(
                    plain_procedure(sample.bare, base / "plain", wheels, base / "pip-cache")
                )
            Figure(
                key="deploy:first",
                title="first deploy of a small project (fetch, venv, install, start), warm caches",
                unit="s",
                samples=first,
                baselines={PLAIN: plain_first},
                ratio_of=PLAIN,
                target="≥ 10× faster",
                kind="ratio",
                limit=10.0,
            ).emit()

            again, plain_again = [], []
            for _ in range(RUNS):
                version = sample.commit()
                again.append(deploy("first0", None, version))
                plain_again.append(
                    plain_procedure(sample.bare, base / "plain", wheels, base / "pip-cache")
                )
            Figure(
                key="deploy:next",
                title="deploy of a new commit with unchanged requirements",
                unit="s",
                samples=again,
                baselines={PLAIN: plain_again},
                ratio_of=PLAIN,
                target="≥ 15× faster",
                kind="ratio",
                limit=15.0,
                note="The new release's venv is a hard-linked copy of the live release's "
                "(same dependency fingerprint: requirements.txt, installer, interpreter, index "
                "settings; engine/venvreuse.py): no `venv`, no pip upgrade, no install; every "
                "timed deploy here reused one (checked in the release markers). What is left, "
                "measured on a busy 2-core machine (per deploy, of 0.26-0.33 s): fetch and "
                "numbering 55-70 ms (git fetch, the store), the build's start 25 ms "
                "(git fetch_commit, the release record), pre-flight 10-30 ms (disk, the "
                "commit in the mirror; the interpreter check is remembered while the "
                "interpreter, user and folders are unchanged), export 6 ms, the link copy "
                "40-60 ms (about 515 files: pip's and benchlib's, bin/ scripts written anew), "
                "finish and record 15 ms, then the switch of prod and supervisord starting "
                "`run-slot` and the app to its first line, 100-140 ms. Before the copy: "
                "0.40 s (11.8×), of which `uv venv`, pip upgrade and a cached install.",
            ).emit()
            timed = [  # #1 was the project's first deploy; the others are timed here
                m
                for m in settings.layout.releases_dir("first0").glob("*.ready")
                if not m.name.startswith("1-")
            ]
            built = [m.name for m in timed if not json.loads(m.read_text()).get("reused_from")]
            assert not built, f"a timed deploy built its venv: {built}"

            name = "first0"  # the rollback figures: bench/bench_rollback.py
            status = [cli(env, "status", name) * 1000 for _ in range(max(RUNS, 7))]
            Figure(
                key="cli:status",
                title="a CLI command (`controlplane status NAME`), start to exit",
                unit="ms",
                samples=status,
                target="≤ 250 ms",
                kind="max",
                limit=250.0,
            ).emit()
        finally:
            stack.executor.shutdown(wait=15)
            stack.control.stop()
            stack.poller.close()
            box.shutdown()


if __name__ == "__main__":
    main()
