"""First builds with real dependencies (bench/samples/fastapi, bench/samples/pandas), and
what compiling their bytecode at build time costs and saves.

The wheels are fetched once from the package registry (`pip download` for the projects'
interpreter and this platform) into a folder kept between runs
(~/.cache/controlplane-bench/wheels, or $BENCH_WHEELS); every build measured uses only that
folder (uv: a config file with `no-index` and `find-links`, pip: PIP_NO_INDEX and
PIP_FIND_LINKS, set as the project's variables, as a user would). With no folder and no
registry the figures say "not measured" and why.

Ours is the product's real path (engine.deploy against a real supervisord, apps and builds
as the run-as user, as in production) until the app's first output; the baseline is the
plain procedure (clone, venv, pip -U pip, pip install -r, start), in the same run.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from bench.bench_deploy import first_output, size
from bench.common import RUNS, SAMPLES, Figure, kill_group, log, median, tempdir
from bench.common import plain_procedure as common_plain
from controlplane.adapters import git
from controlplane.adapters.supervisor.client import slot_logs
from controlplane.engine import build
from controlplane.engine.releases import Quiet
from controlplane.layout import release_in
from controlplane.service.serve import Stack, build_stack
from tests.support.fixtures_repos import sh_git
from tests.support.fixtures_supervisor import APP_PYTHON, Box, ensure_run_as_user, start_box

PLAIN = "plain procedure (clone, venv, pip -U pip, pip install -r, start)"
WHEELS = Path(os.environ.get("BENCH_WHEELS", Path.home() / ".cache/controlplane-bench/wheels"))
KINDS = {
    "fastapi": "a FastAPI service (fastapi, uvicorn, pydantic, httpx) answering on a port",
    "pandas": "a numpy + pandas job",
}
NOT_COMPILED = "not compiled: the run-as user cannot write the cache, so every start compiles"
FIRST_IMPORT = "not compiled, a writable cache (PYTHONPYCACHEPREFIX): first start compiles"


def requirements(sample: str) -> list[str]:
    return (SAMPLES / sample / "requirements.txt").read_text().split()


def fetch_wheels() -> str | None:
    """The wheels of every sample (and pip) in WHEELS; the reason when they cannot be had."""
    wanted = sorted({"pip", *(r for s in KINDS for r in requirements(s))})
    done = WHEELS / ".fetched"
    if done.is_file() and done.read_text().split() == wanted:
        return None
    argv = [APP_PYTHON, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", str(WHEELS)]
    try:
        WHEELS.mkdir(parents=True, exist_ok=True)
        got = subprocess.run(
            [*argv, *wanted], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no wheels in {WHEELS} and `pip download` failed: {exc}"
    if got.returncode != 0:
        last = (got.stderr.strip().splitlines() or ["?"])[-1]
        return f"no wheels in {WHEELS} and the package registry did not give them: {last}"
    done.write_text("\n".join(wanted) + "\n")
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int) -> None:
    """The FastAPI sample answers on its port (checked after each timed start)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
        assert b'"commit"' in reply.read()


class Origin:
    """A bare git origin holding one commit of a sample project."""

    def __init__(self, base: Path, sample: str) -> None:
        self.bare = base / f"{sample}.git"
        work = base / f"{sample}-work"
        sh_git("init", "-q", "--bare", "--initial-branch=main", str(self.bare))
        sh_git("clone", "-q", str(self.bare), str(work))
        sh_git("checkout", "-q", "-b", "main", cwd=work)
        for f in (SAMPLES / sample).iterdir():
            shutil.copy(f, work / f.name)
        (work / "VERSION").write_text("1\n")
        sh_git("add", "-A", cwd=work)
        sh_git("commit", "-q", "-m", "version 1", cwd=work)
        sh_git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=work)


def plain_procedure(origin: Path, where: Path, wheels: Path, cache: Path, port: int) -> float:
    """What a person does by hand, from the same wheel folder; seconds to first output."""
    return common_plain(origin, where, wheels, cache, python=APP_PYTHON, env={"PORT": str(port)})


@dataclasses.dataclass
class Bench:
    """The box, the stack and the shared settings of one run."""

    base: Path
    wheels: Path
    uv_config: Path
    user: str | None
    box: Box
    stack: Stack

    def variables(self, port: int) -> dict[str, str]:
        return {
            "UV_CONFIG_FILE": str(self.uv_config),
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(self.wheels),
            "PORT": str(port),
        }


