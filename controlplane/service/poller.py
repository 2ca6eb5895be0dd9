"""The poller: when each project's branch is checked, what a check found, whom to tell.

Each project with a poll interval is checked on its own schedule (jittered, so projects
drift apart instead of polling in lock-step); one check is one `git ls-remote`, done by
the injected `check` function. Checks of due projects run concurrently, at most `limit`
at once. A failing project backs off exponentially; its outage is reported once when it
starts and once when it ends. A head that differs from the one recorded goes to
`on_new`; the first head ever seen is only recorded, because the engine numbers the
initial commits when a project is added.

Next-due times live in memory; at start (and whenever a project's interval changes) they
are computed from the persisted `SlotState.last_poll`, so a restart does not poll every
project at once.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from controlplane.adapters import git
from controlplane.adapters.store import Store
from controlplane.domain.backoff import delay, poll_wait
from controlplane.domain.events import EventSink
from controlplane.domain.history import SlotState
from controlplane.domain.kinds import EventKind
from controlplane.domain.models import Project
from controlplane.errors import ControlPlaneError, NotFound
from controlplane.i18n import Duration, Text, ntr, tr, verbatim
from controlplane.service.alarms import Alarms, Part

logger = logging.getLogger(__name__)

REASON_LIMIT = 300
MAX_ERROR_WAIT = 60.0

Check = Callable[[Project], str]
OnNew = Callable[[Project, str], None]
Redact = Callable[[str], str]


@dataclass(frozen=True)
class PollResult:
    """What one check of one project found."""

    project: str
    ok: bool
    head: str | None
    new: bool
    error: str | None
    at: float


def next_due(
    last: float | None, interval: int, failures: int, jitter_fraction: float, rnd: float
) -> float:
    """When a project is next due: never (inf) when polling is off; at once (-inf) when it
    was never polled; else `last` + backoff ± jitter_fraction·interval (rnd in [0, 1))."""
    if interval <= 0:
        return math.inf
    if last is None:
        return -math.inf
    return last + poll_wait(interval, failures, jitter=jitter_fraction, rnd=rnd)


def one_line(exc: BaseException, limit: int = REASON_LIMIT) -> str:
    """A failure in one line: git's own message, with its last output line when it has
    several; other exceptions carry their type, since str(KeyError) alone says little."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        text = type(exc).__name__
    elif len(lines) == 1:
        text = lines[0]
    else:
        text = f"{lines[0].rstrip(':')}: {lines[-1]}"
    if not isinstance(exc, ControlPlaneError):
        text = f"{type(exc).__name__}: {text}" if lines else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reason_text(exc: BaseException, redact: Redact, limit: int = REASON_LIMIT) -> Text:
    """A failure for a person, secrets hidden: our error's own message (to render in the
    reader's language) when it fits one line, else one_line's English verbatim."""
    if isinstance(exc, ControlPlaneError):
        english = str(exc).strip()
        if english and "\n" not in english and len(english) <= limit:
            return exc.text.redacted(redact)
    return verbatim(redact(one_line(exc, limit)))


