"""The steps of a build: pre-flight, export, venv, pip upgrade, install (python: pythons.py).

Each step takes the build's context (`Build`) and returns what it did: the tools' output
(shown as printed), its own lines about what it found (Texts, in the reader's language),
or both with a word naming what it used (`Outcome.what`: the Python version, pip's
version, the project's shape). A step with nothing to do raises `Skipped`; one that finds
a problem that is not a failed command raises `BuildError`.

Two installers: uv (`uv venv`, `uv pip install` or `uv sync`) and pip, the classic steps
(`python -m venv`, `pip install -U pip`, `pip install -r requirements.txt`). Either way
the venv gets the latest pip the configured index has (an index without pip: the
interpreter's own wheel, or `ensurepip`). `finish` hands a built release over and marks it
ready.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, cast

from controlplane.adapters import git, runner
from controlplane.adapters.files import chown_tree, write_atomic
from controlplane.engine import bytecode, preflightcache, shapes
from controlplane.errors import CommandFailed, ControlPlaneError
from controlplane.i18n import Size, Text, ntr, tr, verbatim
from controlplane.layout import ready_marker, venv_python

# Checks, as the run-as user, that the interpreter runs and the releases folder is reachable.
PREFLIGHT_CHECK = (
    "import os, sys, venv\n"
    "if len(sys.argv) > 2: import ensurepip\n"
    "ok = os.access(sys.argv[1], os.R_OK | os.X_OK)\n"
    "print('python', sys.version.split()[0], '- releases folder', 'reachable' if ok else "
    "'NOT reachable', 'by this user')\n"
    "sys.exit(0 if ok else 3)\n"
)


# pip is a tool for a person in the release, never imported by the app: its ~450 files
# are not compiled to bytecode (1-3 s of a build); the app's dependencies are (releases.md)
NO_BYTECODE = {"UV_COMPILE_BYTECODE": "0"}


class BuildError(ControlPlaneError):
    """A build step found a problem that is not a failed command (disk, interpreter…);
    `output` is what a command it ran printed, if any."""

    def __init__(self, message: Text | str, *, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class Skipped(Exception):
    """Raised by a step that has nothing to do; `text` says why."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self.text = text


@dataclass(frozen=True)
class BuildTimeouts:
    """Seconds each step may take before its whole process group is killed."""

    preflight: float = 60.0
    export: float = 300.0
    python: float = 300.0
    venv: float = 300.0
    pip: float = 300.0
    install: float = 1800.0


@dataclass
class Outcome:
    """What a step did: `what` it used, its own lines, the tools' output."""

    output: str = ""
    details: list[Text] = field(default_factory=list)
    what: Text | None = None


