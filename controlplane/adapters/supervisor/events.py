"""`controlplane events`: supervisord's event listener; fast restarts and state hand-off.

supervisord's main loop wakes once a second when nothing happens, and reaps a dead child
only after that iteration's transitions: a crashed app waits up to a second before it is
spawned again. This listener holds a pidfd for each RUNNING program of ours; when one
becomes readable (the app died) it calls getProcessInfo, which wakes supervisord's loop
so it reaps and respawns at once. It repeats the call only while supervisord still
reports the dead pid, a few times at most.

Every PROCESS_STATE event is appended as one JSON line to $DATA/logs/events.jsonl
(rotated to events.jsonl.1 at 1 MiB); `serve` and the runner's event feed read it. The
event has no exit status, and supervisord forgets it when it respawns the app, so the
listener reads it from the dead app itself (its /proc entry, before the wake-up lets
supervisord reap it) and adds it to the EXITED record. An app that dies while starting
(within startsecs: the BACKOFF record) is never watched, as it never was RUNNING, and
supervisord keeps no status for it (getProcessInfo says 0): its status comes from the line
supervisord writes to its own log when it reaps it, 'exited: shop-test (exit status 1; not
expected)'. That line is reliable where a pidfd is not: supervisord writes it from its own
waitpid, before it sends the event, so it is in the log when the event comes, however
fast the app died (a pid learnt after the STARTING event may be reaped already). Each
program's exit lines are taken in order, one for each BACKOFF or EXITED record (the
EXITED record keeps the /proc status when it has one). stdout is the protocol channel:
nothing else may be written there, so logging goes to stderr. No event and no death ends
the listener: a handler that fails is logged with its traceback, and the loop goes on.
"""

from __future__ import annotations

import json
import logging
import os
import re
import selectors
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from controlplane.adapters.supervisor.client import Supervisor
from controlplane.adapters.tail import FileCursor
from controlplane.domain.runner import ProcessInfo, is_ours
from controlplane.errors import SupervisorError
from controlplane.settings import Settings

logger = logging.getLogger(__name__)

READY = b"READY\n"
OK = b"RESULT 2\nOK"
MAX_LOG_BYTES = 1 << 20
WAKE_TRIES = 10


def parse_tokens(line: str) -> dict[str, str]:
    """'processname:a groupname:a pid:12' → {'processname': 'a', 'groupname': 'a', 'pid': '12'}."""
    tokens: dict[str, str] = {}
    for word in line.split():
        key, sep, value = word.partition(":")
        if not sep:
            raise ValueError(f"bad token {word!r} in event line {line!r}")
        tokens[key] = value
    return tokens


@dataclass
class ProtocolReader:
    """Splits the bytes supervisord sends into (header, payload) events."""

    buffer: bytes = b""

    def feed(self, data: bytes) -> list[tuple[dict[str, str], str]]:
        self.buffer += data
        events: list[tuple[dict[str, str], str]] = []
        while b"\n" in self.buffer:
            line, _, rest = self.buffer.partition(b"\n")
            header = parse_tokens(line.decode())
            size = int(header["len"])
            if len(rest) < size:
                break
            events.append((header, rest[:size].decode("utf-8", "replace")))
            self.buffer = rest[size:]
        return events


def state_record(header: dict[str, str], payload: str, now: float) -> dict[str, Any] | None:
    """A PROCESS_STATE_* event → the JSON record serve reads; None for other events."""
    name = header.get("eventname", "")
    if not name.startswith("PROCESS_STATE_"):
        return None
    body = parse_tokens(payload.split("\n", 1)[0])
    record: dict[str, Any] = {
        "time": round(now, 3),
        "state": name.removeprefix("PROCESS_STATE_"),
        "program": body.get("processname", ""),
        "group": body.get("groupname", ""),
        "from": body.get("from_state", ""),
    }
    if "pid" in body:
        record["pid"] = int(body["pid"])
    if "expected" in body:
        record["expected"] = body["expected"] == "1"
    return record


