"""Build one commit into a release: pre-flight, export, python, venv, pip upgrade, install.

Each step has its own timeout, appends its full (redacted) output to the build log and
keeps a 30-line tail for the release record; a `StepWatch` is told of each step as it
begins and ends and of each line as it is printed (the live card, buildwatch.py). A
venv records its absolute path (console-script shebangs, activate scripts), so a
release is built in its final folder and never moved; what marks it finished is a
sibling marker file `<release>.ready`, written last. A failed or cancelled build removes
its folder; `clean_leftovers` removes folders that have no marker (a build cut short by
a crash).

The steps themselves are in buildsteps.py, what a commit declares (its dependency files,
the Python it asks for) in shapes.py, the environment they run in in buildenv.py. The
installer is uv (when it is installed, next to our interpreter or on PATH) or pip, the
classic steps, when a project asks for it or uv cannot be run; both share a cache under
the data dir.

What a step says to a person (why it failed, why it was skipped, what it used) is a Text,
rendered in the reader's language; `error` and `note` give it in English, for the logs
and the store. The steps' own output (the tail) is shown as it is.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from controlplane.adapters import git, runner
from controlplane.adapters.giterrors import GitError
from controlplane.engine import buildenv, venvreuse
from controlplane.engine.buildsteps import (
    Build,
    Outcome,
    Skipped,
    export,
    finish,
    preflight,
)
from controlplane.engine.buildsteps import BuildError as BuildError
from controlplane.engine.buildsteps import BuildTimeouts as BuildTimeouts
from controlplane.engine.pythons import python
from controlplane.errors import CommandFailed, ControlPlaneError
from controlplane.i18n import N_, Number, Text, tr, verbatim
from controlplane.layout import READY_SUFFIX, ready_marker, venv_python

logger = logging.getLogger(__name__)

CHAT_LINES = 30
CANCELLED = N_("cancelled")
SECRET_MIN_LEN = 6
Installer = Literal["auto", "uv", "pip"]
# each step as a person reads it ('install' / 'установка'); the names stay the keys
STEP_LABELS = {
    "pre-flight": N_("pre-flight"),
    "export": N_("export"),
    "python": N_("python"),
    "venv": N_("venv"),
    "pip upgrade": N_("pip upgrade"),
    "install": N_("install"),
}


# A step returns the tools' output (shown as printed), its own lines about what it found
# (Texts, shown in the reader's language), or an Outcome with both.
StepFn = Callable[[Build], "str | list[Text] | Outcome"]
STEPS: tuple[tuple[str, StepFn], ...] = (
    ("pre-flight", preflight),
    ("export", export),
    ("python", python),
    ("venv", venvreuse.venv),
    ("pip upgrade", venvreuse.pip_upgrade),
    ("install", venvreuse.install),
)


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
    what: Text | None = None  # what it used: 'requirements.txt', 'pip 25.3', '3.12.1'
    headline: tuple[str, ...] = ()  # a failed step: the lines naming what failed

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
        if self.what is not None:
            return tr(
                "{step} ({what}): {status} ({seconds} s)",
                step=step_label(self.name),
                what=self.what,
                status=status,
                seconds=Number(self.seconds, 1),
            )
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
            "what": None if self.what is None else str(self.what),
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


@dataclass(frozen=True)
class StepWatch:
    """Who follows a build while it runs: a step begins (its name), a line of a command's
    output (redacted), a step ended (its result)."""

    on_start: Callable[[str], None]
    on_line: Callable[[str], None]
    on_done: Callable[[StepResult], None]


# what the first lines of a failure say in pip's, uv's and the compilers' words
FAILURE_MARKS = ("failed to build", "error:", "× ", "fatal error")
# what names the package being installed when it failed (pip, uv)
PACKAGE_MARKS = ("collecting ", "processing ", "building ", "downloading ")


def headline(text: str) -> tuple[str, ...]:
    """The lines of a failed step's output that say what failed, which a 30-line tail
    may have dropped: the package being handled at the first error (pip's 'Collecting
    mysqlclient', uv's 'Building mysqlclient==2.2.4') and the first 'Failed to build X'
    (or, without one, the first error line)."""
    rows = [r.strip() for r in text.replace("\r\n", "\n").split("\n")]
    found = [i for i, r in enumerate(rows) if r.lower().startswith(FAILURE_MARKS)]
    if not found:
        return ()
    named = [i for i in found if "failed to build" in rows[i].lower()]
    first = named[0] if named else found[0]
    before = [r for r in rows[: found[0]] if r.lower().startswith(PACKAGE_MARKS)]
    lines = [before[-1]] if before and not named else []
    return (*lines, rows[first][:300])


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


def _run_step(b: Build, name: str, step: StepFn, timeout: float) -> StepResult:
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
            headline=headline(b.redact(output)),
        )
    seconds = time.monotonic() - started
    if isinstance(output, list):
        output = Outcome(details=output)
    elif isinstance(output, str):
        output = Outcome(output=output)
    details = tuple(d.redacted(b.redact) for d in output.details)
    b.log.write("".join(f"{d}\n" for d in details))
    lines, omitted = tail(b.redact(output.output))
    what = None if output.what is None else output.what.redacted(b.redact)
    return StepResult(
        name,
        ok=True,
        seconds=seconds,
        tail_lines=tuple(lines),
        omitted=omitted,
        details=details,
        what=what,
    )


def _step_timeout(name: str, timeouts: BuildTimeouts) -> float:
    key = {"pre-flight": "preflight", "pip upgrade": "pip"}.get(name, name)
    return float(getattr(timeouts, key))


def _prepare(dest: Path, log_path: Path, installer: Installer) -> str | None:
    """Refuse to rebuild a ready release, clear a leftover, pick uv; returns uv or None."""
    uv = None if installer == "pip" else buildenv.find_uv()
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
    timeouts: BuildTimeouts | None = None,
    installer: Installer = "auto",
    run_as: str | None = None,
    min_free_mb: int = 200,
    git_access: git.Access | None = None,
    base_env: Mapping[str, str] | None = None,
    secrets: Iterable[str] | None = None,
    watch: StepWatch | None = None,
) -> BuildResult:
    """Build commit `sha` from `mirror` into `dest`; never raises for a failed step.

    Raises BuildError only before anything starts: `dest` is a ready release already, or
    uv was asked for and is missing. Call `git.fetch_commit` first so the mirror has `sha`.

    `env` is the project's prod variables (proxies, PIP_INDEX_URL, UV_INDEX_URL…): they
    apply to every step, override the network settings taken from `base_env` (the control
    plane's environment, os.environ by default: buildenv.py). The `secrets` among them (None:
    every value of `env`) and the credentials in the inherited settings are redacted from
    everything written or returned. `installer` 'pip' runs the classic steps; 'uv' insists
    on uv; 'auto' uses uv when it is installed. `watch` is told of each step as it begins
    and ends, and of each line its commands print, as they print it.
    """
    started = time.monotonic()
    uv = _prepare(dest, log_path, installer)
    base = os.environ if base_env is None else base_env
    with open(log_path, "a", encoding="utf-8") as log:
        b = Build(
            dest=dest,
            mirror=mirror,
            sha=sha,
            python=python,
            env=_step_env(env, base, cache_dir, run_as),
            builder=_builder(run_as),
            redact=_redactor(env.values() if secrets is None else secrets, base),
            log=log,
            cancel=cancel,
            timeouts=timeouts or BuildTimeouts(),
            uv=uv,
            run_as=run_as,
            min_free_mb=min_free_mb,
            git_access=git_access or git.Access(),
            cache_dir=cache_dir,
            inherited=buildenv.shown_settings(base, env),
            on_line=None if watch is None else watch.on_line,
        )
        log.write(f"# build {dest.name} ({sha}) started {time.ctime()}\n")
        steps = _run_all(b, watch)
        ok = all(s.ok for s in steps)
        if ok:
            finish(b, "uv" if b.uv else "pip")
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
        installer="uv" if b.uv else "pip",
        seconds=seconds,
        steps=tuple(steps),
        cancelled=any(s.error == CANCELLED for s in steps),
    )


def _builder(run_as: str | None) -> str | None:
    """Who runs the steps that run a package's code: the run-as user when we are root."""
    return run_as if run_as and os.geteuid() == 0 else None