@dataclass
class Build:
    """What every step needs; built once by build_release. The python step replaces
    `python` with the interpreter the commit asks for."""

    dest: Path
    mirror: Path
    sha: str
    python: str
    env: dict[str, str]
    redact: runner.Redact
    log: IO[str]
    cancel: threading.Event | None
    timeouts: BuildTimeouts
    uv: str | None
    run_as: str | None
    min_free_mb: int
    git_access: git.Access
    cache_dir: Path
    # the control plane's network settings the build inherited, as 'NAME=value'
    inherited: list[str] = field(default_factory=list)
    # who runs the venv and install steps: the run-as user when we are root, so that a
    # package's build scripts never run with root's rights (the store, the key)
    builder: str | None = None
    python_version: str = "?"
    # each line a command prints (redacted), as it prints it: the live card's output
    on_line: Callable[[str], None] | None = None
    # the commit's dependency fingerprint (venvreuse.py; None: its venv is always built)
    # and the release whose venv it reused ('12'), if it did
    deps: str | None = None
    reused_from: str | None = None

    @property
    def out(self) -> IO[str]:
        """Where a command's output goes: the build log and, when watched, `on_line`."""
        if self.on_line is None:
            return self.log
        return cast(IO[str], LineTee(self.log, self.on_line))

    def run(
        self,
        argv: list[str],
        timeout: float,
        cwd: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> str:
        self.log.write(f"$ {' '.join(self.redact(a) for a in argv)}\n")  # the log's only
        self.log.flush()
        result = runner.run(
            argv,
            cwd=cwd,
            env={**self.env, **(extra_env or {})},
            timeout=timeout,
            redact=self.redact,
            log=self.out,
            cancel=self.cancel,
            user=self.builder,
        )
        return result.output


class LineTee:
    """A log that also hands each whole line written to it to `on_line` (a command's
    output streamed to the live card while the command runs)."""

    def __init__(self, log: IO[str], on_line: Callable[[str], None]) -> None:
        self.log, self.on_line, self.partial = log, on_line, ""

    def write(self, text: str) -> int:
        self.log.write(text)
        *lines, self.partial = (self.partial + text).split("\n")
        for line in lines:
            self.on_line(line)
        return len(text)

    def flush(self) -> None:
        self.log.flush()


def _check_disk_and_python(b: Build) -> int:
    free_mb = shutil.disk_usage(b.dest.parent).free // 2**20
    if free_mb < b.min_free_mb:
        raise BuildError(
            tr(
                "only {free} MB free under {folder}; a build needs at least {need} MB: "
                "prune releases or logs",
                free=free_mb,
                folder=str(b.dest.parent),
                need=b.min_free_mb,
            )
        )
    if not os.access(b.python, os.X_OK):
        raise BuildError(
            tr(
                "the projects' interpreter {python} does not exist or is not executable; "
                "set CONTROLPLANE_PYTHON to one (such as /usr/bin/python3)",
                python=b.python,
            )
        )
    if not git.has_commit(b.mirror, b.sha, access=b.git_access):
        raise BuildError(tr("commit {sha} is not in the mirror; fetch it first", sha=b.sha[:7]))
    return free_mb


def preflight(b: Build) -> list[Text]:
    free_mb = _check_disk_and_python(b)
    checked = preflightcache.key(b.python, b.run_as, b.dest.parent, pip=not b.uv)
    out = preflightcache.recall(checked)
    if out is None:
        out = _preflight_check(b)
        preflightcache.remember(checked, out)
    else:
        b.log.write("pre-flight check passed by the same interpreter, user and folders lately\n")
    b.python_version = [*out.split(), "?", "?"][1]
    user: Text | str = b.run_as or tr("this user")
    details = [
        tr(
            "python {version}; the releases folder is reachable by {user}",
            version=b.python_version,
            user=user,
        ),
        tr("free disk: {size}", size=Size(free_mb * 2**20)),
        *_installer_lines(b),
    ]
    if b.inherited:
        details.append(
            tr(
                "network settings from the control plane: {settings}",
                settings=", ".join(b.inherited),
            )
        )
    return details


def _preflight_check(b: Build) -> str:
    """Run the check as the run-as user; its output ('python 3.11.2 - releases folder
    reachable by this user')."""
    argv = [b.python, "-c", PREFLIGHT_CHECK, str(b.dest.parent)] + ([] if b.uv else ["pip"])
    b.log.write(f"$ {b.python} -c <pre-flight check> {b.dest.parent}\n")
    try:
        return runner.run(
            argv,
            env=b.env,
            timeout=b.timeouts.preflight,
            redact=b.redact,
            log=b.log,  # a script of ours: what it found is in the step's own lines
            cancel=b.cancel,
            user=b.run_as,
        ).output
    except runner.Cancelled:
        raise
    except CommandFailed as exc:
        who: Text | str = b.run_as or tr("this user")
        raise BuildError(
            tr(
                "{python} cannot make venvs as {user} (python3-venv missing?) or "
                "{folder} is not reachable",
                python=b.python,
                user=who,
                folder=str(b.dest.parent),
            ),
            output=exc.output[-500:],
        ) from None


def _installer_lines(b: Build) -> list[Text]:
    fallback = _check_uv(b)
    lines: list[Text] = []
    if b.uv:
        lines.append(tr("installer: uv ({path})", path=b.uv))
    elif fallback:
        lines.append(tr("installer: venv + pip (uv is not reachable by {user})", user=b.builder))
    else:
        lines.append(tr("installer: venv + pip"))
    if b.builder:
        lines.append(tr("builds run as: {user}", user=b.builder))
    return lines


def _check_uv(b: Build) -> bool:
    """uv must be runnable by the builder; else the build uses venv + pip (which the
    projects' Python brings): True when it fell back so."""
    if not (b.uv and b.builder):
        return False
    try:
        runner.run([b.uv, "--version"], env=b.env, timeout=30, user=b.builder)
    except (CommandFailed, OSError):
        b.uv = None
        return True
    return False


def export(b: Build) -> list[Text]:
    git.export(
        b.mirror,
        b.sha,
        b.dest,
        timeout=b.timeouts.export,
        log=b.out,
        cancel=b.cancel,
        access=b.git_access,
        owner=b.builder,
    )
    count = sum(len(files) for _, _, files in os.walk(b.dest))
    return [ntr("exported {sha}: {n} file", "exported {sha}: {n} files", count, sha=b.sha[:7])]


def venv(b: Build) -> str:
    target = str(b.dest / ".venv")
    if b.uv:
        argv = [b.uv, "venv", "--no-project", "--python", b.python, target]
        return b.run(argv, b.timeouts.venv, cwd=b.dest)
    return b.run([b.python, "-m", "venv", target], b.timeouts.venv, cwd=b.dest)


def pip_upgrade(b: Build) -> Outcome:
    """The latest pip from the configured index into the venv (the interpreter's own pip
    when the index has none), and its version."""
    py = str(venv_python(b.dest))
    details: list[Text] = []
    if b.uv:
        try:
            out = b.run(
                [b.uv, "pip", "install", "--python", py, "--upgrade", "pip"],
                b.timeouts.pip,
                cwd=b.dest,
                extra_env=NO_BYTECODE,
            )
        except runner.Cancelled:
            raise
        except CommandFailed as exc:
            if exc.timed_out:
                raise
            # as pip itself does when its index has no newer pip or cannot be reached: the
            # venv keeps a pip, and the install step meets any real network problem
            details.append(
                tr(
                    "no pip from the package index (its answer is below): the interpreter's "
                    "own pip was installed"
                )
            )
            out = exc.output + _own_pip(b, py)
    else:
        argv = [py, "-m", "pip", "install", "--upgrade", "pip", "--no-compile"]
        out = b.run(argv, b.timeouts.pip, cwd=b.dest)
    version = _pip_version(b, py)
    return Outcome(output=out, details=details, what=verbatim(version) if version else None)


def _pip_version(b: Build, py: str) -> str:
    """'pip 25.3', from the venv's pip-*.dist-info (no Python start, no import of pip);
    `pip --version` when there is none."""
    found = sorted((b.dest / ".venv").glob("lib/python*/site-packages/pip-*.dist-info"))
    if len(found) == 1:
        return "pip " + found[0].name.removesuffix(".dist-info").split("-", 1)[1]
    return " ".join(b.run([py, "-m", "pip", "--version"], 60, cwd=b.dest).split()[:2])


def _own_pip(b: Build, py: str) -> str:
    """The pip wheel the interpreter brings (ensurepip's, or Debian's python-wheels),
    installed by uv; ensurepip itself (slower) when there is none."""
    stdlib = b.run([py, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"], 60)
    wheels = sorted(Path(stdlib.strip()).glob("ensurepip/_bundled/pip-*.whl")) or sorted(
        Path("/usr/share/python-wheels").glob("pip-*.whl")
    )
    if wheels and b.uv:
        argv = [b.uv, "pip", "install", "--python", py, "--no-index", str(wheels[-1])]
        return b.run(argv, b.timeouts.pip, cwd=b.dest, extra_env=NO_BYTECODE)
    return b.run([py, "-m", "ensurepip", "--default-pip"], b.timeouts.pip, cwd=b.dest)


def install(b: Build) -> Outcome:
    """The commit's dependencies, as its shape says (shapes.py); the step names it."""
    shape = shapes.detect_shape(b.dest, uv=bool(b.uv))
    if shape.kind == "none":
        raise Skipped(
            tr(
                "no dependency file in this commit (requirements.txt, pyproject.toml, uv.lock): "
                "nothing installed"
            )
        )
    if shape.kind == "application" and not shape.dependencies:
        raise Skipped(
            tr("pyproject.toml (dependencies only) lists no dependencies: nothing installed")
        )
    out = b.run(*_install_command(b, shape), cwd=b.dest, extra_env=_install_env(b, shape))
    out += bytecode.compile_venv(b)  # but pip and test suites, once per wheel
    return Outcome(output=out, details=[shape.note] if shape.note else [], what=shape.label)


def _install_command(b: Build, shape: shapes.Shape) -> tuple[list[str], float]:
    py = str(venv_python(b.dest))
    what = {
        "requirements.txt": ["-r", "requirements.txt"],
        "package": ["."],
        "application": ["--", *shape.dependencies],
    }
    if shape.kind == "uv.lock" and b.uv:
        argv = [b.uv, "sync", "--frozen", "--no-dev", "--inexact", "--python", py]
    elif b.uv:
        argv = [b.uv, "pip", "install", "--python", py, *what[shape.kind]]
    else:
        argv = [py, "-m", "pip", "install", "--no-compile", *what[shape.kind]]
    return argv, b.timeouts.install


def _install_env(b: Build, shape: shapes.Shape) -> dict[str, str]:
    env = dict(NO_BYTECODE)  # compiled afterwards (bytecode.py)
    if shape.kind == "uv.lock":
        env.update(UV_PROJECT_ENVIRONMENT=str(b.dest / ".venv"), UV_PYTHON_DOWNLOADS="never")
    return env


def make_readable(root: Path, skip: tuple[str, ...] = ()) -> None:
    """go+rX, go-w on everything under root (symlinks untouched), so the app user reads it;
    the folders of root named in `skip` are left as they are."""
    for here, dirs, files in os.walk(root):
        if here == str(root):
            dirs[:] = [d for d in dirs if d not in skip]
        for path in [Path(here)] + [Path(here) / n for n in files + dirs]:
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue
            mode = st.st_mode | stat.S_IRGRP | stat.S_IROTH
            if stat.S_ISDIR(st.st_mode) or st.st_mode & stat.S_IXUSR:
                mode |= stat.S_IXGRP | stat.S_IXOTH
            mode &= ~(stat.S_IWGRP | stat.S_IWOTH)
            if mode != st.st_mode:
                os.chmod(path, stat.S_IMODE(mode))


def finish(b: Build, installer: str) -> None:
    """Hand the release back to root (when built as the run-as user), make it readable,
    then write its marker: the last thing a build does."""
    if b.builder is not None:
        chown_tree(b.dest, None)  # the app (the run-as user) must not change its release
    # a reused venv is readable already: its links are the source's files, the rest
    # were written with their modes
    make_readable(b.dest, skip=(".venv",) if b.reused_from is not None else ())
    info = {
        "sha": b.sha,
        "installer": installer,
        "built": time.time(),
        "deps": b.deps,
        "reused_from": b.reused_from,
    }
    write_atomic(ready_marker(b.dest), json.dumps(info) + "\n", 0o644)
