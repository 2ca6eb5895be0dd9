"""controlplane.build: real venv builds (uv and plain pip) from a local wheel folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from controlplane.adapters import git
from controlplane.engine import build
from controlplane.layout import ready_marker, release_in
from tests.support.fixtures_repos import Origin

SECRET = "hunter2hunter2"
INSTALLERS = ["uv", "pip"]
# The first step that talks to the (silent) package index: pip's own upgrade, either way.
FIRST_NETWORK_STEP = {"uv": "pip upgrade", "pip": "pip upgrade"}
STEP_COMMAND = {"uv": "--upgrade pip", "pip": "-m pip install --upgrade pip"}


def offline_env(folder: Path, links: str | Path, **extra: str) -> dict[str, str]:
    """The project variables a user would set for a private wheel folder; never PyPI.

    uv has no environment variable for --no-index, so it gets a config file (UV_CONFIG_FILE).
    """
    config = folder / "uv.toml"
    config.write_text(f'no-index = true\nfind-links = ["{links}"]\n')
    env = {
        "UV_CONFIG_FILE": str(config),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(links),
        "API_TOKEN": SECRET,
    }
    return {**env, **extra}


class Project:
    """An origin with a mirror, ready for build_release calls."""

    def __init__(self, o: Origin, tmp_path: Path) -> None:
        self.origin = o
        self.tmp = tmp_path
        self.mirror = git.ensure_mirror(o.url, tmp_path / "mirror.git")
        self.releases = tmp_path / "releases"

    def commit(self, files: dict[str, str]) -> str:
        sha = self.origin.commit("release", files)
        self.origin.push()
        git.fetch(self.mirror, self.origin.url, "main")
        return sha

    def build(self, sha: str, env: dict[str, str], **kwargs: object) -> build.BuildResult:
        """Build as #1: never from the internet (a local, empty index unless `env` names
        one) and with no network settings of this machine unless `base_env` says so."""
        (self.tmp / "offline").mkdir(exist_ok=True)
        (self.tmp / "no-wheels").mkdir(exist_ok=True)
        env = {**offline_env(self.tmp / "offline", self.tmp / "no-wheels"), **env}
        kwargs.setdefault("base_env", {"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        return build.build_release(
            dest=release_in(self.releases, 1, sha),
            mirror=self.mirror,
            sha=sha,
            python="/usr/bin/python3",
            env=env,
            log_path=self.tmp / "logs" / "app-1.log",
            cache_dir=self.tmp / "cache",
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.fixture
def project(origin: Callable[..., Origin], tmp_path: Path) -> Project:
    return Project(origin(), tmp_path)


def test_tail_keeps_last_lines_and_counts_the_rest() -> None:
    assert build.tail("a\nb\n", 30) == (["a", "b"], 0)
    text = "\n".join(f"line {i}" for i in range(1, 101)) + "\n\n"
    lines, omitted = build.tail(text, 30)
    assert lines[0] == "line 71" and lines[-1] == "line 100" and omitted == 70
    assert build.tail("10%\r50%\r100%\ndone", 30) == (["100%", "done"], 0)
    assert build.tail("", 30) == ([], 0)


@pytest.mark.parametrize("installer", INSTALLERS)
def test_build_installs_requirements_into_a_ready_release(
    project: Project, wheelhouse: Callable[..., Path], installer: build.Installer
) -> None:
    wheels = wheelhouse("tinylib", "1.0")
    sha = project.commit({"main.py": "import tinylib\n", "requirements.txt": "tinylib==1.0\n"})
    result = project.build(sha, offline_env(project.tmp, wheels), installer=installer)
    assert result.state == "ready", result.steps
    assert result.installer == installer
    names = [s.name for s in result.steps]
    assert names == ["pre-flight", "export", "python", "venv", "pip upgrade", "install"]
    upgrade = result.steps[4]
    # the index has no pip: the interpreter's own is seeded, and its version is named
    assert upgrade.ok and str(upgrade.what).startswith("pip ")
    assert str(upgrade.summary).startswith("pip upgrade (pip ")
    assert (result.dest / ".venv" / "bin" / "pip").is_file()
    assert str(result.steps[5].summary).startswith("install (requirements.txt): ok")
    assert build.is_ready(result.dest) and not (result.dest / ".git").exists()
    check = subprocess.run(
        [str(result.python), "-c", "import tinylib; print(tinylib.VERSION)"],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    )
    assert check.stdout.strip() == "1.0"
    assert "tinylib" in "\n".join(result.steps[5].tail_lines)
    assert (result.dest / "main.py").stat().st_mode & 0o044 == 0o044
    assert SECRET not in result.log_path.read_text()


def test_no_requirements_is_a_noted_skip(project: Project, tmp_path: Path) -> None:
    sha = project.commit({"main.py": "print(1)\n"})
    result = project.build(sha, {})
    assert result.state == "ready"
    assert result.steps[-1].note == (
        "no dependency file in this commit (requirements.txt, pyproject.toml, uv.lock): "
        "nothing installed"
    )
    assert "nothing installed" in result.log_path.read_text()


@pytest.mark.parametrize("installer", INSTALLERS)
def test_bad_requirement_fails_with_the_installer_error_and_leaves_nothing(
    project: Project, wheelhouse: Callable[..., Path], installer: build.Installer
) -> None:
    wheels = wheelhouse("tinylib", "1.0")
    sha = project.commit({"requirements.txt": f"tinylib==1.0\n{SECRET}==9.9\n"})
    result = project.build(sha, offline_env(project.tmp, wheels), installer=installer)
    assert result.state == "failed"
    step = result.steps[-1]
    assert step.name == "install" and not step.ok
    assert step.error is not None and "exited with status" in step.error
    shown = "\n".join(step.tail_lines)
    assert "***" in shown and "9.9" in shown
    assert SECRET not in shown and SECRET not in result.log_path.read_text()
    assert not result.dest.exists() and not build.is_ready(result.dest)
    assert result.error is not None and result.error.startswith("install:")


@pytest.fixture
def silent_index() -> Iterator[str]:
    """A find-links URL whose server accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/simple/"