def _step_env(
    env: Mapping[str, str], base: Mapping[str, str], cache_dir: Path, run_as: str | None
) -> dict[str, str]:
    benv = buildenv.build_env(env, cache_dir, base=base)
    builder = _builder(run_as)
    if builder is not None:
        buildenv.builder_dirs(cache_dir, builder)
        # copies, not hard links into the cache: the release goes back to root afterwards
        benv.update(HOME=str(cache_dir / "home"), UV_LINK_MODE="copy")
        benv.update({k: v for k, v in env.items() if k in ("HOME", "UV_LINK_MODE")})
    return benv


def _redactor(values: Iterable[str], base: Mapping[str, str]) -> runner.Redact:
    """Hides the project's secret values and the credentials inside the network settings a
    build inherits (a proxy's user:password)."""
    secrets = [*values, *buildenv.url_secrets(buildenv.inherited(base))]
    return git.redactor(secrets, SECRET_MIN_LEN)


NO_SPACE = ("no space left on device", "os error 28", "errno 28")


def out_of_space(steps: list[StepResult]) -> bool:
    """Whether a failed step ran out of disk (pip, uv and git each say it their way)."""
    text = "\n".join(line for s in steps if not s.ok for line in (*s.tail_lines, s.error or ""))
    return any(marker in text.lower() for marker in NO_SPACE)


def _drop_cache(cache_dir: Path, log: IO[str]) -> None:
    """The volume is full: the download caches (which the failed install just filled) go,
    so the space is given back and the next build can pass its pre-flight. Interpreters uv
    fetched stay: releases' venvs use them."""
    for sub in ("uv", "pip"):
        shutil.rmtree(cache_dir / sub, ignore_errors=True)
    log.write(f"# out of disk space: the download cache {cache_dir} was cleared\n")
    logger.warning("build ran out of disk space; cleared the cache %s", cache_dir)


def _run_all(b: Build, watch: StepWatch | None) -> list[StepResult]:
    steps: list[StepResult] = []
    for name, step in STEPS:
        if watch is not None:
            watch.on_start(name)
        steps.append(_run_step(b, name, step, _step_timeout(name, b.timeouts)))
        if watch is not None:
            watch.on_done(steps[-1])
        if not steps[-1].ok:
            break
    return steps
