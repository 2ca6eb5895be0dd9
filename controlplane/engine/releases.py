"""The release engine: a commit becomes a release, a release goes live in a slot.

Operations (each run by serve's executor, one per project at a time) are methods of
Engine that take an Operation to report progress to and to watch for a cancel:
sync (fetch and number), deploy to prod, rollback, start/stop/restart, prune, and the
recovery at start. The test slot's life (test run, promote, discard) is in testrun.py.
Decisions are plain functions in history.py and watch.py; this module does the side
effects in a safe order: build first, then switch the slot to the release, then have the
runner start it. The process manager is reached only through the Runner (domain/runner.py)
given at construction. Steps, results, errors and events are Texts (controlplane.i18n),
rendered in each reader's language.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from controlplane.adapters import buildlogs, git, sshkeys
from controlplane.adapters.files import folder_size
from controlplane.adapters.slotprocs import descendants
from controlplane.adapters.store import Store
from controlplane.domain.events import EventSink
from controlplane.domain.history import (
    CommitRow,
    Release,
    SlotState,
    find,
    to_prune,
)
from controlplane.domain.kinds import EventKind, op_name
from controlplane.domain.models import SLOTS, Project
from controlplane.domain.runner import Runner, program_name
from controlplane.domain.verdict import Evidence, Verdict, crash_looping, crash_text
from controlplane.engine import build
from controlplane.engine.buildwatch import step_watch
from controlplane.engine.slots import apply_slot, start_slot
from controlplane.engine.watch import Watcher
from controlplane.errors import ControlPlaneError, NotFound
from controlplane.i18n import N_, Text, ntr, tr
from controlplane.settings import Settings

logger = logging.getLogger(__name__)

SAMPLE_EVERY = 0.5
LOGGED_NUMBERED = 20  # commits named one by one in the log when a fetch numbers many
# how the event of a prod switch reads: "shop: rolled back to #3 …"
LIVE_TEXTS = {
    EventKind.DEPLOYED: N_("{name}: deployed to #{n} {sha} {subject}"),
    EventKind.ROLLED_BACK: N_("{name}: rolled back to #{n} {sha} {subject}"),
    EventKind.PROMOTED: N_("{name}: promoted to #{n} {sha} {subject}"),
}


class Reporter(Protocol):
    """What an operation offers the engine (controlplane.executor.Operation): steps are
    Texts, lines of output are as the command printed them."""

    cancel: threading.Event

    def step(self, text: Text | str) -> None: ...

    def log(self, line: str) -> None: ...


class Quiet:
    """A reporter for work nobody follows (recovery, tests); keeps the English."""

    def __init__(self) -> None:
        self.cancel = threading.Event()
        self.lines: list[str] = []

    def step(self, text: Text | str) -> None:
        self.lines.append(str(text))

    def log(self, line: str) -> None:
        self.lines.append(line)


class BuildFailed(ControlPlaneError):
    """A release could not be built; prod is untouched."""


def logs_to_prune(releases: Sequence[Release], keep: int, gone: Iterable[int]) -> list[int]:
    """The commits whose build logs go: the releases pruned now or before, and failed builds
    beyond the newest `keep` failed ones (a failed build has no folder to prune, but its
    log is what the admin reads, so the recent ones stay)."""
    failed = sorted((r.n for r in releases if r.state == "failed"), reverse=True)
    pruned = {r.n for r in releases if r.state == "pruned"}
    return sorted(set(gone) | pruned | set(failed[keep:]))


def kill_strays(roots: dict[str, Path], spare: set[int]) -> dict[str, int]:
    """Kill build processes a crashed serve left under the projects' `roots` (their process
    groups outlive it): any whose command line names a folder inside one, except the
    `spare` pids (the runner's children and ours: the running apps and this process).
    Returns how many were killed per project. One pass over the processes for all the
    projects: a pass per project was seconds of serve's start with 1,000 projects."""
    import psutil

    prefixes = {name: str(root) + "/" for name, root in roots.items()}
    common = os.path.commonpath([str(r) for r in roots.values()]) if roots else ""
    killed: dict[str, int] = {}
    for proc in psutil.process_iter(["cmdline", "pid"]):
        try:
            if proc.info["pid"] in spare:
                continue
            words = [w for w in proc.info["cmdline"] or [] if common in w]
            owner = next((n for n, pre in prefixes.items() if any(pre in w for w in words)), None)
            if owner is not None:
                proc.kill()
                killed[owner] = killed.get(owner, 0) + 1
        except psutil.Error:
            continue
    return killed


class Engine:
    """Every operation on releases and slots."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        outbox: EventSink,
        *,
        runner: Runner,
        timeouts: build.BuildTimeouts | None = None,
        build_limit: int = 2,
        sample_every: float = SAMPLE_EVERY,
    ) -> None:
        self.settings = settings
        self.store = store
        self.outbox = outbox
        self.runner = runner
        self.timeouts = timeouts or build.BuildTimeouts()
        self.builds = threading.BoundedSemaphore(build_limit)
        self.sample_every = sample_every

    # -- paths --------------------------------------------------------------------------

    def releases_dir(self, name: str) -> Path:
        return self.settings.layout.releases_dir(name)

    def mirror(self, name: str) -> Path:
        return self.settings.layout.mirror(name)

    def release_path(self, name: str, n: int, sha: str) -> Path:
        return self.settings.layout.release_dir(name, n, sha)

    def remote(self, project: Project) -> git.Remote:
        return git.Remote(project.repo, self.store.repo_auth(project.name))

    def git_access(self, name: str) -> git.Access:
        """git as its unprivileged user, with the project's pinned hosts and deploy key."""
        return git.access_for(self.settings, name, self.store.deploy_key(name))

    # -- fetch and number ---------------------------------------------------------------

    def sync(self, project: Project, op: Reporter) -> CommitRow:
        """Fetch the branch into the mirror, number new commits; returns the head."""
        op.step(tr("fetch {branch}", branch=project.branch))
        access = self.git_access(project.name)
        mirror = git.ensure_mirror(self.remote(project), self.mirror(project.name), access=access)
        env = self.store.env(project.name, "prod")
        pinned = sshkeys.pinned(self.settings.known_hosts(project.name))
        head = git.fetch(
            mirror, self.remote(project), project.branch, env=env, cancel=op.cancel, access=access
        )
        self._report_pinned(project.name, pinned, op)
        known = self.store.commits(project.name)
        shas = {c.sha for c in known}
        if head not in shas:
            last = known[-1].sha if known else None
            since = last if last and git.has_commit(mirror, last, access=access) else None
            log = git.first_parent_log(mirror, head, since=since, access=access)
            seen = [CommitRow(0, c.sha, c.date.timestamp(), c.author, c.subject) for c in log]
            fresh = self.store.add_commits(project.name, seen)
            self._keep_numbered(mirror, fresh, access, op)
        self.store.update_state(project.name, head=head)
        return find(self.store.commits(project.name), head)

    def _keep_numbered(
        self, mirror: Path, fresh: list[CommitRow], access: git.Access, op: Reporter
    ) -> None:
        """Pin the newest of the commits just numbered in the mirror: they are all on its
        first-parent line, so one keep ref holds them all (one per commit would be 10,000
        git calls for an old repository). The op's log names the last ones numbered."""
        if not fresh:
            return
        git.keep(mirror, [fresh[-1].sha], access=access)
        if len(fresh) > LOGGED_NUMBERED:
            op.log(f"numbered #{fresh[0].n}-#{fresh[-1].n} ({len(fresh)} commits); the last:")
        for c in fresh[-LOGGED_NUMBERED:]:
            op.log(f"#{c.n} {c.short} {c.subject}")

    def _report_pinned(self, name: str, before: list[sshkeys.HostKey], op: Reporter) -> None:
        """A host key ssh pinned just now is told to the admin once, to compare with the
        fingerprints the git host publishes."""
        for key in sshkeys.pinned(self.settings.known_hosts(name)):
            if key not in before:
                text = tr(
                    "🔑 {name}: pinned the ssh host key of {host}: {kind} {fingerprint}",
                    name=name,
                    host=key.host,
                    kind=key.kind,
                    fingerprint=key.fingerprint,
                )
                op.step(text)
                self.outbox.publish(EventKind.HOST_PINNED, name, text, host=key.host)

    def head(self, project: Project) -> str:
        """The branch head on the remote (one ls-remote; the poller's check)."""
        env = self.store.env(project.name, "prod")
        return git.ls_remote(
            self.remote(project), project.branch, env=env, access=self.git_access(project.name)
        )

    def commit(self, project: Project, ref: str | None, op: Reporter) -> CommitRow:
        """The commit a number or SHA prefix names; the branch head (fetched) for None."""
        if ref is None:
            return self.sync(project, op)
        return find(self.store.commits(project.name), ref)

    # -- build ----------------------------------------------------------------------------

    def ensure_release(self, project: Project, commit: CommitRow, op: Reporter) -> Path:
        """The release folder of a commit: reused when ready, built (once) otherwise."""
        dest = self.release_path(project.name, commit.n, commit.sha)
        if build.is_ready(dest):
            op.step(tr("release #{n} is built already", n=commit.n))
            return dest
        if dest.exists():
            build.remove_release(dest)  # a leftover that never became ready
        op.step(tr("build #{n} {sha}", n=commit.n, sha=commit.short))
        env = self.store.env(project.name, "prod")
        access = self.git_access(project.name)
        git.fetch_commit(
            self.mirror(project.name),
            self.remote(project),
            commit.sha,
            env=env,
            cancel=op.cancel,
            access=access,
        )
        log_path = buildlogs.new_attempt(self.settings.layout, project.name, commit.n)
        release = Release(
            n=commit.n,
            sha=commit.sha,
            state="building",
            created=time.time(),
            log=str(log_path),
        )
        self.store.put_release(project.name, release)
        with self._build_slot(op):
            result = build.build_release(
                dest=dest,
                mirror=self.mirror(project.name),
                sha=commit.sha,
                python=self.settings.python,
                env=env,
                secrets=self.store.slot_secrets(project.name, "prod"),
                log_path=log_path,
                cache_dir=self.settings.layout.cache_dir,
                cancel=op.cancel,
                timeouts=self.timeouts,
                run_as=self.settings.run_as,
                git_access=access,
                installer="pip" if project.installer == "pip" else "auto",
                watch=step_watch(project, op),
            )
        return self._record_build(project, release, result, op)

    @contextmanager
    def _build_slot(self, op: Reporter) -> Iterator[None]:
        if not self.builds.acquire(blocking=False):
            op.step(tr("waiting for a build slot"))
            self.builds.acquire()
        try:
            yield
        finally:
            self.builds.release()

    def _record_build(
        self, project: Project, release: Release, result: build.BuildResult, op: Reporter
    ) -> Path:
        ok = result.state == "ready"
        done = release.with_(
            state=result.state,
            finished=time.time(),
            seconds=round(result.seconds, 2),
            installer=result.installer,
            steps=tuple(s.to_dict() for s in result.steps),
            error=result.error,
            size=folder_size(result.dest) if ok else 0,
        )
        self.store.put_release(project.name, done)
        if not ok:
            error = result.error_text or tr("unknown")
            self.outbox.publish(
                EventKind.BUILD_FAILED,
                project.name,
                tr(
                    "{name}: build of #{n} failed: {error}",
                    name=project.name,
                    n=release.n,
                    error=error,
                ),
                n=release.n,
            )
            raise BuildFailed(
                tr(
                    "build of #{n} {sha} failed: {error}",
                    n=release.n,
                    sha=release.short,
                    error=error,
                )
            )
        return result.dest

    # -- prod -----------------------------------------------------------------------------

    def deploy(self, name: str, ref: str | None, op: Reporter) -> Text:
        """Build (or reuse) a commit and put it live in prod, with the health window."""
        project = self.store.get_project(name)
        commit = self.commit(project, ref, op)
        self.ensure_release(project, commit, op)
        return self.go_live(project, commit, op, kind=EventKind.DEPLOYED)

    def rollback(self, name: str, ref: str, op: Reporter) -> Text:
        """Prod back to commit N: a link flip and a restart when it is built."""
        project = self.store.get_project(name)
        commit = find(self.store.commits(name), ref)
        self.ensure_release(project, commit, op)
        return self.go_live(project, commit, op, kind=EventKind.ROLLED_BACK)

    def go_live(
        self, project: Project, commit: CommitRow, op: Reporter, *, kind: EventKind
    ) -> Text:
        """Switch prod to a built release, restart, watch the health window; revert on a
        crash loop. `kind` (deployed, rolled back, promoted) is the event told at the end."""
        name = project.name
        dest = self.release_path(name, commit.n, commit.sha)
        before = self.store.state(name)
        previous = before.prod if before.prod != commit.n else before.prod_previous
        op.step(tr("switch prod to #{n}", n=commit.n))
        self._switch_prod(project, dest, commit.n, previous)
        evidence = self._watch(project, "prod", project.health_window, op)
        if evidence is not None and crash_looping(evidence):
            return self._revert(project, commit, previous, evidence, op)
        self.store.update_state(name, last_good=commit.n)
        text = tr(LIVE_TEXTS[kind], name=name, n=commit.n, sha=commit.short, subject=commit.subject)
        self.outbox.publish(kind, name, text, n=commit.n)
        self.prune(name, op)
        return text

    def _switch_prod(self, project: Project, dest: Path, n: int, previous: int | None) -> None:
        self.runner.switch(project, "prod", dest)
        state = self.store.update_state(
            project.name, prod=n, prod_previous=previous, prod_running=True
        )
        remade = apply_slot(self.settings, self.runner, project, state, "prod")
        # a program the runner has just made is starting from the new release already: a
        # restart now would stop it mid-start (and wait out its stop timeout)
        start_slot(self.runner, project.name, "prod", restart=not remade)

    def _watch(self, project: Project, slot: str, seconds: float, op: Reporter) -> Evidence | None:
        """Sample a slot for `seconds` (0: not at all); stops early on a crash loop."""
        if seconds <= 0:
            return None
        op.step(tr("health window {seconds} s", seconds=round(seconds)))
        watcher = Watcher(self.runner, self.settings, project.name, slot)
        deadline = time.monotonic() + seconds
        while True:
            evidence = watcher.sample()
            if crash_looping(evidence):
                return watcher.settle()  # the exits' events, for their real count
            if time.monotonic() >= deadline:
                return evidence
            if op.cancel.wait(self.sample_every):
                return evidence

    def _revert(
        self,
        project: Project,
        commit: CommitRow,
        previous: int | None,
        evidence: Evidence,
        op: Reporter,
    ) -> Text:
        name = project.name
        what = crash_text(evidence)
        failed = tr("#{release} crashed in prod: {what}", release=commit.n, what=what)
        prev = self.store.release(name, previous) if previous is not None else None
        if prev is None or not build.is_ready(self.release_path(name, prev.n, prev.sha)):
            # nothing to go back to: prod stays wanted, supervisord and then serve (FATAL:
            # a growing delay, 5 s … 5 min) go on starting it, as after the health window;
            # a bot whose network comes up later comes back by itself
            text = tr(
                "{name}: {failed}; no earlier release to go back to, so prod is started "
                "again and again with a growing delay; deploy a fix, or stop it",
                name=name,
                failed=failed,
            )
            self.outbox.publish(
                EventKind.CRASH_LOOP, name, text, n=commit.n, evidence=evidence.to_dict()
            )
            raise ControlPlaneError(text)
        op.step(tr("revert prod to #{n}", n=prev.n))
        self._switch_prod(
            project,
            self.release_path(name, prev.n, prev.sha),
            prev.n,
            self.store.state(name).prod_previous,
        )
        text = tr(
            "{name}: {failed}; reverted to #{n} {sha}",
            name=name,
            failed=failed,
            n=prev.n,
            sha=prev.short,
        )
        self.outbox.publish(EventKind.REVERTED, name, text, n=commit.n, evidence=evidence.to_dict())
        raise ControlPlaneError(text)

    # -- start, stop ------------------------------------------------------------------------

    def start(self, name: str, slot: str, op: Reporter) -> Text:
        return self._set_running(name, slot, True, op)

    def stop(self, name: str, slot: str, op: Reporter) -> Text:
        return self._set_running(name, slot, False, op)

    def restart(self, name: str, slot: str, op: Reporter, *, watch: bool = False) -> Text:
        """Restart a slot; `watch` (a restart for a change of prod's variables): with the
        health window, as after a deploy; a crash loop is told and raised (the variables
        stay as saved: there is no release to go back to)."""
        self._require_code(name, slot)
        state = self.store.update_state(name, **{f"{slot}_running": True})
        project = self.store.get_project(name)
        apply_slot(self.settings, self.runner, project, state, slot)
        start_slot(self.runner, name, slot, restart=True)
        op.step(tr("restarted {program}", program=program_name(name, slot)))
        evidence = self._watch(project, slot, project.health_window, op) if watch else None
        if evidence is not None and crash_looping(evidence):
            text = tr(
                "{name}: {slot} crash-loops after the variable change ({what}); "
                "fix the variables and restart",
                name=name,
                slot=slot,
                what=crash_text(evidence),
            )
            self.outbox.publish(EventKind.CRASH_LOOP, name, text, evidence=evidence.to_dict())
            raise ControlPlaneError(text)
        return tr("{name} {slot} restarted", name=name, slot=slot)

    def _require_code(self, name: str, slot: str) -> None:
        project = self.store.get_project(name)
        if (
            self.store.state(name).release(slot) is None
            and not self.settings.layout.slot_code(project, slot).is_dir()
        ):
            raise NotFound(
                tr("{name} has no {slot} release yet; deploy one first", name=name, slot=slot)
            )

    def _set_running(self, name: str, slot: str, running: bool, op: Reporter) -> Text:
        self._require_code(name, slot)
        state = self.store.update_state(name, **{f"{slot}_running": running})
        apply_slot(self.settings, self.runner, self.store.get_project(name), state, slot)
        program = program_name(name, slot)
        if running:
            start_slot(self.runner, name, slot, restart=False)
            op.step(tr("started {program}", program=program))
            return tr("{name} {slot} started", name=name, slot=slot)
        self.runner.stop(name, slot)
        op.step(tr("stopped {program}", program=program))
        return tr("{name} {slot} stopped", name=name, slot=slot)

    # -- prune, remove --------------------------------------------------------------------

    def prune(self, name: str, op: Reporter) -> list[int]:
        """Drop release folders beyond the newest `keep` (never a live or last-good one)."""
        project = self.store.get_project(name)
        state = self.store.state(name)
        releases = self.store.releases(name)
        gone = to_prune(releases, project.keep, state.pinned())
        if state.test is not None and state.test in gone:
            self._clear_test(project, state.test, op)
        for release in releases:
            if release.n not in gone:
                continue
            path = self.release_path(name, release.n, release.sha)
            self.runner.drop_release(project, path)
            build.remove_release(path)
            new_state = "pruned" if release.state == "ready" else release.state
            self.store.put_release(name, release.with_(state=new_state, size=0))
        buildlogs.remove(self.settings.layout, name, logs_to_prune(releases, project.keep, gone))
        if gone:
            shown = ", ".join(f"#{n}" for n in gone)
            op.step(ntr("pruned {releases}", "pruned {releases}", len(gone), releases=shown))
        return gone

    def _clear_test(self, project: Project, n: int, op: Reporter) -> None:
        """A stopped test slot whose release prune takes: discarded first (its verdict
        stays on the release record)."""
        self.runner.remove(project, "test")
        self.store.update_state(project.name, test=None, test_running=False, test_run=None)
        op.step(tr("test slot of #{n} discarded: its release is pruned", n=n))

    def state(self, name: str) -> SlotState:
        return self.store.state(name)

    # -- recovery -----------------------------------------------------------------------

    def recover(self) -> list[Text]:
        """After a crash: leftovers cleaned, cut-short work reported, links as the store says."""
        notes: list[Text] = []
        sup = self.runner.manager_pid()
        # without the runner's pid the running apps cannot be told apart: kill nothing
        spare = descendants(os.getpid(), sup) if sup is not None else None
        projects = self.store.list_projects()
        roots = {p.name: self.releases_dir(p.name) for p in projects}
        strays = kill_strays(roots, spare) if spare is not None else {}
        for project in projects:
            try:
                found = self._recover_project(project, strays.get(project.name, 0))
            except (ControlPlaneError, OSError) as exc:
                logger.exception("recovery of %s failed", project.name)
                why = exc.text if isinstance(exc, ControlPlaneError) else str(exc)
                found = [tr("{name}: recovery failed: {error}", name=project.name, error=why)]
            for note in found:
                self.outbox.publish(EventKind.INTERRUPTED, project.name, note)
            notes += found
        return notes

    def _recover_project(self, project: Project, killed: int) -> list[Text]:
        name = project.name
        notes: list[Text] = []
        if killed:
            notes.append(
                ntr(
                    "{name}: stopped {n} build process left by a crash",
                    "{name}: stopped {n} build processes left by a crash",
                    killed,
                    name=name,
                )
            )
        build.clean_leftovers(self.releases_dir(name))
        for release in self.store.releases(name):
            dest = self.release_path(name, release.n, release.sha)
            if release.state == "building" or (
                release.state == "ready" and not build.is_ready(dest)
            ):
                self.store.put_release(name, release.with_(state="failed", error="interrupted"))
                notes.append(
                    tr("{name}: build of #{n} was cut short by a restart", name=name, n=release.n)
                )
        state = self.store.state(name)
        if state.op:
            what = op_name(str(state.op.get("op")))
            notes.append(tr("{name}: {op} was cut short by a restart", name=name, op=what))
            state = self.store.update_state(name, op=None)
        run = state.test_run or {}
        if state.test_running and state.test_verdict is None:
            verdict = Verdict.interrupted(time.time()).to_dict()
            state = self.store.update_state(
                name, test_running=False, test_run={**run, "verdict": verdict}
            )
            notes.append(
                tr(
                    "{name}: the test of #{n} was cut short; its slot is stopped",
                    name=name,
                    n=state.test,
                )
            )
        self._recover_links(project, state)
        return notes

    def _recover_links(self, project: Project, state: SlotState) -> None:
        """Prod and test point at the releases the store says (those still on disk)."""
        for slot in SLOTS:
            n = state.release(slot)
            release = self.store.release(project.name, n) if n is not None else None
            if release is None:
                continue
            dest = self.release_path(project.name, release.n, release.sha)
            if build.is_ready(dest):
                self.runner.switch(project, slot, dest)