def hanging_env(folder: Path, url: str) -> dict[str, str]:
    return offline_env(folder, url, UV_HTTP_TIMEOUT="300", PIP_TIMEOUT="300")


def processes_in(folder: Path) -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        line = " ".join(proc.info["cmdline"] or [])
        if str(folder) in line or str(folder) in (proc.info["cwd"] or ""):
            found.append(line)
    return found


@pytest.mark.parametrize("installer", INSTALLERS)
def test_hanging_install_is_stopped_by_its_timeout(
    project: Project, silent_index: str, installer: build.Installer
) -> None:
    sha = project.commit({"requirements.txt": "tinylib==1.0\n"})
    timeouts = build.BuildTimeouts(pip=2.0, install=2.0)
    started = time.monotonic()
    result = project.build(
        sha, hanging_env(project.tmp, silent_index), installer=installer, timeouts=timeouts
    )
    assert time.monotonic() - started < 60
    assert result.state == "failed" and not result.cancelled
    assert result.steps[-1].name == FIRST_NETWORK_STEP[installer]
    assert result.steps[-1].error == "timed out after 2 s; the step was stopped"
    assert not processes_in(result.dest) and not result.dest.exists()


@pytest.mark.parametrize("installer", INSTALLERS)
def test_cancel_kills_the_running_step(
    project: Project, silent_index: str, installer: build.Installer
) -> None:
    sha = project.commit({"requirements.txt": "tinylib==1.0\n"})
    cancel = threading.Event()
    seen: list[list[str]] = []

    def watch_then_cancel() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not seen:
            procs = [
                p
                for p in processes_in(release_in(project.releases, 1, sha))
                if STEP_COMMAND[installer] in p
            ]
            if procs:
                seen.append(procs)
            time.sleep(0.1)
        cancel.set()

    watcher = threading.Thread(target=watch_then_cancel)
    watcher.start()
    result = project.build(
        sha, hanging_env(project.tmp, silent_index), installer=installer, cancel=cancel
    )
    watcher.join()
    assert seen, "the install step never started"
    assert result.state == "failed" and result.cancelled
    assert result.steps[-1].name == FIRST_NETWORK_STEP[installer]
    assert result.steps[-1].error == "cancelled"
    assert not processes_in(result.dest) and not result.dest.exists()


