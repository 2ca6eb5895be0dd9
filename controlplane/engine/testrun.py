"""The test slot's life: a test run with its live state and verdict, promote, discard.

A test run builds (or reuses) the release, runs the project's check command in it, points
the test slot at it, starts NAME-test with the test variables and watches it for the
chosen time; then the slot is stopped and the verdict, with its evidence, is recorded on
the release. The app is started exactly once: a program the runner has just made starts
by itself (autostart), so it is not restarted on top (as prod's go_live does). The run's
deadline exists from before the start, so Extend works from the first moment. A run
cancelled before its time is neither passed nor failed: its verdict is "cancelled", it is
not recorded on the release (which keeps what it had) and Promote is not offered for it.
A crash-looping app's output is shown once per distinct error, with counts on the live
card and in the verdict (controlplane.domain.tracebacks). Promote puts the very release
the test ran live in prod (never a rebuild). Steps, results, errors and events are
Texts, rendered in each reader's language.
"""

from __future__ import annotations

import shlex
import threading
import time
from pathlib import Path

from controlplane.adapters import runner
from controlplane.adapters.account import lookup_account
from controlplane.adapters.secrets import Redactor
from controlplane.domain.appenv import app_env, base_env
from controlplane.domain.history import CommitRow, find
from controlplane.domain.kinds import EventKind
from controlplane.domain.models import Project
from controlplane.domain.runner import program_name
from controlplane.domain.verdict import (
    CheckResult,
    Evidence,
    Verdict,
    cancelled_reason,
    error_lines,
    judge,
)
from controlplane.engine import build
from controlplane.engine.releases import Engine, Reporter
from controlplane.engine.slots import apply_slot, start_slot
from controlplane.engine.watch import Watcher
from controlplane.errors import CommandFailed, ControlPlaneError, NotFound
from controlplane.i18n import N_, Duration, Size, Text, join, tr
from controlplane.layout import venv_python

CHECK_TIMEOUT = 600.0
PASSED_TEXT = N_("{name}: test of #{n} {sha} passed: {reason}")
FAILED_TEXT = N_("{name}: test of #{n} {sha} failed: {reason}")
CANCELLED_TEXT = N_("{name}: test of #{n} {sha} cancelled: {reason}")
CARD_EVERY = 2.0
ERRORS_ON_CARD = 3


def live_line(ev: Evidence, total: float) -> Text:
    """The live card's state line: 'RUNNING 2m 5s of 3d · restarts 0 · 35.0 MiB PSS ·
    errors 0' (durations in the reader's language; the slot's peak memory, its processes'
    PSS), then each distinct error once with its count ('3× ValueError: boom (main.py:3)'),
    one a line."""
    state = tr(
        "{state} {elapsed} of {total} · restarts {restarts} · {memory} {kind} · errors {errors}",
        state=ev.state,
        elapsed=Duration(round(ev.elapsed)),
        total=Duration(round(total)),
        restarts=ev.restarts,
        memory=Size(ev.peak_memory),
        kind=ev.memory_kind,
        errors=ev.errors,
    )
    errors = error_lines(ev, ERRORS_ON_CARD)
    return join([state, *errors], "\n") if errors else state


def command_error(exc: CommandFailed) -> Text:
    """A failed command in one line, without its output: 'pytest -q exited with status 1
    in /…/releases/7-abc'."""
    command = " ".join(exc.argv)
    what = (
        tr("{command} timed out", command=command)
        if exc.timed_out
        else tr("{command} exited with status {status}", command=command, status=exc.returncode)
    )
    return tr("{what} in {folder}", what=what, folder=exc.cwd) if exc.cwd else what


