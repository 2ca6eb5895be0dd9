"""The one executor of operations: one at a time per project, builds share a few slots.

`serve` owns one Executor; the CLI (through the control socket) and the bot hand it
operations through the service facade and follow their progress. An operation is a
function run in a worker thread; it reports progress on its Operation and returns the text
a person reads at the end (and may leave a typed `value` for callers in this process).
Nothing an operation raises leaves its thread: every failure becomes a failed operation.
Whether a project is busy is decided here alone: `submit` checks and claims the project
in one step under the executor's lock, so two requests (a deploy and a remove, say) can
never both pass.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from controlplane.domain.kinds import ProgressKind, op_name
from controlplane.errors import ControlPlaneError
from controlplane.i18n import Text, as_text, tr, verbatim

logger = logging.getLogger(__name__)

MAX_EVENTS = 500
KEEP_FINISHED = 100
WAITING_FOR_SLOT = tr("waiting for a build slot")

STEP, LOG = ProgressKind.STEP, ProgressKind.LOG
DONE, FAILED = ProgressKind.DONE, ProgressKind.FAILED
RUNNING, OK, FAILED_STATE, CANCELLED = "running", "ok", "failed", "cancelled"


def clock_text(epoch: float) -> str:
    """An epoch as local HH:MM:SS, the way busy messages show it."""
    return time.strftime("%H:%M:%S", time.localtime(epoch))


class Busy(ControlPlaneError):
    """The project already has an operation running; a new one is refused, never queued."""

    def __init__(self, project: str, op: str, since: float) -> None:
        super().__init__(tr("busy: {op} since {clock}", op=op_name(op), clock=clock_text(since)))
        self.project = project
        self.op = op
        self.since = since


class OperationFailed(ControlPlaneError):
    """An operation ended without success; `state` is "failed" or "cancelled"."""

    def __init__(self, op: str, project: str, state: str, text: Text | str) -> None:
        super().__init__(text)
        self.op = op
        self.project = project
        self.state = state


class OperationCancelled(ControlPlaneError):
    """Raised inside an operation that noticed its cancel request."""

    def __init__(self) -> None:
        super().__init__(tr("cancelled"))


class ShuttingDown(ControlPlaneError):
    """The executor is stopping and takes no new operations."""

    def __init__(self) -> None:
        super().__init__(tr("controlplane serve is shutting down; ask again once it is back"))


@dataclass(frozen=True)
class Progress:
    """One progress event of an operation; seq counts from 1 without gaps."""

    seq: int
    at: float
    text: str  # English, for the logs
    kind: ProgressKind
    msg: dict[str, object] | None = None  # the Text, as data (None for a line of output)

    @property
    def message(self) -> Text:
        """The step or outcome, to render in the reader's language; output verbatim."""
        return Text.from_dict(self.msg) if self.msg else verbatim(self.text)


def outcome(exc: BaseException, cancel_requested: bool) -> tuple[str, Text]:
    """The state and the text a person sees for an exception that ended an operation."""
    if isinstance(exc, OperationCancelled) or (
        cancel_requested and isinstance(exc, ControlPlaneError)
    ):
        return CANCELLED, tr("cancelled")
    if isinstance(exc, ControlPlaneError):
        return FAILED_STATE, exc.text
    return FAILED_STATE, tr(
        "internal error: {error}", error=verbatim(f"{type(exc).__name__}: {exc}")
    )


def _progress(seq: int, text: Text, kind: ProgressKind) -> Progress:
    msg = None if text.verbatim else text.to_dict()
    return Progress(seq, time.time(), str(text), kind, msg)


