"""`controlplane serve`, the composition root: the only place that wires the engine, the
outbox, the executor, the facade, the control socket, the poller and the bot together.

On start it writes every slot's program file from the store, removes files of projects
that are gone, and applies the difference (unchanged groups, and so running apps, are
left alone). Then it loops: it reads the state changes the event listener appends to
logs/events.jsonl, and starts again, with a growing delay, any program of ours that
supervisord gave up on (FATAL). An error in a pass (a damaged store at reconcile, a bug)
is logged with its traceback and told to the admins, grouped (service/alarms.py), and the
loop goes on. First SIGTERM stops the loop; a second exits at once.
`local_service` wires the same parts in the CLI's process while serve is down, for the
operations that may run there (add, launch, remove).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from controlplane.adapters.routing import RoutingRunner, make_swarm
from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.client import (
    ProgramOptions,
    RPCFault,
    Supervisor,
    UpdatePlan,
    confd_programs,
    is_ours,
    parse_program,
    program_name,
    remove_program,
    stale_programs,
    write_program,
)
from controlplane.adapters.supervisor.confread import files_read
from controlplane.adapters.supervisor.events import EventTail
from controlplane.adapters.supervisor.links import mark_links_restored
from controlplane.adapters.supervisor.runner import SupervisorRunner
from controlplane.domain.backoff import delay
from controlplane.domain.kinds import EventKind
from controlplane.domain.models import SLOTS
from controlplane.engine.releases import Engine
from controlplane.engine.testrun import TestRuns
from controlplane.errors import ControlPlaneError, SupervisorError
from controlplane.i18n import tr
from controlplane.observe.load import Probe, Sampler, supervisor_source
from controlplane.service.alarms import Alarms, Part
from controlplane.service.botlife import BotWatch, Runner, StateSink, redact_logs, redactor
from controlplane.service.configure import slot_options
from controlplane.service.control import ControlServer
from controlplane.service.executor import Executor
from controlplane.service.facade import Runtime, Service
from controlplane.service.outbox import Outbox
from controlplane.service.poller import Poller
from controlplane.service.safemode import open_store
from controlplane.service.storecheck import Problem
from controlplane.settings import Settings

logger = logging.getLogger(__name__)

RETRY_BASE = 5.0
RETRY_CAP = 300.0
LOOP_INTERVAL = 0.5
RECONCILE_RETRY = 10.0


def reconcile_once(
    settings: Settings,
    store: Store,
    client: Supervisor,
    options: ProgramOptions | None = None,
) -> UpdatePlan:
    """Program files from the store (slots on this box whose code exists), stale ones
    removed, applied.
    When no file changed and supervisord has read conf.d as it is (confread.py), nothing
    is reloaded: supervisord's reloadConfig takes seconds with 1,000 programs."""
    wanted: list[str] = []
    changed = False
    for project in store.list_projects():
        if project.runner != "local":
            continue  # its slots run on the swarm: no program here (a stale one goes)
        for slot in SLOTS:
            if settings.layout.slot_code(project, slot).exists():
                opts = slot_options(store, project.name, slot, options)
                changed |= write_program(settings, project, slot, options=opts)
                wanted.append(program_name(project.name, slot))
    for program in stale_programs(confd_programs(settings), wanted):
        name, _, slot = program.rpartition("-")
        changed |= remove_program(settings, name, slot)
    if not changed and loaded(settings, client, wanted):
        logger.info("conf.d unchanged and read by supervisord: nothing to reload")
        return UpdatePlan()
    return client.apply()


def loaded(settings: Settings, client: Supervisor, wanted: list[str]) -> bool:
    """Whether supervisord has read conf.d as it is and runs a group for every wanted
    program (else a reload is due)."""
    if not files_read(settings.supervisor_dir, settings.confd, int(client.call("getPID"))):
        return False
    return set(wanted) <= {info.name for info in client.all_info()}


def next_delay(attempt: int, base: float = RETRY_BASE, cap: float = RETRY_CAP) -> float:
    """The wait before retry number `attempt` (0-based): base, 2·base, 4·base … at most cap."""
    return delay(attempt, base=base, cap=cap)


