"""The one facade both faces call: operations, configuration and queries.

The bot (in serve's process) and the CLI (through serve's control socket, or on the store
directly) reach the engine, observe and the adapters only through `Service`, and import
from here the types they render. Two ways to make one:

- `Service.open(settings)`: the store only, no thread, for the CLI's reading and
  configuration commands (`service.config`, `service.query`), also while serve is down;
- serve wires one with a `Runtime` (the engine, test runs, the executor, the outbox):
  operations then run in the executor, one per project at a time, and whether a project
  is busy is decided there (deploy, test, promote, discard, rollback, start, stop,
  restart, add, launch, remove). A request is validated before anything starts; an
  engine operation's start is written to the project's state, so one cut short by a
  crash is reported after the restart.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from controlplane.adapters.secrets import Redactor
from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.client import Supervisor
from controlplane.domain.events import Event
from controlplane.domain.history import CommitRow, Release, SlotState
from controlplane.domain.kinds import EventKind
from controlplane.domain.models import Project, validate_name
from controlplane.errors import ControlPlaneError, NotFound
from controlplane.i18n import Text, as_text, join, ntr, tr
from controlplane.service import newcommits
from controlplane.service.alarms import Alarms
from controlplane.service.configure import (
    Clients,
    Configuration,
    DeployKey,
    NewProject,
    launch_name,
)
from controlplane.service.executor import (
    CANCELLED,
    OK,
    RUNNING,
    Busy,
    Executor,
    Operation,
    OperationFailed,
    Progress,
)
from controlplane.service.launching import LaunchPlan, apply_plan, check_launch, plan_from_args
from controlplane.service.outbox import KEEP_EVENTS, Outbox, Subscriber
from controlplane.service.queries import LoadReport, LogReader, Queries
from controlplane.service.requests import (
    DEFAULT_TEST_SECONDS,
    Op,
    Request,
    ServeDown,
    check_request,
    seconds_arg,
)
from controlplane.settings import Settings

if TYPE_CHECKING:
    from controlplane.adapters.sshkeys import HostKey as HostKey
    from controlplane.engine.releases import Engine
    from controlplane.engine.testrun import TestRuns
    from controlplane.service.nodes import Nodes

__all__ = [
    "CANCELLED",
    "OK",
    "RUNNING",
    "Added",
    "Adding",
    "Busy",
    "CommitRow",
    "DeployKey",
    "Event",
    "LaunchPlan",
    "LoadReport",
    "LogReader",
    "NewProject",
    "Op",
    "Operation",
    "OperationFailed",
    "Progress",
    "Project",
    "Redactor",
    "Release",
    "Runtime",
    "ServeDown",
    "Service",
    "SlotState",
    "check_launch",
    "launch_name",
]

logger = logging.getLogger(__name__)

Work = Callable[[Operation], Text | str]


@dataclass(frozen=True)
class Runtime:
    """What operations need, wired by serve (the only place that builds these)."""

    engine: Engine
    tests: TestRuns
    executor: Executor
    outbox: Outbox
    alarms: Alarms  # serve's errors, told to the admins grouped


@dataclass(frozen=True)
class Added:
    """A project added: its commits numbered, with warnings a person should read."""

    project: Project
    head: CommitRow
    warnings: tuple[Text, ...]
    moved: Text | None = None  # a folder taken over: what moved to which backup


@dataclass(frozen=True)
class Adding:
    """A project being added: the operation that asks the remote, writes it and numbers
    its commits (on failure it is removed again and the reason raised)."""

    new: NewProject
    operation: Operation

    def result(self) -> Added:
        """Wait for the end: what was added, or OperationFailed."""
        self.operation.join()
        added = self.operation.value
        assert isinstance(added, Added)
        return added


def numbered(head: CommitRow) -> Text:
    """What adding a project found: its commits numbered, the head."""
    return ntr(
        "numbered {n} commit; head #{n} {sha} {subject}",
        "numbered {n} commits; head #{n} {sha} {subject}",
        head.n,
        sha=head.short,
        subject=head.subject,
    )


def answered(text: Text) -> dict[str, Any]:
    """A request answered at once (cancel, extend): English for the logs, the Text as data."""
    return {"ok": True, "text": str(text), "msg": text.to_dict()}


class Service:
    """Operations, configuration (`config`) and queries (`query`) of both faces."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        runtime: Runtime | None = None,
        *,
        clients: Clients | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clients: Clients = clients or (lambda timeout: Supervisor(settings, timeout=timeout))
        self.config = Configuration(settings, store, self.clients)
        self.query = Queries(settings, store, self.clients)
        self._runtime = runtime
        self._pending: dict[str, tuple[str, int | None]] = {}  # sha, last noticed
        self._lock = threading.Lock()
        self._redactor: tuple[object, Redactor] | None = None
        if runtime is not None:
            runtime.executor.on_finish = self.on_finish

    @classmethod
    def open(cls, settings: Settings) -> Service:
        """The store-only facade: reading and configuration, no thread started."""
        return cls(settings, Store.open(settings))

    @functools.cached_property
    def nodes(self) -> Nodes:
        """The swarm's nodes, when DOCKER_HOST or the socket reaches one (imported on first
        use: a CLI command that does not ask pays nothing for it)."""
        from controlplane.service.nodes import Nodes

        return Nodes()

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise ServeDown()
        return self._runtime

    @property
    def executor(self) -> Executor:
        return self.runtime.executor

    @property
    def alarms(self) -> Alarms:
        """Where an error caught in serve is reported (logged only without serve's parts)."""
        return self._runtime.alarms if self._runtime is not None else Alarms(None)

    # -- operations of the engine ------------------------------------------------------------

    def submit(self, op: str, project: str | None, args: dict[str, Any]) -> Operation:
        """Validate, then run in the executor; Busy at once when the project is busy."""
        req = check_request(op, project, args)
        self.store.get_project(req.project)
        work = self._work(req)

        def tracked(operation: Operation) -> Text | str:
            self.store.update_state(req.project, op={"op": req.op, "since": time.time()})
            try:
                return work(operation)
            finally:
                self.store.update_state(req.project, op=None)

        return self.executor.submit(req.project, req.op, tracked)

    def _work(self, req: Request) -> Work:
        """The function the executor runs for a request."""
        e, t, a, name = self.runtime.engine, self.runtime.tests, req.args, req.project
        table: dict[Op, Work] = {
            Op.DEPLOY: lambda op: e.deploy(name, a["commit"], op),
            Op.TEST: lambda op: t.test(
                name, a["commit"], a["duration"] or self.store.get_project(name).test_duration, op
            ),
            Op.PROMOTE: lambda op: t.promote(name, op, force=a["force"]),
            Op.DISCARD: lambda op: t.discard(name, op),
            Op.ROLLBACK: lambda op: e.rollback(name, a["commit"], op),
            Op.START: lambda op: e.start(name, a["slot"], op),
            Op.STOP: lambda op: e.stop(name, a["slot"], op),
            Op.RESTART: lambda op: e.restart(name, a["slot"], op, watch=a.get("watch", False)),
            Op.SYNC: lambda op: self._sync(name, op),
            Op.PRUNE: lambda op: self._prune(name, op),
            Op.MOVE: lambda op: self._move(name, a["runner"], op),
            Op.PLACE: lambda op: self._place(name, a["placement"], op),
        }
        return table[req.op]

    def _sync(self, name: str, op: Operation) -> Text:
        head = self.runtime.engine.sync(self.store.get_project(name), op)
        return tr(
            "{name}: head is #{n} {sha} {subject}",
            name=name,
            n=head.n,
            sha=head.short,
            subject=head.subject,
        )

    def _move(self, name: str, runner: str, op: Operation) -> Text:
        from controlplane.engine import move  # serve's only: the CLI never runs it here

        return move.move(self.runtime.engine, name, runner, op)

    def _place(self, name: str, placement: list[str], op: Operation) -> Text:
        from controlplane.engine import move

        return move.set_placement(self.runtime.engine, name, placement, op)

    def _prune(self, name: str, op: Operation) -> Text:
        gone = self.runtime.engine.prune(name, op)
        return ntr(
            "{name}: pruned {n} release", "{name}: pruned {n} releases", len(gone), name=name
        )

    def cancel(self, name: str) -> None:
        """Ask the project's running operation to stop; NotFound when none runs."""
        name = validate_name(name)
        if not self.executor.cancel(name):
            raise NotFound(tr("nothing is running for {name}", name=name))

    def extend(self, name: str, seconds: int = DEFAULT_TEST_SECONDS) -> Text:
        """Give a running test more time; NotFound when no test runs."""
        return as_text(self.runtime.tests.extend(validate_name(name), seconds))

    # -- add, launch, remove: operations too ------------------------------------------------

    def add(self, new: NewProject) -> Adding:
        """Add a checked project in the executor (Busy when its name is busy): the remote
        asked, one write, then its last commits fetched and numbered."""
        op = Op.LAUNCH if new.kind == "launch" else Op.ADD
        return Adding(new, self.executor.submit(new.name, op, lambda o: self._add(new, o)))

    def launch(self, plan: LaunchPlan) -> Adding:
        """A third-party repository as a project (not run yet), with the variables and
        settings the admin gave before its first run (service/launching.py)."""
        return Adding(
            plan.new,
            self.executor.submit(plan.new.name, Op.LAUNCH, lambda o: self._add(plan.new, o, plan)),
        )

    def _add(self, new: NewProject, op: Operation, plan: LaunchPlan | None = None) -> Text:
        op.step(tr("check the repository"))
        project = self.config.write_new(new)
        try:
            moved = self.config.take_over(new)  # after the remote said yes, never before
            if moved is not None:
                op.step(moved)
            if plan is not None:
                apply_plan(self.store, plan)
                project = self.store.get_project(new.name)
            head = self.runtime.engine.sync(project, op)
        except BaseException:
            self.config.undo_new(new.name)
            raise
        op.value = Added(project, head, new.warnings, moved)
        return numbered(head) if moved is None else join([moved, numbered(head)], "\n")

    def remove(self, name: str) -> Operation:
        """Remove a project in the executor: refused (Busy) while an operation runs for
        it, and nothing else starts for it until it is gone."""
        name = validate_name(name)
        self.store.get_project(name)
        return self.executor.submit(name, Op.REMOVE, lambda op: self._remove(name, op))

    def _remove(self, name: str, op: Operation) -> Text:
        op.step(tr("remove {name}", name=name))
        self._remove_services(name, op)
        project = self.config.remove_files(name)
        return tr(
            "removed {name}; files in {folder} that were not ours are untouched",
            name=name,
            folder=project.path,
        )

    def _remove_services(self, name: str, op: Operation) -> None:
        """A project on the swarm: its services (and their secrets) go first; a swarm
        that does not answer is said, and the project is removed all the same."""
        project = self.store.get_project(name)
        if project.runner == "local" or self._runtime is None:
            return
        try:
            for slot in ("prod", "test"):
                self._runtime.engine.runner.remove(project, slot)
        except ControlPlaneError as exc:
            op.step(tr("its swarm services stay: {reason}", reason=exc.text))
        forget = getattr(self._runtime.engine.runner, "forget", None)
        if forget is not None:  # serve's router: a project of this name is new again
            forget(name)

    # -- new commits (the poller) ------------------------------------------------------------

    def on_new_commit(self, project: Project, sha: str, last: int | None = None) -> None:
        """A new head: number it, then notify, test, or test and promote (the policy).
        A busy project takes it up as soon as its operation ends. The notice names the
        commits after #last (the previous notice's; found now, while the poller has not
        recorded the new head yet)."""
        if last is None:
            last = self._last_noticed(project.name)
        try:
            self.executor.submit(
                project.name, Op.NEW_COMMIT, lambda op: self._new(project, op, last)
            )
        except Busy:
            with self._lock:
                self._pending[project.name] = (sha, last)
            logger.info("%s is busy; new commit %s waits for it", project.name, sha[:7])

    def on_finish(self, operation: Operation) -> None:
        """The executor's hook: hand over a new commit that waited for the project."""
        with self._lock:
            waiting = self._pending.pop(operation.project, None)
        if waiting is not None:
            try:
                project = self.store.get_project(operation.project)
            except NotFound:
                return
            self.on_new_commit(project, *waiting)

    def _new(self, project: Project, op: Operation, last: int | None) -> Text | str:
        name, engine, tests = project.name, self.runtime.engine, self.runtime.tests
        head = engine.sync(project, op)
        commits = newcommits.since(self.store.commits(name), last, head)
        said = newcommits.notice(name, project.branch, project.policy, commits, self.redactor())
        self.runtime.outbox.publish(EventKind.NEW_COMMIT, name, said.text, **said.data)
        if project.policy == "notify":
            return said.text
        auto = project.policy == "promote"
        verdict = tests.test(name, str(head.n), project.test_duration, op, then_promote=auto)
        if auto:
            return tests.promote(name, op)
        return verdict

    def _last_noticed(self, name: str) -> int | None:
        """The commit the previous new-commit notice named; else the head's number as it
        was before this fetch (the notice names what came since)."""
        noticed = newcommits.last_noticed(self.runtime.outbox.recent(name, limit=KEEP_EVENTS))
        if noticed is not None:
            return noticed
        head = self.store.state(name).head
        return next((c.n for c in self.store.commits(name) if c.sha == head), None)

    # -- events and secrets --------------------------------------------------------------------

    def subscribe(self, fn: Subscriber) -> None:
        """Call fn with every event published from now on (in the publisher's thread)."""
        self.runtime.outbox.subscribe(fn)

    def unsubscribe(self, fn: Subscriber) -> None:
        self.runtime.outbox.unsubscribe(fn)

    def pending_events(self, consumer: str) -> list[Event]:
        """Events `consumer` has not acknowledged, oldest first."""
        return self.runtime.outbox.pending(consumer)

    def ack_event(self, consumer: str, seq: int) -> None:
        self.runtime.outbox.ack(consumer, seq)

    def redactor(self, also: Iterable[str] = ()) -> Redactor:
        """Every secret value in the store (and `also`), refreshed when the store changes."""
        try:
            st = os.stat(self.store.path)
            stamp: object = (st.st_ino, st.st_mtime_ns, tuple(also))
        except FileNotFoundError:
            stamp = (0, 0, tuple(also))
        with self._lock:
            if self._redactor is None or self._redactor[0] != stamp:
                redactor = Redactor(self.store.all_secret_values())
                redactor.add([v for v in also if v])
                self._redactor = (stamp, redactor)
            return self._redactor[1]

    # -- the control socket ------------------------------------------------------------------

    def handle(self, request: dict[str, Any]) -> Operation | dict[str, Any]:
        """The control socket's handler (and the CLI's, in its own process while serve is
        down): operations to follow, plus cancel and extend answered at once."""
        op, project, args = request["op"], request.get("project"), request.get("args") or {}
        if op == Op.CANCEL:
            self.cancel(project or "")
            return answered(tr("{name}: cancel requested", name=project))
        if op == Op.EXTEND:
            seconds = seconds_arg(args, "seconds", DEFAULT_TEST_SECONDS)
            return answered(self.extend(project or "", seconds))
        if op == Op.REMOVE:
            return self.remove(project or "")
        if op in (Op.ADD, Op.LAUNCH):
            return self._add_request(op, project, args).operation
        return self.submit(op, project, args)

    def _add_request(self, op: str, project: str | None, args: dict[str, Any]) -> Adding:
        def arg(key: str) -> str | None:
            value = args.get(key)
            return None if value in (None, "") else str(value)

        if op == Op.LAUNCH:
            return self.launch(plan_from_args(self.config, project, args))
        repo, path, entry = arg("repo") or "", arg("path"), arg("entry") or "main.py"
        new = self.config.check_new(
            name=project or "",
            repo=repo,
            path=path or "",
            branch=arg("branch") or "main",
            entry=entry,
            take_over=bool(args.get("take_over")),
        )
        return self.add(new)