class Operation:
    """One running or finished operation: its state, result and progress events.

    Any number of followers may read the events from the start (as far as the last
    MAX_EVENTS go back) or from now; they wait on a condition, never poll.
    """

    def __init__(self, project: str, op: str, *, heavy: bool = False) -> None:
        self.project = project
        self.op = op
        self.heavy = heavy
        self.id = secrets.token_hex(4)
        self.since = time.time()
        self.state = RUNNING
        self.result = ""  # English, for the logs and callers in this process
        self.result_text: Text = verbatim("")  # the same, to render in a reader's language
        self.value: object = None  # what the operation produced, for callers in this process
        self.cancel = threading.Event()
        self.events: deque[Progress] = deque(maxlen=MAX_EVENTS)
        self._seq = 0
        self._cond = threading.Condition()

    def __repr__(self) -> str:
        return f"<Operation {self.id} {self.op} {self.project} {self.state}>"

    @property
    def done(self) -> bool:
        return self.state != RUNNING

    @property
    def ok(self) -> bool:
        return self.state == OK

    @property
    def last_seq(self) -> int:
        """The seq of the newest event; follow from now with `after=op.last_seq`."""
        with self._cond:
            return self._seq

    def step(self, text: Text | str) -> None:
        """Report the start of a named step ("fetch", "install requirements" ...)."""
        self._publish(as_text(text), STEP)

    def log(self, line: str) -> None:
        """Report one line of output (never translated)."""
        self._publish(verbatim(line.rstrip("\n")), LOG)

    def raise_if_cancelled(self) -> None:
        """Stop the operation here when someone asked to cancel it."""
        if self.cancel.is_set():
            raise OperationCancelled()

    def _publish(self, text: Text, kind: ProgressKind) -> None:
        with self._cond:
            self._seq += 1
            self.events.append(_progress(self._seq, text, kind))
            self._cond.notify_all()

    def _finish(self, state: str, text: Text | str) -> None:
        """Set the outcome and publish the last event, which wakes every follower."""
        message = as_text(text)
        with self._cond:
            self.state = state
            self.result_text = message
            self.result = str(message)
            self._seq += 1
            kind = DONE if state == OK else FAILED
            self.events.append(_progress(self._seq, message, kind))
            self._cond.notify_all()

    def events_after(self, after: int = 0) -> list[Progress]:
        """The kept events with seq > after (older ones may have been dropped)."""
        with self._cond:
            return [e for e in self.events if e.seq > after]

    def wait_events(self, after: int = 0, timeout: float | None = None) -> list[Progress]:
        """Block until there is an event with seq > after (or timeout); return them all."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after, timeout)
            return [e for e in self.events if e.seq > after]

    def follow(self, after: int = 0) -> Iterator[Progress]:
        """Yield events with seq > after in order, until the last one ("done" or "failed").

        after=0 follows from the start, after=op.last_seq from now.
        """
        while True:
            batch = self.wait_events(after)
            for event in batch:
                yield event
                if event.kind in (DONE, FAILED):
                    return
            if batch:
                after = batch[-1].seq

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the operation finished; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.state != RUNNING, timeout)

    def join(self) -> str:
        """Block until the operation finished: its result text when it succeeded, else
        OperationFailed carrying the state and the reason."""
        self.wait()
        if self.state != OK:
            raise OperationFailed(self.op, self.project, self.state, self.result_text)
        return self.result


class Executor:
    """Runs operations in worker threads: one per project, heavy ones up to heavy_limit."""

    def __init__(
        self, *, heavy_limit: int = 2, on_finish: Callable[[Operation], None] | None = None
    ) -> None:
        if heavy_limit < 1:
            raise ValueError(f"heavy_limit must be at least 1, not {heavy_limit}")
        self.heavy_limit = heavy_limit
        self.on_finish = on_finish
        self._lock = threading.Condition()
        self._active: dict[str, Operation] = {}
        self._recent: OrderedDict[str, Operation] = OrderedDict()
        self._threads: dict[str, threading.Thread] = {}
        self._heavy_running = 0
        self._closed = False

    def submit(
        self, project: str, op: str, fn: Callable[[Operation], Text | str], *, heavy: bool = False
    ) -> Operation:
        """Start fn for project at once in a worker thread; Busy when one runs already."""
        operation = Operation(project, op, heavy=heavy)
        with self._lock:
            if self._closed:
                raise ShuttingDown()
            current = self._active.get(project)
            if current is not None:
                raise Busy(project, current.op, current.since)
            self._active[project] = operation
            self._remember(operation)
            thread = threading.Thread(
                target=self._work, args=(operation, fn), name=f"op-{op}-{project}", daemon=True
            )
            self._threads[operation.id] = thread
            logger.info("operation %s: %s for %s started", operation.id, op, project)
            thread.start()  # under the lock, so shutdown never joins an unstarted thread
        return operation

    def _remember(self, operation: Operation) -> None:
        self._recent[operation.id] = operation
        while len(self._recent) > KEEP_FINISHED:
            oldest = next(iter(self._recent.values()))
            if not oldest.done:
                break
            self._recent.popitem(last=False)

    def _work(self, operation: Operation, fn: Callable[[Operation], Text | str]) -> None:
        """The worker thread: wait for a slot when heavy, run fn, record the outcome."""
        state = CANCELLED
        text_or_str: Text | str = tr("cancelled")
        try:
            if not operation.heavy:
                state, text_or_str = self._run(operation, fn)
            elif self._take_slot(operation):
                try:
                    state, text_or_str = self._run(operation, fn)
                finally:
                    self._give_slot()
        finally:
            self._end(operation, state, text_or_str)

    def _take_slot(self, operation: Operation) -> bool:
        """Wait for a build slot; False when cancelled while waiting."""
        with self._lock:
            if self._heavy_running >= self.heavy_limit:
                operation.step(WAITING_FOR_SLOT)
            self._lock.wait_for(
                lambda: self._heavy_running < self.heavy_limit or operation.cancel.is_set()
            )
            if operation.cancel.is_set():
                return False
            self._heavy_running += 1
            return True

    def _give_slot(self) -> None:
        with self._lock:
            self._heavy_running -= 1
            self._lock.notify_all()

    def _run(
        self, operation: Operation, fn: Callable[[Operation], Text | str]
    ) -> tuple[str, Text | str]:
        try:
            return OK, fn(operation)
        except BaseException as exc:  # nothing may escape a worker thread
            state, text = outcome(exc, operation.cancel.is_set())
            if not isinstance(exc, ControlPlaneError):
                logger.exception(
                    "operation %s: %s for %s crashed",
                    operation.id,
                    operation.op,
                    operation.project,
                )
            return state, text

    def _end(self, operation: Operation, state: str, text: Text | str) -> None:
        """Free the project before followers hear the end, so they may submit again."""
        with self._lock:
            self._active.pop(operation.project, None)
            self._threads.pop(operation.id, None)
        operation._finish(state, text)
        logger.info(
            "operation %s: %s for %s ended %s", operation.id, operation.op, operation.project, state
        )
        if self.on_finish is not None:
            try:
                self.on_finish(operation)
            except Exception:
                logger.exception("on_finish failed for operation %s", operation.id)

    def busy(self, project: str) -> Operation | None:
        """The operation running for project, if any."""
        with self._lock:
            return self._active.get(project)

    def get(self, op_id: str) -> Operation | None:
        """A running or recently finished operation by id."""
        with self._lock:
            return self._recent.get(op_id)

    def cancel(self, project: str) -> bool:
        """Ask the project's running operation to stop; False when none runs."""
        with self._lock:
            operation = self._active.get(project)
            if operation is None:
                return False
            operation.cancel.set()
            self._lock.notify_all()  # wakes it when it waits for a build slot
        logger.info("operation %s: cancel requested", operation.id)
        return True

    def running(self) -> list[Operation]:
        """Operations that have not finished, oldest first."""
        with self._lock:
            return sorted(self._active.values(), key=lambda o: o.since)

    def shutdown(self, wait: float) -> None:
        """Refuse new operations, cancel the running ones, join them for up to wait seconds."""
        with self._lock:
            self._closed = True
            for operation in self._active.values():
                operation.cancel.set()
            self._lock.notify_all()
            threads = list(self._threads.values())
        deadline = time.monotonic() + wait
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = [t.name for t in threads if t.is_alive()]
        if left:
            logger.warning("operations still running at shutdown: %s", ", ".join(left))