class Poller:
    """Schedules, runs and records the checks of every project's branch."""

    def __init__(
        self,
        store: Store,
        outbox: EventSink,
        *,
        check: Check,
        on_new: OnNew,
        limit: int = 8,
        jitter: float = 0.1,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        alarms: Alarms | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        if not 0.0 <= jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1), not {jitter}")
        self.store = store
        self.outbox = outbox
        self.check = check
        self.on_new = on_new
        self.limit = limit
        self.jitter = jitter
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - spreading polls, not secrets
        self.alarms = alarms or Alarms(None)  # a round's or a record's failure, told grouped
        self._schedule: dict[str, tuple[int, float]] = {}  # name → (interval, due at)
        self._inflight: set[str] = set()  # checks started and not finished yet
        self._lock = threading.Lock()  # guards the three above and rng
        self._pool: ThreadPoolExecutor | None = None

    # -- schedule ------------------------------------------------------------------------

    def due(self, now: float) -> list[Project]:
        """Projects whose check is due at `now` (never those with polling off, nor those
        whose previous check is still running)."""
        projects = self.store.list_projects()
        with self._lock:
            names = {p.name for p in projects}
            for gone in set(self._schedule) - names:
                del self._schedule[gone]
            return [p for p in projects if p.name not in self._inflight and self._due_at(p) <= now]

    def next_poll(self, name: str) -> float | None:
        """When `name` is next checked (inf: never, -inf: at once); None if not scheduled yet."""
        with self._lock:
            entry = self._schedule.get(name)
        return entry[1] if entry else None

    def _due_at(self, project: Project) -> float:
        entry = self._schedule.get(project.name)
        if entry is None or entry[0] != project.poll:
            state = self.store.state(project.name)
            last = (state.last_poll or {}).get("at")
            due = next_due(last, project.poll, state.poll_failures, self.jitter, self.rng.random())
            entry = (project.poll, due)
            self._schedule[project.name] = entry
        return entry[1]

    # -- rounds --------------------------------------------------------------------------

    def poll_once(self, now: float | None = None) -> list[PollResult]:
        """Check every due project (at most `limit` at once), record and report the results;
        returns when all of them are done."""
        return [future.result() for future in self.start_due(now)]

    def start_due(self, now: float | None = None) -> list[Future[PollResult]]:
        """Start the checks of the due projects without waiting for them: a host that hangs
        until git's timeout holds up its own project only, never the others' schedules."""
        at = self.clock() if now is None else now
        projects = self.due(at)
        if not projects:
            return []
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.limit, thread_name_prefix="poll")
            self._inflight.update(p.name for p in projects)
            futures = [self._pool.submit(self._poll_and_reschedule, p, at) for p in projects]
        for project, future in zip(projects, futures, strict=True):
            future.add_done_callback(functools.partial(self._cancelled, project.name))
        return futures

    def _cancelled(self, name: str, future: Future[PollResult]) -> None:
        """A check dropped by close() before it started is no longer in flight."""
        if future.cancelled():
            with self._lock:
                self._inflight.discard(name)

    def run(self, stop: threading.Event, tick: float = 1.0) -> None:
        """Start due checks every `tick` until `stop` is set; a round that fails as a whole
        (the store unreadable, a bug) is reported, never fatal: the next waits a little longer."""
        logger.info("poller started: at most %d checks at once", self.limit)
        errors = 0
        while not stop.is_set():
            errors = 0 if self.round_once() else errors + 1
            wait = tick if errors == 0 else delay(min(errors, 10), base=tick, cap=MAX_ERROR_WAIT)
            stop.wait(wait)
        self.close()
        logger.info("poller stopped")

    def round_once(self, now: float | None = None) -> bool:
        """One round of `run`: start the due checks; False (and reported) when it failed."""
        try:
            self.start_due(now)
        except Exception as exc:
            self.alarms.report(Part.POLLER, exc)
            return False
        return True

    def close(self) -> None:
        """Drop checks not started yet; running ones finish and are recorded."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    # -- one project ---------------------------------------------------------------------

    def _poll_and_reschedule(self, project: Project, at: float) -> PollResult:
        """One project's check and bookkeeping, then its next due time; nothing escapes."""
        failures = 1
        try:
            result, failures = self._poll(project, at)
        except Exception as exc:
            did = tr(
                "Its result was not recorded; {name} is checked again at its next time.",
                name=project.name,
            )
            self.alarms.report(Part.POLLER, exc, did, project=project.name)
            result = PollResult(project.name, False, None, False, one_line(exc), at)
        finally:
            with self._lock:
                self._inflight.discard(project.name)
                due = next_due(at, project.poll, failures, self.jitter, self.rng.random())
                self._schedule[project.name] = (project.poll, due)
        return result

    def _poll(self, project: Project, at: float) -> tuple[PollResult, int]:
        prev = self.store.state(project.name)
        try:
            sha = self.check(project)
        except Exception as exc:
            return self._failed(project, prev, at, exc)
        return self._succeeded(project, prev, at, sha)

    def _succeeded(
        self, project: Project, prev: SlotState, at: float, sha: str
    ) -> tuple[PollResult, int]:
        # A new head goes to on_new before it is recorded: a crash in between means it is
        # handed over again after the restart, never lost; SlotState.head is still the old
        # head while on_new runs.
        new = prev.head is not None and sha != prev.head
        if new:
            self._hand_over(project, sha)
        recorded = self._record(
            project.name,
            head=sha,
            poll_failures=0,
            outage_since=None,
            last_poll={"at": at, "ok": True, "head": sha, "error": None},
        )
        if recorded and prev.poll_failures:
            self._report_recovery(project, prev, at)
        return PollResult(project.name, True, sha, new, None, at), 0

    def _failed(
        self, project: Project, prev: SlotState, at: float, exc: Exception
    ) -> tuple[PollResult, int]:
        redact = self._redactor(project)
        reason, message = redact(one_line(exc)), reason_text(exc, redact)
        failures = prev.poll_failures + 1
        record = {"at": at, "ok": False, "head": None, "error": reason, "msg": message.to_dict()}
        changes: dict[str, Any] = {"poll_failures": failures, "last_poll": record}
        starts = prev.poll_failures == 0
        if starts:
            changes["outage_since"] = at
        recorded = self._record(project.name, **changes)
        logger.warning("poll of %s failed (%d in a row): %s", project.name, failures, reason)
        if recorded and starts:
            self.outbox.publish(
                EventKind.POLL_OUTAGE,
                project.name,
                tr(
                    "{name}: cannot check branch {branch}: {reason}. "
                    "Retrying with backoff; I will say when it works again.",
                    name=project.name,
                    branch=project.branch,
                    reason=message,
                ),
                reason=reason,
                branch=project.branch,
            )
        return PollResult(project.name, False, None, False, reason, at), failures

    def _record(self, name: str, **changes: Any) -> bool:
        """Write a check's outcome, unless the project was removed while it ran."""
        with self.store.transaction():
            try:
                self.store.get_project(name)
            except NotFound:
                logger.info("%s was removed while it was checked; result dropped", name)
                return False
            self.store.update_state(name, **changes)
        return True

    def _report_recovery(self, project: Project, prev: SlotState, at: float) -> None:
        since = prev.outage_since if prev.outage_since is not None else at
        down = max(at - since, 0.0)
        self.outbox.publish(
            EventKind.POLL_RECOVERED,
            project.name,
            ntr(
                "{name}: checking branch {branch} works again after {duration} ({n} failed check).",
                "{name}: checking branch {branch} works again after {duration} "
                "({n} failed checks).",
                prev.poll_failures,
                name=project.name,
                branch=project.branch,
                duration=Duration(down),
            ),
            down=down,
            failures=prev.poll_failures,
            branch=project.branch,
        )

    def _hand_over(self, project: Project, sha: str) -> None:
        """Call on_new; its failure is logged and reported, never raised."""
        logger.info("new head of %s %s: %s", project.name, project.branch, sha[:7])
        try:
            self.on_new(project, sha)
        except Exception as exc:
            logger.exception("handling new commit %s of %s failed", sha[:7], project.name)
            redact = self._redactor(project)
            reason = redact(one_line(exc))
            try:
                self.outbox.publish(
                    EventKind.ERROR,
                    project.name,
                    tr(
                        "{name}: new commit {sha} on {branch} was seen but could not be "
                        "handled: {reason}",
                        name=project.name,
                        sha=sha[:7],
                        branch=project.branch,
                        reason=reason_text(exc, redact),
                    ),
                    sha=sha,
                    reason=reason,
                )
            except Exception:
                logger.exception("could not report the failure for %s", project.name)

    def _redactor(self, project: Project) -> Redact:
        """What hides the project's repository credential and prod secrets (a proxy URL
        with a password)."""
        secrets: list[str] = []
        try:
            auth = self.store.repo_auth(project.name)
            if auth:
                secrets += [auth, *auth.split(":")]
            secrets += self.store.slot_secrets(project.name, "prod")
        except Exception:
            logger.exception("cannot read the secrets of %s to hide them", project.name)
        return git.redactor(secrets)