class TestRuns:
    """Test runs of every project; at most one per project (the executor sees to it)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store
        self.settings = engine.settings
        self._deadlines: dict[str, float] = {}
        self._lock = threading.Lock()

    # -- the run ------------------------------------------------------------------------

    def test(
        self,
        name: str,
        ref: str | None,
        duration: float,
        op: Reporter,
        *,
        then_promote: bool = False,
    ) -> Text:
        """Build or reuse, check, run in the test slot for `duration` s, give a verdict.
        `then_promote`: a pass is promoted next by the caller (the policy), so the verdict
        offers no Promote of its own."""
        project = self.store.get_project(name)
        commit = self.engine.commit(project, ref, op)
        dest = self.engine.ensure_release(project, commit, op)
        check = self.run_check(project, dest, op) if project.check else None
        evidence = Evidence(program=program_name(name, "test"))
        early = False
        if check is None or check.ok:
            armed = time.monotonic() + duration
            with self._lock:  # Extend works from here on, before the app is up
                self._deadlines[name] = armed
            try:
                self._start(project, commit, dest, duration, then_promote)
                try:
                    evidence, early = self._observe(project, duration, armed, op)
                finally:
                    self._stop(project)
            finally:
                with self._lock:
                    self._deadlines.pop(name, None)
        return self._verdict(project, commit, evidence, check, early, duration)

    def _start(
        self, project: Project, commit: CommitRow, dest: Path, duration: float, auto: bool
    ) -> None:
        name = project.name
        self.engine.runner.switch(project, "test", dest)
        run = {"n": commit.n, "started": time.time(), "duration": duration, "auto_promote": auto}
        state = self.store.update_state(name, test=commit.n, test_running=True, test_run=run)
        remade = apply_slot(self.settings, self.engine.runner, project, state, "test")
        # a program the runner has just made starts by itself (autostart): a restart on
        # top would start the app twice (the first copy killed after its stop timeout)
        start_slot(self.engine.runner, name, "test", restart=not remade)

    def _observe(
        self, project: Project, duration: float, armed: float, op: Reporter
    ) -> tuple[Evidence, bool]:
        """Watch the test slot until the deadline (`armed`, which Extend moves) or a
        cancel; True with the evidence when cancelled."""
        name = project.name
        watcher = Watcher(self.engine.runner, self.settings, name, "test")
        last_card = 0.0
        redact = Redactor(self.store.slot_secrets(name, "test"))
        while True:
            evidence = watcher.sample()
            with self._lock:
                deadline = self._deadlines[name]
            evidence.duration = duration + (deadline - armed)  # the time given, extended
            for line in watcher.fresh:
                op.log(redact(line))
            if time.monotonic() - last_card >= CARD_EVERY:
                op.step(live_line(evidence, evidence.duration))
                last_card = time.monotonic()
            early = op.cancel.is_set()
            if early or time.monotonic() >= deadline or op.cancel.wait(self.engine.sample_every):
                if not early and op.cancel.is_set():
                    evidence, early = watcher.sample(), True
                for line in watcher.finish():
                    op.log(redact(line))
                return evidence, early

    def _stop(self, project: Project) -> None:
        state = self.store.update_state(project.name, test_running=False)
        apply_slot(self.settings, self.engine.runner, project, state, "test")
        self.engine.runner.stop(project.name, "test")

    def _verdict(
        self,
        project: Project,
        commit: CommitRow,
        ev: Evidence,
        check: CheckResult | None,
        early: bool,
        duration: float,
    ) -> Text:
        passed, reason = judge(ev, check)
        if early:  # cancelled: not a pass, and not held against the release either
            passed, reason = False, cancelled_reason(ev)
        verdict = Verdict.of(
            passed,
            reason,
            time.time(),
            early=early,
            duration=duration,
            check=check,
            evidence=ev,
        )
        stored = verdict.to_dict()
        release = self.store.release(project.name, commit.n)
        if release is not None and not early:
            self.store.put_release(project.name, release.with_(verdict=stored))
        run = dict(self.store.state(project.name).test_run or {})
        self.store.update_state(project.name, test_run={**run, "verdict": stored})
        template = CANCELLED_TEXT if early else PASSED_TEXT if passed else FAILED_TEXT
        text = tr(template, name=project.name, n=commit.n, sha=commit.short, reason=reason)
        promotable = verdict.promotable and not run.get("auto_promote")
        self.engine.outbox.publish(
            EventKind.VERDICT,
            project.name,
            text,
            n=commit.n,
            passed=passed,
            outcome=verdict.outcome,
            promotable=promotable,
        )
        if not passed:
            raise ControlPlaneError(text)
        return text

    def run_check(self, project: Project, dest: Path, op: Reporter) -> CheckResult:
        """The project's check command inside the release, as the app's user, test variables."""
        assert project.check is not None
        op.step(tr("check: {command}", command=project.check))
        variables = self.store.slot_env(project.name, "test")
        env = self._check_env(project, dest, variables)
        started = time.monotonic()
        try:
            result = runner.run(
                shlex.split(project.check),
                cwd=dest,
                env=env,
                timeout=CHECK_TIMEOUT,
                redact=Redactor(self.store.slot_secrets(project.name, "test")),
                cancel=op.cancel,
                user=self.settings.run_as,
            )
            ok, output, error = True, result.output, None
        except CommandFailed as exc:
            ok, output, error = False, exc.output, command_error(exc)
        except OSError as exc:
            why = tr(
                "cannot run {command}: {reason}",
                command=repr(project.check),
                reason=exc.strerror or str(exc),
            )
            ok, output, error = False, "", why
        lines, omitted = build.tail(output)
        if project.output or not ok:
            for line in lines:
                op.log(line)
        return CheckResult(
            ok=ok,
            seconds=round(time.monotonic() - started, 2),
            tail=lines,
            omitted=omitted,
            error=None if error is None else str(error),
            error_msg=None if error is None else error.to_dict(),
        )

    def _check_env(self, project: Project, dest: Path, variables: dict[str, str]) -> dict[str, str]:
        """The environment the app gets in the test slot, with the release's interpreter."""
        base = base_env(
            lookup_account(self.settings.run_as),
            python=str(venv_python(dest)),
            data_dir=self.settings.layout.slot_data(project.name, "test"),
            slot="test",
        )
        return app_env(base, variables)

    # -- while and after ------------------------------------------------------------------

    def extend(self, name: str, seconds: float) -> Text:
        """Give a running test more time."""
        with self._lock:
            if name not in self._deadlines:
                raise NotFound(tr("no test is running for {name}", name=name))
            self._deadlines[name] += seconds
            left = self._deadlines[name] - time.monotonic()
        return tr(
            "{name}: test extended by {seconds} s ({left} s left)",
            name=name,
            seconds=round(seconds),
            left=round(left),
        )

    def promote(self, name: str, op: Reporter, *, force: bool = False) -> Text:
        """Put the release the test ran live in prod (no rebuild), with the health window."""
        project = self.store.get_project(name)
        state = self.store.state(name)
        if state.test is None:
            raise NotFound(
                tr("{name} has no test release to promote; run a test deploy first", name=name)
            )
        verdict = state.test_verdict
        if verdict is None:
            raise ControlPlaneError(tr("the test of #{n} has no verdict yet", n=state.test))
        if verdict.cancelled and not force:
            raise ControlPlaneError(
                tr(
                    "the test of #{n} was cancelled before its time, so it has no verdict; "
                    "run it again, or promote it anyway with --force",
                    n=state.test,
                )
            )
        if not verdict.passed and not force:
            raise ControlPlaneError(
                tr(
                    "the test of #{n} failed ({reason}); promote it anyway with --force",
                    n=state.test,
                    reason=verdict.reason_text,
                )
            )
        commit = find(self.store.commits(name), str(state.test))
        self.engine.ensure_release(project, commit, op)
        return self.engine.go_live(project, commit, op, kind=EventKind.PROMOTED)

    def discard(self, name: str, op: Reporter) -> Text:
        """Stop the test slot and put it back: no program, no link."""
        project = self.store.get_project(name)
        state = self.store.state(name)
        if state.test is None:
            raise NotFound(tr("{name} has no test release to discard", name=name))
        self.engine.runner.remove(project, "test")
        self.store.update_state(name, test=None, test_running=False, test_run=None)
        op.step(tr("test slot stopped and cleared"))
        text = tr("{name}: test of #{n} discarded", name=name, n=state.test)
        self.engine.outbox.publish(EventKind.DISCARDED, name, text, n=state.test)
        self.engine.prune(name, op)
        return text
