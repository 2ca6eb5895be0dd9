"""Operations as requests: validated, handed to the one executor, tracked in the store.

Both faces call this: serve's local socket (for the CLI) and, in the same process, the
Telegram bot. A request names an operation, a project and its arguments; every argument
is validated before anything starts, and the operation then runs in the executor (one
per project at a time). Its start is written to the project's state, so an operation cut
short by a crash is reported after the restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controlplane.domain.kinds import EventKind, OpKind
from controlplane.domain.models import Project, parse_duration, validate_name, validate_slot
from controlplane.engine.releases import Engine
from controlplane.engine.testrun import TestRuns
from controlplane.errors import NotFound, ValidationError
from controlplane.service.executor import Busy, Executor, Operation

logger = logging.getLogger(__name__)

DEFAULT_TEST_SECONDS = 60
Work = Callable[[Operation], str]


@dataclass(frozen=True)
class Request:
    """A checked request: the operation, its project, and clean arguments."""

    op: str
    project: str
    args: dict[str, Any]


def _commit_arg(args: dict[str, Any]) -> str | None:
    value = args.get("commit")
    if value in (None, ""):
        return None
    from controlplane.domain.history import parse_ref

    parse_ref(str(value))
    return str(value)


def _slot_arg(args: dict[str, Any]) -> str:
    return validate_slot(str(args.get("slot", "prod")))


def _seconds_arg(args: dict[str, Any], key: str, default: int) -> int:
    raw = args.get(key)
    if raw in (None, ""):
        return default
    return parse_duration(str(raw), field_name=key, low=5, high=7 * 86400)


OPS = (
    OpKind.DEPLOY,
    OpKind.TEST,
    OpKind.PROMOTE,
    OpKind.DISCARD,
    OpKind.ROLLBACK,
    OpKind.START,
    OpKind.STOP,
    OpKind.RESTART,
    OpKind.SYNC,
    OpKind.PRUNE,
)


def check_request(op: str, project: str | None, args: dict[str, Any]) -> Request:
    """Validate a request's fields (pure); raises ValidationError naming what is accepted."""
    if op not in OPS:
        raise ValidationError("operation", op, "use one of " + ", ".join(OPS))
    name = validate_name(project or "")
    clean: dict[str, Any] = {}
    if op in (OpKind.DEPLOY, OpKind.TEST, OpKind.ROLLBACK):
        clean["commit"] = _commit_arg(args)
    if op == OpKind.ROLLBACK and clean["commit"] is None:
        raise ValidationError("commit", "", "rollback needs a commit number, like 3")
    if op == OpKind.TEST:
        clean["duration"] = _seconds_arg(args, "duration", 0)
    if op in (OpKind.START, OpKind.STOP, OpKind.RESTART):
        clean["slot"] = _slot_arg(args)
    if op == OpKind.PROMOTE:
        clean["force"] = bool(args.get("force", False))
    return Request(op=op, project=name, args=clean)


class Service:
    """Turns requests into operations of the engine and the test runs."""

    def __init__(self, engine: Engine, tests: TestRuns, executor: Executor) -> None:
        self.engine = engine
        self.tests = tests
        self.executor = executor
        self.store = engine.store
        self._pending: dict[str, str] = {}
        self._lock = threading.Lock()
        executor.on_finish = self.on_finish

    def work(self, req: Request) -> Work:
        """The function the executor runs for a request."""
        e, t, a, name = self.engine, self.tests, req.args, req.project
        table: dict[str, Work] = {
            "deploy": lambda op: e.deploy(name, a["commit"], op),
            "test": lambda op: t.test(
                name, a["commit"], a["duration"] or self.store.get_project(name).test_duration, op
            ),
            "promote": lambda op: t.promote(name, op, force=a["force"]),
            "discard": lambda op: t.discard(name, op),
            "rollback": lambda op: e.rollback(name, a["commit"], op),
            "start": lambda op: e.start(name, a["slot"], op),
            "stop": lambda op: e.stop(name, a["slot"], op),
            "restart": lambda op: e.restart(name, a["slot"], op),
            "sync": lambda op: self._sync(name, op),
            "prune": lambda op: self._prune(name, op),
        }
        return table[req.op]

    def _sync(self, name: str, op: Operation) -> str:
        head = self.engine.sync(self.store.get_project(name), op)
        return f"{name}: head is #{head.n} {head.short} {head.subject}"

    def _prune(self, name: str, op: Operation) -> str:
        gone = self.engine.prune(name, op)
        return f"{name}: pruned {len(gone)} releases"

    def submit(self, op: str, project: str | None, args: dict[str, Any]) -> Operation:
        """Validate, then run in the executor; Busy at once when the project is busy."""
        req = check_request(op, project, args)
        self.store.get_project(req.project)
        work = self.work(req)

        def tracked(operation: Operation) -> str:
            self.store.update_state(req.project, op={"op": req.op, "since": time.time()})
            try:
                return work(operation)
            finally:
                self.store.update_state(req.project, op=None)

        return self.executor.submit(req.project, req.op, tracked)

    # -- new commits (the poller) ------------------------------------------------------

    def on_new_commit(self, project: Project, sha: str) -> None:
        """A new head: number it, then notify, test, or test and promote (the policy).
        A busy project takes it up as soon as its operation ends."""
        try:
            self.executor.submit(project.name, OpKind.NEW_COMMIT, lambda op: self._new(project, op))
        except Busy:
            with self._lock:
                self._pending[project.name] = sha
            logger.info("%s is busy; new commit %s waits for it", project.name, sha[:7])

    def on_finish(self, operation: Operation) -> None:
        """The executor's hook: hand over a new commit that waited for the project."""
        with self._lock:
            sha = self._pending.pop(operation.project, None)
        if sha is not None:
            try:
                project = self.store.get_project(operation.project)
            except NotFound:
                return
            self.on_new_commit(project, sha)

    def _new(self, project: Project, op: Operation) -> str:
        name = project.name
        head = self.engine.sync(project, op)
        text = f"{name}: new commit #{head.n} {head.short} on {project.branch}: {head.subject}"
        self.engine.outbox.publish(
            EventKind.NEW_COMMIT, name, text, n=head.n, policy=project.policy
        )
        if project.policy == "notify":
            return text
        verdict = self.tests.test(name, str(head.n), project.test_duration, op)
        if project.policy == "promote":
            return self.tests.promote(name, op)
        return verdict

    def handle(self, request: dict[str, Any]) -> Operation | dict[str, Any]:
        """The local socket's handler: operations, plus cancel and extend answered at once."""
        op, project, args = request["op"], request.get("project"), request.get("args") or {}
        if op == OpKind.CANCEL:
            name = validate_name(project or "")
            if not self.executor.cancel(name):
                raise NotFound(f"nothing is running for {name}")
            return {"ok": True, "text": f"{name}: cancel requested"}
        if op == OpKind.EXTEND:
            name = validate_name(project or "")
            seconds = _seconds_arg(args, "seconds", DEFAULT_TEST_SECONDS)
            return {"ok": True, "text": self.tests.extend(name, seconds)}
        return self.submit(op, project, args)