def test_preflight_refuses_a_missing_interpreter_and_a_missing_commit(
    project: Project, tmp_path: Path
) -> None:
    sha = project.commit({"main.py": ""})
    result = build.build_release(
        dest=release_in(project.releases, 1, sha),
        mirror=project.mirror,
        sha=sha,
        python=str(tmp_path / "no-python"),
        env={},
        log_path=tmp_path / "b.log",
        cache_dir=tmp_path / "cache",
    )
    assert result.state == "failed" and len(result.steps) == 1
    assert "CONTROLPLANE_PYTHON" in (result.steps[0].error or "")
    missing = project.build("2" * 40, {})
    assert "not in the mirror" in (missing.steps[0].error or "")
    result = project.build(sha, {}, min_free_mb=10**9)
    assert "MB free" in (result.steps[0].error or "")


def test_a_ready_release_is_never_rebuilt_and_leftovers_are_cleaned(
    project: Project, tmp_path: Path
) -> None:
    sha = project.commit({"main.py": ""})
    result = project.build(sha, {})
    assert result.state == "ready"
    with pytest.raises(build.BuildError, match="built already"):
        project.build(sha, {})
    half = project.releases / "2-abcdef0"
    (half / ".venv").mkdir(parents=True)
    orphan = project.releases / "3-0000000.ready"
    orphan.write_text("{}")
    removed = build.clean_leftovers(project.releases)
    assert removed == [half, orphan]
    assert build.is_ready(result.dest)
    build.remove_release(result.dest)
    assert not result.dest.exists() and not ready_marker(result.dest).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="running as another user needs root")
def test_run_as_user_can_use_the_release_and_unreachable_folders_are_refused(
    project: Project, wheelhouse: Callable[..., Path], tmp_path: Path
) -> None:
    wheels = wheelhouse("tinylib", "1.0")
    sha = project.commit({"requirements.txt": "tinylib==1.0\n"})
    env = offline_env(project.tmp, wheels)
    hidden = project.build(sha, env, run_as="nobody")  # pytest's tmp folders are 0700
    assert hidden.state == "failed" and "not reachable" in (hidden.steps[0].error or "")
    public = Path(tempfile.mkdtemp(prefix="cp-build-"))
    try:
        public.chmod(0o755)
        # the builder (the run-as user) reads the project's wheel folder and config
        shutil.copytree(wheels, public / "wheels")
        env = offline_env(public, public / "wheels")
        for path in public.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        result = build.build_release(
            dest=release_in(public / "releases", 1, sha),
            mirror=project.mirror,
            sha=sha,
            python="/usr/bin/python3",
            env=env,
            log_path=tmp_path / "b.log",
            cache_dir=public / "cache",
            run_as="nobody",
        )
        assert result.state == "ready", result.error
        # built by nobody, handed back: the app (nobody) cannot change its release
        details = result.steps[0].details
        assert "builds run as: nobody" in [str(d) for d in details]
        assert "сборку выполняет: nobody" in [d.render("ru") for d in details]
        assert all(p.lstat().st_uid == 0 for p in result.dest.rglob("*"))
        check = subprocess.run(
            [str(result.python), "-c", "import tinylib; print(tinylib.VERSION)"],
            capture_output=True,
            text=True,
            cwd="/",
            user="nobody",
            check=False,
        )
        assert check.stdout.strip() == "1.0", check.stderr
    finally:
        shutil.rmtree(public)