def first_builds(b: Bench, sample: str, origin: Origin) -> Figure:
    """Our first build of the sample (a new project each time) against the plain procedure."""
    stack, box = b.stack, b.box
    settings, store, engine = box.settings, box.store, stack.engine
    steps: dict[str, list[float]] = {}

    def deploy(name: str) -> float:
        port = free_port()
        new = stack.service.config.check_new(
            name=name, repo=str(origin.bare), path=str(b.base / "live" / name)
        )
        stack.service.add(new).result()
        store.set_env(name, "prod", b.variables(port))
        store.update_project(name, health_window=0)
        out = slot_logs(settings, name, "prod")[0]
        since = size(out)
        t = time.perf_counter()
        engine.deploy(name, None, Quiet())
        first_output(out, "running commit 1", since, timeout=300)
        took = time.perf_counter() - t
        if sample == "fastapi":
            answers(port)
        for step in store.releases(name)[-1].steps:
            steps.setdefault(step["name"], []).append(step["seconds"])
        box.client.call("stopProcess", f"{name}-prod", True)
        return took

    plain_dir, pip_cache = b.base / f"{sample}-plain", b.base / "pip-cache"
    deploy(f"{sample}-warm")  # warm caches: uv's (ours), pip's (plain)
    plain_procedure(origin.bare, plain_dir, b.wheels, pip_cache, free_port())
    steps.clear()
    log(f"{sample}: caches warm")
    ours, plain = [], []
    for i in range(RUNS):
        ours.append(deploy(f"{sample}{i}"))
        plain.append(plain_procedure(origin.bare, plain_dir, b.wheels, pip_cache, free_port()))
        log(f"{sample}: ours {ours[-1]:.2f} s, plain {plain[-1]:.2f} s")
    shown = ", ".join(f"{k} {median(v):.2f} s" for k, v in steps.items())
    return Figure(
        key=f"realdeps:{sample}",
        title=f"first build of {KINDS[sample]}, to its first output, warm caches",
        unit="s",
        samples=ours,
        baselines={PLAIN: plain},
        ratio_of=PLAIN,
        target="≥ 10× faster",
        kind="ratio",
        limit=10.0,
        note=f"A new project each time (fetch, export, venv, pip, install, start under "
        f"supervisord, builds and app as the run-as user {b.user or '(none: not root)'}), "
        f"from a local wheel folder. Warm caches as a user's second project has them: uv's "
        f"cache under the data dir (ours), pip's cache (plain). Our steps (medians): "
        f"{shown}; the start is the rest. The install step takes the dependencies' .pyc "
        f"files from uv's cache (compiled by the warm-up build: see the start figure). "
        f"Before this round the pip step compiled pip (~450 modules, 1-3 s here) and uv "
        f"compiled every module at every build, test suites included (2,411 for numpy + "
        f"pandas, 1,395 of them tests). What is left: uv copies every file from its cache "
        f"(hard links would hand root's release files to the cache's owner, the run-as user, "
        f"and ext4 has no reflinks), the pip step (a uv run of its own: one `uv pip install "
        f"pip -r requirements.txt` would save one resolution), the fetch into a new mirror, "
        f"the app's own start with its imports (the start figure), and the machine's load "
        f"(the plain procedure took "
        f"{min(plain):.1f}-{max(plain):.1f} s in this run, so 10x meant <= "
        f"{median(plain) / 10:.2f} s).",
    )


def release_builds(
    b: Bench, sample: str, origin: Origin
) -> tuple[dict[str, list[float]], dict[str, Path]]:
    """Builds of the same commit (build_release, run-as user): compiled with the .pyc
    files uv's cache keeps, compiled as the wheels' first build, and not compiled."""
    mirror = git.ensure_mirror(str(origin.bare), b.base / f"{sample}-mirror.git")
    sha = git.fetch(mirror, str(origin.bare), "main")
    seconds: dict[str, list[float]] = {"first": [], "compiled": [], "not compiled": []}
    dests: dict[str, Path] = {}
    uv_cache = b.box.settings.layout.cache_dir / "uv"
    n = 0
    for _ in range(RUNS):
        for label in seconds:
            extra = {"UV_COMPILE_BYTECODE": "0"} if label == "not compiled" else {}
            if label != "compiled":  # no .pyc kept in uv's cache: none come with the install
                for kept in list(uv_cache.glob("archive-v*/*/**/__pycache__")):
                    shutil.rmtree(kept)
            n += 1
            result = build.build_release(
                # a folder each: no build takes the venv of another (venvreuse.py)
                dest=release_in(b.base / f"{sample}-releases-{n}", n, sha),
                mirror=mirror,
                sha=sha,
                python=APP_PYTHON,
                env={**b.variables(0), **extra},
                log_path=b.base / f"{sample}-build.log",
                cache_dir=b.box.settings.layout.cache_dir,
                run_as=b.user,
            )
            assert result.state == "ready", result.error
            seconds[label].append(result.seconds)
            dests[label] = result.dest
    return seconds, dests


