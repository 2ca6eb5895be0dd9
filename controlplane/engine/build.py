"""Build one commit into a release: pre-flight, export, venv, pip upgrade, install.

Each step has its own timeout, appends its full (redacted) output to the build log and
keeps a 30-line tail for chat. A venv records its absolute path (console-script
shebangs, activate scripts), so a release is built in its final folder and never moved;
what marks it finished is a sibling marker file `<release>.ready`, written last. A
failed or cancelled build removes its folder; `clean_leftovers` removes folders that
have no marker (a build cut short by a crash).

uv is used when it is installed (next to our interpreter, then on PATH): `uv venv`, then
`uv pip install`. uv needs no pip inside the venv, so the "pip upgrade" step is reported
as skipped with that reason. Without uv: `python -m venv`, `pip install -U pip`,
`pip install -r requirements.txt`. Both share a cache under the data dir.

What a step says to a person (why it failed, why it was skipped) is a Text, rendered in
the reader's language; `error` and `note` give it in English, for the logs and the store.
The steps' own output (the tail) is shown as it is.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import stat
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from controlplane.adapters import git, runner
from controlplane.adapters.files import chown_tree, write_atomic
from controlplane.adapters.giterrors import GitError
from controlplane.errors import CommandFailed, ControlPlaneError
from controlplane.i18n import N_, Number, Size, Text, ntr, tr, verbatim
from controlplane.layout import READY_SUFFIX, ready_marker, venv_python

logger = logging.getLogger(__name__)

CHAT_LINES = 30
CANCELLED = N_("cancelled")
SECRET_MIN_LEN = 6
Installer = Literal["auto", "uv", "pip"]
# Checks, as the run-as user, that the interpreter runs and the releases folder is reachable.
PREFLIGHT_CHECK = (
    "import os, sys, venv\n"
    "if len(sys.argv) > 2: import ensurepip\n"
    "ok = os.access(sys.argv[1], os.R_OK | os.X_OK)\n"
    "print('python', sys.version.split()[0], '- releases folder', 'reachable' if ok else "
    "'NOT reachable', 'by this user')\n"
    "sys.exit(0 if ok else 3)\n"
)


class BuildError(ControlPlaneError):
    """A build step found a problem that is not a failed command (disk, interpreter…);
    `output` is what a command it ran printed, if any."""

    def __init__(self, message: Text | str, *, output: str = "") -> None:
        super().__init__(message)
        self.output = output


@dataclass(frozen=True)
class BuildTimeouts:
    """Seconds each step may take before its whole process group is killed."""

    preflight: float = 60.0
    export: float = 300.0
    venv: float = 300.0
    pip: float = 300.0
    install: float = 1800.0


# each step as a person reads it ('install' / 'установка'); the names stay the keys
STEP_LABELS = {
    "pre-flight": N_("pre-flight"),
    "export": N_("export"),
    "venv": N_("venv"),
    "pip upgrade": N_("pip upgrade"),
    "install": N_("install"),
}


def step_label(name: str) -> Text:
    """A step's name in the reader's language (an unknown one as it is)."""
    label = STEP_LABELS.get(name)
    return tr(label) if label is not None else verbatim(name)


@dataclass(frozen=True)
class StepResult:
    """One step as chat shows it: a skipped step is ok with a note saying why."""

    name: str
    ok: bool
    seconds: float
    tail_lines: tuple[str, ...] = ()
    omitted: int = 0
    error_text: Text | None = None  # why it failed (redacted)
    note_text: Text | None = None  # why it was skipped
    details: tuple[Text, ...] = ()  # the step's own lines about what it found

    @property
    def error(self) -> str | None:
        return None if self.error_text is None else str(self.error_text)

    @property
    def note(self) -> str | None:
        return None if self.note_text is None else str(self.note_text)

    @property
    def summary(self) -> Text:
        """The step's line on a live card: 'install: ok (3.2 s)', or why it was skipped."""
        status = self.note_text or (tr("ok") if self.ok else tr("FAILED"))
        return tr(
            "{step}: {status} ({seconds} s)",
            step=step_label(self.name),
            status=status,
            seconds=Number(self.seconds, 1),
        )

    def to_dict(self) -> dict[str, Any]:
        """The step as the release record keeps it (English)."""
        return {
            "name": self.name,
            "ok": self.ok,
            "seconds": round(self.seconds, 2),
            "tail": list(self.tail_lines) or [str(d) for d in self.details],
            "omitted": self.omitted,
            "error": self.error,
            "note": self.note,
        }