class EventLog:
    """Appends JSON lines; rotates once at MAX_LOG_BYTES so it stays small."""

    def __init__(self, path: Path, max_bytes: int = MAX_LOG_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        try:
            if self.path.stat().st_size + len(line) > self.max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except FileNotFoundError:
            pass
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)


EXIT_LINE_RE = re.compile(r"\bexited: (?P<program>\S+) \((?P<how>.*)\)\s*$")


def exit_from_log(line: str) -> tuple[str, int] | None:
    """supervisord's log line of a reaped app → (program, exit status, or minus the signal
    that killed it); None for any other line. 'exited: a-test (exit status 1; not
    expected)' → ('a-test', 1); '(terminated by SIGSEGV (core dumped); …)' → ('…', -11)."""
    match = EXIT_LINE_RE.search(line)
    if match is None:
        return None
    how = match["how"]
    status = re.match(r"exit status (\d+)", how)
    if status:
        return match["program"], int(status[1])
    killed = re.match(r"terminated by (?:(SIG[A-Z0-9]+)|signal (\d+))", how)
    if killed is None:
        return None
    try:
        number = signal.Signals[killed[1]].value if killed[1] else int(killed[2])
    except KeyError:
        return None
    return match["program"], -number


class ExitLines:
    """The exit statuses supervisord logged, per program, in order, from now on."""

    def __init__(self, path: Path) -> None:
        self.cursor = FileCursor(path, from_end=True)
        self.queued: dict[str, deque[int]] = {}

    def take(self, program: str) -> int | None:
        """The oldest logged exit of `program` not taken yet; None when none is logged."""
        for line in self.cursor.read_new():
            found = exit_from_log(line)
            if found is not None:
                self.queued.setdefault(found[0], deque(maxlen=100)).append(found[1])
        queue = self.queued.get(program)
        return queue.popleft() if queue else None


Info = Callable[[str], ProcessInfo]