@dataclass
class RetryRecord:
    """One start that serve tried after supervisord gave up on a program."""

    program: str
    attempt: int
    at: float
    error: str | None = None


@dataclass
class FatalRetry:
    """Restarts FATAL programs of ours with a growing delay; forgets them once RUNNING."""

    base: float = RETRY_BASE
    cap: float = RETRY_CAP
    attempts: dict[str, int] = field(default_factory=dict)
    due: dict[str, float] = field(default_factory=dict)
    history: list[RetryRecord] = field(default_factory=list)

    def observe(self, group: str, state: str, now: float) -> None:
        """Take one state change of a program (group name = program name for our slots)."""
        if not is_ours(group):
            return
        if state == "FATAL":
            attempt = self.attempts.get(group, 0)
            self.due[group] = now + next_delay(attempt, self.base, self.cap)
            logger.warning(
                "%s gave up starting; retry %d in %.0f s", group, attempt + 1, self.due[group] - now
            )
        elif state == "RUNNING":
            self.attempts.pop(group, None)
            self.due.pop(group, None)
        elif state == "STOPPED":  # stopped on purpose: no retry, but keep the count
            self.due.pop(group, None)

    def ready(self, now: float) -> list[str]:
        return sorted(p for p, t in self.due.items() if t <= now)

    def retry_once(self, start: Callable[[str], Any], now: float) -> list[RetryRecord]:
        """Start every program whose delay is over; returns what was tried."""
        from supervisor.xmlrpc import Faults  # loaded with the client already; heavy on its own

        tried = []
        for program in self.ready(now):
            del self.due[program]
            attempt = self.attempts.get(program, 0) + 1
            self.attempts[program] = attempt
            record = RetryRecord(program, attempt, now)
            try:
                start(program)
            except RPCFault as fault:
                record.error = fault.fault
                if fault.code == Faults.BAD_NAME:
                    self.attempts.pop(program, None)
            except SupervisorError as exc:
                record.error = str(exc)
                self.due[program] = now + next_delay(attempt, self.base, self.cap)
            logger.info(
                "retried %s (attempt %d)%s",
                program,
                attempt,
                f": {record.error}" if record.error else "",
            )
            tried.append(record)
        self.history = (self.history + tried)[-100:]
        return tried