@dataclass(frozen=True)
class BuildResult:
    """The outcome of `build_release`; `state` is 'ready' or 'failed'."""

    state: Literal["ready", "failed"]
    dest: Path
    sha: str
    log_path: Path
    installer: str
    seconds: float
    steps: tuple[StepResult, ...] = ()
    cancelled: bool = False

    @property
    def error_text(self) -> Text | None:
        """The first failed step and why, for the one-line summary: 'install: exited with
        status 1'."""
        failed = [s for s in self.steps if not s.ok]
        if not failed:
            return None
        why = failed[0].error_text or verbatim("")
        return tr("{step}: {error}", step=step_label(failed[0].name), error=why)

    @property
    def error(self) -> str | None:
        """The same in English (the release record, the logs)."""
        return None if self.error_text is None else str(self.error_text)

    @property
    def python(self) -> Path:
        return venv_python(self.dest)


def tail(text: str, lines: int = CHAT_LINES) -> tuple[list[str], int]:
    """The last `lines` lines of text and how many were left out (progress \\r collapsed)."""
    rows = [row.rsplit("\r", 1)[-1] for row in text.replace("\r\n", "\n").split("\n")]
    while rows and not rows[-1].strip():
        rows.pop()
    if len(rows) <= lines:
        return rows, 0
    return rows[-lines:], len(rows) - lines


def is_ready(dest: Path) -> bool:
    """A release is usable only when its folder and its marker both exist."""
    return dest.is_dir() and ready_marker(dest).is_file()


def remove_release(dest: Path) -> None:
    """Delete a release: the marker first, so a half-deleted folder never looks ready."""
    ready_marker(dest).unlink(missing_ok=True)
    shutil.rmtree(dest, ignore_errors=True)


def clean_leftovers(releases: Path) -> list[Path]:
    """Remove folders of builds that never finished, and markers without a folder.

    Call it on start, before any build runs: a build in progress has no marker yet.
    """
    removed: list[Path] = []
    if not releases.is_dir():
        return removed
    for entry in sorted(releases.iterdir()):
        if entry.is_dir() and not entry.is_symlink() and not ready_marker(entry).is_file():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        elif entry.name.endswith(READY_SUFFIX) and not entry.with_suffix("").is_dir():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    if removed:
        logger.info("removed %d unfinished build leftovers in %s", len(removed), releases)
    return removed