def zombie_status(pid: int, proc: Path = Path("/proc")) -> int | None:
    """The exit status of a process that has exited but is not reaped yet (a zombie): its
    exit code, or minus the signal that killed it; None when it is not a zombie (any more).
    /proc/PID/stat's exit_code field (Linux 3.5) needs the right to trace it, which the
    listener, run as supervisord's user, has over the apps."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # from field 3 (state); the name may hold ")"
    if len(fields) < 50 or fields[0] != "Z":
        return None
    return os.waitstatus_to_exitcode(int(fields[49]))  # field 52, exit_code


def wake(info: Info, namespec: str, dead_pid: int, tries: int = WAKE_TRIES) -> ProcessInfo | None:
    """Ask supervisord about a program until it no longer reports the dead pid.

    Each request wakes supervisord's loop (it reaps and respawns on that pass), so this
    ends after one or two calls; `tries` only bounds a misbehaving server.
    """
    last: ProcessInfo | None = None
    for _ in range(tries):
        try:
            last = info(namespec)
        except SupervisorError as exc:
            logger.warning("cannot wake supervisord for %s: %s", namespec, exc)
            return None
        if last.pid != dead_pid:
            break
    return last


@dataclass
class Watch:
    """The pidfds of our RUNNING programs."""

    selector: selectors.BaseSelector
    by_program: dict[str, tuple[int, int]] = field(default_factory=dict)

    def watch(self, namespec: str, pid: int) -> None:
        self.forget(namespec)
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return  # gone already: supervisord reaps it on the pass our RESULT wakes
        self.by_program[namespec] = (pid, fd)
        self.selector.register(fd, selectors.EVENT_READ, namespec)

    def forget(self, namespec: str) -> None:
        entry = self.by_program.pop(namespec, None)
        if entry is not None:
            self.selector.unregister(entry[1])
            os.close(entry[1])


class Listener:
    """The listener loop: protocol on stdin/stdout, pidfds, and the events file."""

    def __init__(
        self, settings: Settings, client: Supervisor, *, stdin: BinaryIO, stdout: BinaryIO
    ) -> None:
        self.client = client
        self.stdin = stdin
        self.stdout = stdout
        self.log = EventLog(settings.layout.events_log)
        self.selector = selectors.DefaultSelector()
        self.watch = Watch(self.selector)
        self.reader = ProtocolReader()
        self.exits: dict[str, tuple[int, int]] = {}  # namespec → (dead pid, exit status)
        self.logged = ExitLines(settings.layout.supervisord_log)

    def seed(self) -> None:
        """Watch the programs of ours that were running before this listener started."""
        try:
            infos = self.client.all_info()
        except SupervisorError as exc:
            logger.warning("cannot list programs at start: %s", exc)
            return
        for info in infos:
            if is_ours(info.group) and info.state == "RUNNING" and info.pid:
                self.watch.watch(f"{info.group}:{info.name}", info.pid)

    def handle_event(self, header: dict[str, str], payload: str) -> None:
        record = state_record(header, payload, time.time())
        if record is None:
            return
        ours = is_ours(record["group"])
        namespec = f"{record['group']}:{record['program']}"
        died = self.exits.pop(namespec, None)
        if ours and record["state"] in ("EXITED", "BACKOFF"):
            logged = self.logged.take(record["program"])
            if record["state"] == "EXITED" and died and died[0] == record.get("pid"):
                record["exitstatus"] = died[1]
            elif logged is not None:
                record["exitstatus"] = logged
        self.log.append(record)
        if not ours:
            return
        if record["state"] == "RUNNING" and record.get("pid"):
            self.watch.watch(namespec, record["pid"])
        else:
            self.watch.forget(namespec)

    def handle_death(self, namespec: str) -> None:
        """One of our apps died: note its exit status, wake supervisord. A death whose
        program is no longer watched (a STOPPED or EXITED event read in the same wake-up
        forgot it: a stop, a slot switch) is over already, so it is skipped."""
        entry = self.watch.by_program.get(namespec)
        if entry is None:
            return  # forgotten already: an event handled before this death told of it
        pid, _fd = entry
        self.watch.forget(namespec)
        status = zombie_status(pid)  # first: the wake-up lets supervisord reap it
        started = time.monotonic()
        after = wake(self.client.info, namespec, pid)
        took = (time.monotonic() - started) * 1000
        if status is None and after is not None and (after.state, after.pid) == ("EXITED", 0):
            status = after.exitstatus  # reaped already, not yet respawned
        if status is not None:
            self.exits[namespec] = (pid, status)
        logger.info(
            "%s (pid %d) died; supervisord woken: now %s pid %s (%.1f ms)",
            namespec,
            pid,
            after.state if after else "?",
            after.pid if after else "?",
            took,
        )

    def send(self, data: bytes) -> None:
        self.stdout.write(data)
        self.stdout.flush()

    def run(self) -> int:
        """Until supervisord closes our stdin."""
        fd = self.stdin.fileno()
        self.selector.register(fd, selectors.EVENT_READ, None)
        self.seed()
        self.send(READY)
        while True:
            # deaths first: an app's death comes before the EXITED event that tells of it
            for key, _mask in sorted(self.selector.select(), key=lambda km: km[0].data is None):
                if key.data is not None:
                    self.guarded(self.handle_death, key.data)
                    continue
                data = os.read(fd, 65536)
                if not data:
                    return 0
                for header, payload in self.reader.feed(data):
                    self.guarded(self.handle_event, header, payload)
                    self.send(OK + READY)

    @staticmethod
    def guarded(handle: Callable[..., None], *args: Any) -> None:
        """Run one handler; whatever it raises is logged with its traceback, and the
        listener goes on (a dead listener would only be restarted, its watch lost)."""
        try:
            handle(*args)
        except Exception:
            logger.exception("%s%r failed; going on", handle.__name__, args)


class EventTail:
    """Reads the records the listener appended since the last call; follows its rotation."""

    def __init__(self, path: Path, *, from_end: bool = True) -> None:
        self.cursor = FileCursor(path, from_end=from_end)

    def read_new(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.cursor.read_new() if line.strip()]


def main(settings: Settings) -> int:
    """CLI entry (`controlplane events`), run by supervisord as an event listener."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    with Supervisor(settings, timeout=10.0) as client:
        return Listener(settings, client, stdin=sys.stdin.buffer, stdout=sys.stdout.buffer).run()