def start(b: Bench, release: Path, cache: Path | None) -> float:
    """The app started as the run-as user from `release`; seconds to its first output."""
    assert b.user is not None
    env = {"PATH": "/usr/bin:/bin", "PORT": str(free_port())}
    if cache is not None:
        env["PYTHONPYCACHEPREFIX"] = str(cache)
    t = time.perf_counter()
    app = subprocess.Popen(
        [str(release / ".venv/bin/python"), "main.py"],
        cwd=release,
        env=env,
        stdout=subprocess.PIPE,
        start_new_session=True,
        user=b.user,
        group=pwd.getpwnam(b.user).pw_gid,
        extra_groups=[],
    )
    assert app.stdout is not None
    app.stdout.readline()
    took = time.perf_counter() - t
    kill_group(app)
    return took


def writable_by(user: str, path: Path) -> bool:
    return subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(path)]).returncode == 0


def starts(b: Bench, sample: str, origin: Origin) -> Figure:
    """The app's start from a compiled release, from a not-compiled one (the run-as user
    cannot write its cache), and from a not-compiled one with a writable cache (first start)."""
    seconds, dests = release_builds(b, sample, origin)
    assert b.user is not None
    [site] = (dests["compiled"] / ".venv").glob("lib/python*/site-packages")
    modules = sum(1 for _ in site.rglob("*.pyc"))
    [bare] = (dests["not compiled"] / ".venv").glob("lib/python*/site-packages")
    assert not any(bare.rglob("*.pyc")), "the not-compiled release has bytecode"
    writable = writable_by(b.user, site)
    runs: dict[str, list[float]] = {"compiled": [], NOT_COMPILED: [], FIRST_IMPORT: []}
    for i in range(RUNS):
        runs["compiled"].append(start(b, dests["compiled"], None))
        runs[NOT_COMPILED].append(start(b, dests["not compiled"], None))
        cache = b.base / f"pycache-{sample}-{i}"
        cache.mkdir()
        shutil.chown(cache, b.user)
        runs[FIRST_IMPORT].append(start(b, dests["not compiled"], cache))
    first_cost = median(seconds["first"]) - median(seconds["not compiled"])
    saved = median(runs[NOT_COMPILED]) - median(runs["compiled"])
    return Figure(
        key=f"realdeps:start:{sample}",
        title=f"start of {KINDS[sample]} as the run-as user, bytecode compiled at build time",
        unit="s",
        samples=runs["compiled"],
        baselines={NOT_COMPILED: runs[NOT_COMPILED], FIRST_IMPORT: runs[FIRST_IMPORT]},
        ratio_of=NOT_COMPILED,
        target="≤ a not-compiled release's start",
        kind="relmax",
        limit=1.0,
        note=f"Process start to first output, as the run-as user. A release belongs to root "
        f"and its site-packages is {'WRITABLE' if writable else 'not writable'} by the run-as "
        f"user, so a release built without bytecode compiles every module it imports at every "
        f"start (a restart, a crash loop, a rollback): +{saved:.2f} s here. So the build "
        f"compiles ({modules} .pyc files: the dependencies without pip and test suites), once "
        f"per wheel: the .pyc files are kept in uv's cache and come with the next install. "
        f"Build medians, same run: {median(seconds['compiled']):.2f} s with the .pyc from the "
        f"cache, {median(seconds['first']):.2f} s for the wheels' first build "
        f"({first_cost:+.2f} s of compiling), {median(seconds['not compiled']):.2f} s not "
        f"compiled. A writable cache (PYTHONPYCACHEPREFIX) would compile only what the app "
        f"imports on its first start (the third baseline), but it is a folder the app's user "
        f"can write, and every new release or slot would pay it again.",
    )


def not_measured(reason: str) -> None:
    for sample in KINDS:
        Figure(
            key=f"realdeps:{sample}",
            title=f"first build of {KINDS[sample]}, to its first output, warm caches",
            unit="s",
            samples=[],
            target="≥ 10× faster",
            kind="ratio",
            limit=10.0,
            not_measured={PLAIN: reason},
            note=reason,
        ).emit()


def main() -> None:
    reason = fetch_wheels()
    if reason is not None:
        log(reason)
        not_measured(reason)
        return
    user = ensure_run_as_user()
    with tempdir("cpbench-realdeps-") as base:
        wheels = base / "wheels"  # readable by the run-as user (the cache is in root's home)
        shutil.copytree(WHEELS, wheels, ignore=shutil.ignore_patterns(".*"))
        uv_config = base / "uv.toml"
        uv_config.write_text(f'no-index = true\nfind-links = ["{wheels}"]\n')
        box = start_box(base, user)
        settings = dataclasses.replace(box.settings, allow_file_urls=True)
        stack = build_stack(settings, box.store)
        stack.control.start()
        b = Bench(base, wheels, uv_config, user, box, stack)
        try:
            for sample in KINDS:
                origin = Origin(base, sample)
                first_builds(b, sample, origin).emit()
                if user is not None:
                    starts(b, sample, origin).emit()
        finally:
            stack.executor.shutdown(wait=15)
            stack.control.stop()
            stack.poller.close()
            box.shutdown()


if __name__ == "__main__":
    main()