def find_uv() -> str | None:
    """uv installed with our package (next to our interpreter) first, then on PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


def build_env(
    env: Mapping[str, str], cache_dir: Path, *, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """A minimal environment, our cache and quiet defaults, then the project's variables."""
    base = os.environ if base is None else base
    merged = {k: base[k] for k in ("PATH", "HOME", "TMPDIR") if k in base}
    merged.update(
        LANG="C.UTF-8",
        UV_CACHE_DIR=str(cache_dir / "uv"),
        UV_PYTHON_DOWNLOADS="never",
        UV_COMPILE_BYTECODE="1",
        UV_NO_PROGRESS="1",
        PIP_CACHE_DIR=str(cache_dir / "pip"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_PROGRESS_BAR="off",
        NO_COLOR="1",
    )
    merged.update(env)
    return merged


@dataclass
class _Build:
    """What every step needs; built once by build_release."""

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
    # who runs the venv and install steps: the run-as user when we are root, so that a
    # package's build scripts never run with root's rights (the store, the key)
    builder: str | None = None

    def run(self, argv: list[str], timeout: float, cwd: Path | None = None) -> str:
        self.log.write(f"$ {' '.join(self.redact(a) for a in argv)}\n")
        self.log.flush()
        result = runner.run(
            argv,
            cwd=cwd,
            env=self.env,
            timeout=timeout,
            redact=self.redact,
            log=self.log,
            cancel=self.cancel,
            user=self.builder,
        )
        return result.output


class Skipped(Exception):
    """Raised by a step that has nothing to do; `text` says why."""

    def __init__(self, text: Text) -> None:
        super().__init__(str(text))
        self.text = text


def _preflight(b: _Build) -> list[Text]:
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
    argv = [b.python, "-c", PREFLIGHT_CHECK, str(b.dest.parent)] + ([] if b.uv else ["pip"])
    b.log.write(f"$ {b.python} -c <pre-flight check> {b.dest.parent}\n")
    try:
        out = runner.run(
            argv,
            env=b.env,
            timeout=b.timeouts.preflight,
            redact=b.redact,
            log=b.log,
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
    version = [*out.split(), "?", "?"][1]
    user: Text | str = b.run_as or tr("this user")
    details = [
        tr(
            "python {version}; the releases folder is reachable by {user}",
            version=version,
            user=user,
        ),
        tr("free disk: {size}", size=Size(free_mb * 2**20)),
    ]
    fallback = _check_uv(b)
    if b.uv:
        details.append(tr("installer: uv ({path})", path=b.uv))
    elif fallback:
        details.append(tr("installer: venv + pip (uv is not reachable by {user})", user=b.builder))
    else:
        details.append(tr("installer: venv + pip"))
    if b.builder:
        details.append(tr("builds run as: {user}", user=b.builder))
    return details


def _check_uv(b: _Build) -> bool:
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


def _export(b: _Build) -> list[Text]:
    git.export(
        b.mirror,
        b.sha,
        b.dest,
        timeout=b.timeouts.export,
        log=b.log,
        cancel=b.cancel,
        access=b.git_access,
        owner=b.builder,
    )
    count = sum(len(files) for _, _, files in os.walk(b.dest))
    return [ntr("exported {sha}: {n} file", "exported {sha}: {n} files", count, sha=b.sha[:7])]


def _venv(b: _Build) -> str:
    target = str(b.dest / ".venv")
    if b.uv:
        argv = [b.uv, "venv", "--no-project", "--python", b.python, target]
        return b.run(argv, b.timeouts.venv, cwd=b.dest)
    return b.run([b.python, "-m", "venv", target], b.timeouts.venv, cwd=b.dest)


def _pip_upgrade(b: _Build) -> str:
    if b.uv:
        raise Skipped(tr("uv installs the requirements; the venv needs no pip"))
    py = str(venv_python(b.dest))
    return b.run([py, "-m", "pip", "install", "--upgrade", "pip"], b.timeouts.pip, cwd=b.dest)


def _install(b: _Build) -> str:
    if not (b.dest / "requirements.txt").is_file():
        raise Skipped(tr("no requirements.txt in this commit"))
    py = str(venv_python(b.dest))
    if b.uv:
        argv = [b.uv, "pip", "install", "--python", py, "-r", "requirements.txt"]
    else:
        argv = [py, "-m", "pip", "install", "-r", "requirements.txt"]
    return b.run(argv, b.timeouts.install, cwd=b.dest)


# A step returns the tools' output (shown as printed) or its own lines about what it found
# (Texts, shown in the reader's language).
StepFn = Callable[[_Build], "str | list[Text]"]
STEPS: tuple[tuple[str, StepFn], ...] = (
    ("pre-flight", _preflight),
    ("export", _export),
    ("venv", _venv),
    ("pip upgrade", _pip_upgrade),
    ("install", _install),
)


def _failure_text(exc: Exception, timeouts: float) -> tuple[Text, str]:
    """(why it failed, output) for a failed step."""
    if isinstance(exc, runner.Cancelled):
        return tr(CANCELLED), exc.output
    if isinstance(exc, CommandFailed):
        if exc.timed_out:
            seconds = f"{timeouts:g}"
            return tr("timed out after {seconds} s; the step was stopped", seconds=seconds), (
                exc.output
            )
        return tr("exited with status {status}", status=str(exc.returncode)), exc.output
    if isinstance(exc, BuildError):
        return exc.text, exc.output
    if isinstance(exc, GitError):
        return exc.text, exc.tail
    if isinstance(exc, ControlPlaneError):
        return exc.text, ""
    return verbatim(str(exc)), str(exc)


def _run_step(b: _Build, name: str, step: StepFn, timeout: float) -> StepResult:
    """Run one step, never raising: what happened is in the StepResult and the log."""
    b.log.write(f"\n== {name} ==\n")
    b.log.flush()
    started = time.monotonic()
    if b.cancel is not None and b.cancel.is_set():
        return StepResult(name, ok=False, seconds=0.0, error_text=tr(CANCELLED))
    try:
        output = step(b)
    except Skipped as skip:
        b.log.write(f"skipped: {skip}\n")
        return StepResult(name, ok=True, seconds=time.monotonic() - started, note_text=skip.text)
    except (ControlPlaneError, OSError) as exc:
        why, output = _failure_text(exc, timeout)
        error = why.redacted(b.redact)
        lines, omitted = tail(b.redact(output))
        b.log.write(f"FAILED: {error}\n")
        return StepResult(
            name,
            ok=False,
            seconds=time.monotonic() - started,
            tail_lines=tuple(lines),
            omitted=omitted,
            error_text=error,
        )
    seconds = time.monotonic() - started
    if isinstance(output, list):
        details = tuple(d.redacted(b.redact) for d in output)
        b.log.write("".join(f"{d}\n" for d in details))
        return StepResult(name, ok=True, seconds=seconds, details=details)
    lines, omitted = tail(b.redact(output))
    return StepResult(name, ok=True, seconds=seconds, tail_lines=tuple(lines), omitted=omitted)


def _step_timeout(name: str, timeouts: BuildTimeouts) -> float:
    key = {"pre-flight": "preflight", "pip upgrade": "pip"}.get(name, name)
    return float(getattr(timeouts, key))


def make_readable(root: Path) -> None:
    """go+rX, go-w on everything under root (symlinks untouched), so the app user reads it."""
    for here, dirs, files in os.walk(root):
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


def builder_dirs(cache_dir: Path, user: str) -> None:
    """The shared caches and a home for the builder, owned by it."""
    for sub in ("uv", "pip", "home"):
        path = cache_dir / sub
        path.mkdir(parents=True, exist_ok=True)
        if path.stat().st_uid != pwd.getpwnam(user).pw_uid:
            chown_tree(path, user)


def _finish(b: _Build, installer: str) -> None:
    if b.builder is not None:
        chown_tree(b.dest, None)  # the app (the run-as user) must not change its release
    make_readable(b.dest)
    info = {"sha": b.sha, "installer": installer, "built": time.time()}
    write_atomic(ready_marker(b.dest), json.dumps(info) + "\n", 0o644)


def _prepare(dest: Path, log_path: Path, installer: Installer) -> str | None:
    """Refuse to rebuild a ready release, clear a leftover, pick uv; returns uv or None."""
    uv = None if installer == "pip" else find_uv()
    if installer == "uv" and uv is None:
        raise BuildError(tr("uv was asked for but is not installed"))
    if is_ready(dest):
        raise BuildError(
            tr("release {release} is built already; remove it to build it again", release=dest.name)
        )
    if dest.exists() or ready_marker(dest).exists():
        remove_release(dest)  # a leftover of a build that never finished
    dest.parent.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return uv


def build_release(
    *,
    dest: Path,
    mirror: Path,
    sha: str,
    python: str,
    env: Mapping[str, str],
    log_path: Path,
    cache_dir: Path,
    cancel: threading.Event | None = None,
    timeouts: BuildTimeouts = BuildTimeouts(),
    installer: Installer = "auto",
    run_as: str | None = None,
    min_free_mb: int = 200,
    git_access: git.Access | None = None,
) -> BuildResult:
    """Build commit `sha` from `mirror` into `dest`; never raises for a failed step.

    Raises BuildError only before anything starts: `dest` is a ready release already, or
    uv was asked for and is missing. Call `git.fetch_commit` first so the mirror has `sha`.

    `env` is the project's prod variables (proxies, PIP_INDEX_URL, UV_INDEX_URL…): they
    apply to every step and are redacted from everything written or returned.
    """
    started = time.monotonic()
    uv = _prepare(dest, log_path, installer)
    builder = run_as if run_as and os.geteuid() == 0 else None
    benv = build_env(env, cache_dir)
    if builder is not None:
        builder_dirs(cache_dir, builder)
        # copies, not hard links into the cache: the release goes back to root afterwards
        benv.update(HOME=str(cache_dir / "home"), UV_LINK_MODE="copy")
        benv.update({k: v for k, v in env.items() if k in ("HOME", "UV_LINK_MODE")})
    with open(log_path, "a", encoding="utf-8") as log:
        b = _Build(
            dest=dest,
            mirror=mirror,
            sha=sha,
            python=python,
            env=benv,
            builder=builder,
            redact=git.redactor(env.values(), SECRET_MIN_LEN),
            log=log,
            cancel=cancel,
            timeouts=timeouts,
            uv=uv,
            run_as=run_as,
            min_free_mb=min_free_mb,
            git_access=git_access or git.Access(),
        )
        log.write(f"# build {dest.name} ({sha}) started {time.ctime()}\n")
        steps = _run_all(b)
        ok = all(s.ok for s in steps)
        if ok:
            _finish(b, "uv" if uv else "pip")
        else:
            remove_release(dest)
            if out_of_space(steps):
                _drop_cache(cache_dir, log)
        seconds = time.monotonic() - started
        log.write(f"# build {'ready' if ok else 'FAILED'} after {seconds:.1f} s\n")
    logger.info("build %s %s in %.1f s", dest.name, "ready" if ok else "failed", seconds)
    return BuildResult(
        state="ready" if ok else "failed",
        dest=dest,
        sha=sha,
        log_path=log_path,
        installer="uv" if uv else "pip",
        seconds=seconds,
        steps=tuple(steps),
        cancelled=any(s.error == CANCELLED for s in steps),
    )


NO_SPACE = ("no space left on device", "os error 28", "errno 28")


def out_of_space(steps: list[StepResult]) -> bool:
    """Whether a failed step ran out of disk (pip, uv and git each say it their way)."""
    text = "\n".join(line for s in steps if not s.ok for line in (*s.tail_lines, s.error or ""))
    return any(marker in text.lower() for marker in NO_SPACE)


def _drop_cache(cache_dir: Path, log: IO[str]) -> None:
    """The volume is full: the download cache (which the failed install just filled) goes,
    so the space is given back and the next build can pass its pre-flight."""
    shutil.rmtree(cache_dir, ignore_errors=True)
    log.write(f"# out of disk space: the download cache {cache_dir} was cleared\n")
    logger.warning("build ran out of disk space; cleared the cache %s", cache_dir)


def _run_all(b: _Build) -> list[StepResult]:
    steps: list[StepResult] = []
    for name, step in STEPS:
        steps.append(_run_step(b, name, step, _step_timeout(name, b.timeouts)))
        if not steps[-1].ok:
            break
    return steps