@dataclass
class Server:
    """serve's state between loop passes; the loop is `run`, one pass is `serve_once`."""

    settings: Settings
    store: Store
    client: Supervisor
    retry: FatalRetry
    tail: EventTail
    options: ProgramOptions | None = None
    outbox: Outbox | None = None
    alarms: Alarms = field(default_factory=lambda: Alarms(None))  # errors, told grouped
    reconciled: bool = False
    next_reconcile: float = 0.0

    def seed_fatal(self, now: float) -> None:
        """Programs that were FATAL before serve started get retries too."""
        for info in self.client.all_info():
            if info.state == "FATAL":
                self.retry.observe(info.group, info.state, now)

    def serve_once(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.alarms.tick()  # first (never raises): the counted reports whose window is over
        if not self.reconciled and now >= self.next_reconcile:
            try:
                plan = reconcile_once(self.settings, self.store, self.client, self.options)
                self.seed_fatal(now)
                self.reconciled = True
                trim_malloc()
                logger.info(
                    "reconciled: added %s changed %s removed %s",
                    plan.added,
                    plan.changed,
                    plan.removed,
                )
            except Exception as exc:  # a damaged store, supervisord down, a bug: tried again
                self.next_reconcile = now + RECONCILE_RETRY
                self.alarms.report(Part.RECONCILE, exc)
        for record in self.tail.read_new():
            group, state = str(record.get("group", "")), str(record.get("state", ""))
            if state == "FATAL" and is_ours(group) and group not in self.retry.attempts:
                self._report_crash_loop(group)
            self.retry.observe(group, state, now)
        self.retry.retry_once(self._start_if_wanted, now)

    def _start_if_wanted(self, program: str) -> None:
        """Retry a program only while the store wants its slot running."""
        parsed = parse_program(program)
        if parsed is not None:
            name, slot = parsed
            state = self.store.state(name)
            if state.release(slot) is not None and not state.running(slot):
                return
        self.client.start(program, False)

    def _report_crash_loop(self, group: str) -> None:
        if self.outbox is None:
            return
        parsed = parse_program(group)
        name = parsed[0] if parsed else None
        self.outbox.publish(
            EventKind.CRASH_LOOP,
            name,
            tr(
                "{program} keeps crashing: supervisord gave up; retrying with a growing delay",
                program=group,
            ),
        )

    def run(self, stop: threading.Event, interval: float = LOOP_INTERVAL) -> None:
        while not stop.is_set():
            try:
                self.serve_once()
            except Exception as exc:  # the loop must go on, whatever one pass met
                self.alarms.report(Part.SERVE_LOOP, exc)
            stop.wait(interval)


def install_signals(stop: threading.Event) -> None:
    """First SIGTERM/SIGINT asks the loop to stop; a second one exits at once."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            os._exit(128 + signum)
        logger.info("signal %d: stopping (send again to exit at once)", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@dataclass
class Stack:
    """Everything serve runs: the engine behind the executor, the socket, the poller."""

    store: Store
    outbox: Outbox
    engine: Engine
    tests: TestRuns
    executor: Executor
    service: Service
    control: ControlServer
    poller: Poller
    alarms: Alarms


def project_runner(settings: Settings, store: Store) -> RoutingRunner:
    """Each project's slots on its runner: supervisord here, or the swarm (made on first
    use, with the store's variables as run-slot composes them)."""
    return RoutingRunner(
        SupervisorRunner(settings),
        store.get_project,
        lambda: make_swarm(settings, store.slot_env),
    )


def build_runtime(settings: Settings, store: Store) -> Runtime:
    """The engine, its test runs, the executor and the outbox (nothing starts yet)."""
    outbox = Outbox(store)
    engine = Engine(settings, store, outbox, runner=project_runner(settings, store))
    alarms = Alarms(outbox, log_path=settings.layout.serve_log)
    return Runtime(
        engine=engine, tests=TestRuns(engine), executor=Executor(), outbox=outbox, alarms=alarms
    )


def build_stack(settings: Settings, store: Store) -> Stack:
    """Wire the parts together (nothing starts yet)."""
    rt = build_runtime(settings, store)
    service = Service(settings, store, rt)
    rt.alarms.redact = redactor(settings, service)  # no secret in a report
    control = ControlServer(settings.control_sock, service.handle)
    poller = Poller(
        store, rt.outbox, check=rt.engine.head, on_new=service.on_new_commit, alarms=rt.alarms
    )
    return Stack(
        store, rt.outbox, rt.engine, rt.tests, rt.executor, service, control, poller, rt.alarms
    )


def local_service(settings: Settings) -> Service:
    """The facade with serve's parts in this process (no thread until an operation
    starts): the CLI's way to add, launch or remove while serve is down."""
    store = Store.open(settings)
    return Service(settings, store, build_runtime(settings, store))


def start_bot(settings: Settings, service: Service, outbox: Outbox) -> BotWatch:
    """The Telegram bot under its watch (service/botlife.py), when a token is set; the bot
    is imported only then (it is heavy)."""

    def make(on_state: StateSink) -> Runner:
        from controlplane.bot.app import BotRunner

        return BotRunner(settings, service, on_state)

    watch = BotWatch(settings, outbox, make)
    watch.start()
    return watch


def start_safe_bot(settings: Settings, problems: Callable[[], list[Problem]]) -> BotWatch:
    """The safe mode's bot (bot/safemode.py) under the same watch; the admins it told
    are kept here, so a restart of the bot does not tell them again."""
    told: set[int] = set()

    def make(on_state: StateSink) -> Runner:
        from controlplane.bot.safemode import SafeBotRunner

        return SafeBotRunner(settings, problems, told, on_state)

    watch = BotWatch(settings, None, make)
    watch.start()
    return watch


def serve(
    settings: Settings,
    stop: threading.Event | None = None,
    *,
    retry: FatalRetry | None = None,
    interval: float = LOOP_INTERVAL,
    options: ProgramOptions | None = None,
) -> None:
    """Recover, reconcile, then run the executor's socket, the poller and the loop until
    `stop` is set (or SIGTERM when run in the main thread)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        install_signals(stop)
    store = open_store(settings, stop, lambda problems: start_safe_bot(settings, problems))
    if store is None:
        return  # stopped while in safe mode (service/safemode.py)
    stack = build_stack(settings, store)
    unredact = redact_logs(redactor(settings, stack.service))
    stack.engine.recover()
    mark_links_restored(settings.supervisor_dir)  # run-slot stops waiting for links
    server = Server(
        settings=settings,
        store=store,
        client=Supervisor(settings),
        retry=retry or FatalRetry(),
        tail=EventTail(settings.layout.events_log),
        options=options,
        outbox=stack.outbox,
        alarms=stack.alarms,
    )
    stack.control.start()
    poller = threading.Thread(target=stack.poller.run, args=(stop,), name="poller", daemon=True)
    poller.start()
    probe = Probe(settings, supervisor_source(settings))
    sampler = Sampler(probe, stack.outbox, on_error=stack.alarms.reporter(Part.SAMPLER))
    threading.Thread(target=sampler.run, args=(stop,), name="load", daemon=True).start()
    stack.outbox.publish(EventKind.STARTED, None, tr("control plane started"))
    for warning in settings.trust_warnings(os.geteuid()):
        logger.warning("%s", warning)
        stack.outbox.publish(EventKind.TRUST_WARNING, None, warning)
    bot = start_bot(settings, stack.service, stack.outbox)
    try:
        server.run(stop, interval)
    finally:
        bot.stop()
        stack.executor.shutdown(wait=10.0)
        stack.control.stop()
        poller.join(timeout=10.0)
        stack.poller.close()
        server.client.close()
        unredact()


M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own malloc arena (up to 8 per core),
    each keeping freed memory resident; serve's threads (poller, sampler, control socket,
    the bot's loop and its worker threads) are idle most of the time, so a few shared
    arenas cost nothing in speed and keep about 3.5 MB less resident. Must run before the
    threads start; an operator's MALLOC_ARENA_MAX wins; a libc without mallopt is left be."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas)


def trim_malloc() -> None:
    """Give the heap's freed memory back to the system (glibc keeps it resident): serve's
    start reads every project's files once (recovery, reconcile, the poller's schedule),
    about 5 MB with 1,000 projects that is free afterwards. A libc without it is left be."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def log_to_both() -> None:
    """INFO and up to stdout (supervisord keeps it in logs/controlplane.log); WARNING and
    up to stderr as well (supervisord passes it to its own stderr: `docker logs`, the
    terminal of `make run`), unless both are the same file."""
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = logging.StreamHandler(sys.stdout)
    handlers: list[logging.Handler] = [out]
    if not same_file(sys.stdout, sys.stderr):
        err = logging.StreamHandler(sys.stderr)
        err.setLevel(logging.WARNING)
        handlers.append(err)
    for handler in handlers:
        handler.setFormatter(fmt)
    logging.basicConfig(level=logging.INFO, handlers=handlers)


def same_file(a: Any, b: Any) -> bool:
    try:
        x, y = os.fstat(a.fileno()), os.fstat(b.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (x.st_dev, x.st_ino) == (y.st_dev, y.st_ino)


def main(settings: Settings) -> int:
    """CLI entry (`controlplane serve`). A store that cannot be opened (a damaged file, a
    missing or wrong key) is safe mode, not a failure (service/safemode.py); any other
    failure to start is logged (so it is in logs/controlplane.log and, as an error, on
    stderr) and the exit status is 1, for supervisord to retry."""
    limit_malloc_arenas()
    log_to_both()
    try:
        serve(settings)
    except ControlPlaneError as exc:
        logger.error("serve cannot start: %s", exc)
        return 1
    return 0
