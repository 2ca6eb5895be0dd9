"""The outbox: events published in-process and kept in an append-only log.

Every step worth telling a person (a new commit, a verdict, a promote, an automatic
revert, a crash loop, a poll outage and its end, an interrupted operation) is an Event
(controlplane.domain.events). The Outbox is the EventSink the engine, the poller and
the load sampler are given: it writes each event to its log before anyone is told, so a
consumer (the bot's notifier) can deliver each exactly once, also across restarts: it
asks for what it has not acknowledged yet and acknowledges after sending.

The log ($DATA/store.d/outbox.log, adapters/eventlog.py) has one line per record: an
event, or "consumer X acknowledged seq N". Publishing or acknowledging appends one line
and fsyncs it (a few kB of JSON were rewritten whole before: 14 ms a publish with 2000
events kept). The state (the last KEEP_EVENTS events, who acknowledged each, the next
seq) is rebuilt from the file when an Outbox first reads it and then kept in memory;
every call takes the store's lock and reads what other Outboxes (the CLI's, a test's)
appended meanwhile, so the file stays the truth. When the file holds more than
COMPACT_AT × KEEP_EVENTS records it is rewritten whole with the events kept and their
acks (with 2000 events, one publish in a few thousand pays for writing 400 kB). An older
version's outbox table (store.d/outbox.json) is taken over on first read.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from controlplane.adapters.eventlog import AppendLog, Record
from controlplane.adapters.store import Store
from controlplane.domain.events import Event
from controlplane.domain.kinds import EventKind
from controlplane.errors import StoreError
from controlplane.i18n import Text, as_text

logger = logging.getLogger(__name__)

KEEP_EVENTS = 2000
COMPACT_AT = 3  # × the events kept: records in the log before it is rewritten
EVENT_FIELDS = frozenset(f.name for f in dataclasses.fields(Event))


Subscriber = Callable[[Event], None]


class Outbox:
    """Publishes events to subscribers and to the outbox's log (an EventSink)."""

    def __init__(self, store: Store, keep: int = KEEP_EVENTS) -> None:
        self.store = store
        self.keep = keep
        self._log = AppendLog(store.settings.layout.outbox_log)
        self._events: dict[int, Event] = {}  # by seq, oldest first
        self._acked: dict[int, set[str]] = {}  # seq → consumers that acknowledged it
        self._last = 0  # the highest seq published
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(fn)

    def unsubscribe(self, fn: Subscriber) -> None:
        with self._lock:
            if fn in self._subscribers:
                self._subscribers.remove(fn)

    def publish(self, kind: EventKind, project: str | None, text: Text | str, **data: Any) -> Event:
        """Persist the event, then tell in-process subscribers (their errors are logged)."""
        message = as_text(text)
        with self.store.locked():
            self._read()
            event = Event(
                seq=self._last + 1,
                at=time.time(),
                kind=str(kind),
                project=project,
                text=str(message),
                data=data,
                msg=message.to_dict(),
            )
            self._log.append([{"event": event.to_dict()}])
            self._add(event, ())
            self._compact_if_long()
        logger.info("event %s %s: %s", kind, project or "-", event.text)
        with self._lock:
            subscribers = list(self._subscribers)
        for fn in subscribers:
            try:
                fn(event)
            except Exception:
                logger.exception("event subscriber failed on %s", kind)
        return event

    def pending(self, consumer: str) -> list[Event]:
        """Events `consumer` has not acknowledged, oldest first."""
        with self.store.locked():
            self._read()
            return [e for seq, e in self._events.items() if consumer not in self._acked[seq]]

    def ack(self, consumer: str, seq: int) -> None:
        """Mark an event delivered to `consumer`."""
        with self.store.locked():
            self._read()
            acked = self._acked.get(seq)
            if acked is None or consumer in acked:
                return
            self._log.append([{"ack": seq, "by": consumer}])
            acked.add(consumer)
            self._compact_if_long()

    def recent(self, project: str | None = None, limit: int = 50) -> list[Event]:
        """The latest events, for status screens."""
        with self.store.locked():
            self._read()
            events = [e for e in self._events.values() if project is None or e.project == project]
        return events[-limit:]

    # -- the log ------------------------------------------------------------------------

    def _read(self) -> None:
        """Catch up with the log (under the store's lock): what was appended since the
        last call, or all of it when the file is new; an older version's table at first."""
        fresh, records = self._log.read_new()
        if fresh:
            self._events, self._acked, self._last = {}, {}, 0
        if not self._log.exists():
            self._take_over_old_table()
        elif fresh:
            self.store.drop_old_outbox()  # taken over already; a kill kept it
        for record in records:
            self._apply(record)

    def _apply(self, record: Record) -> None:
        if "event" in record:
            row = record["event"]
            event = Event(**{k: v for k, v in row.items() if k in EVENT_FIELDS})
            self._add(event, record.get("acked") or ())
        elif "ack" in record:
            acked = self._acked.get(int(record["ack"]))
            if acked is not None:
                acked.add(str(record["by"]))

    def _add(self, event: Event, acked: Iterable[str]) -> None:
        self._events[event.seq] = event
        self._acked[event.seq] = set(acked)
        self._last = max(self._last, event.seq)
        while len(self._events) > self.keep:
            oldest = next(iter(self._events))
            del self._events[oldest], self._acked[oldest]

    def _snapshot(self) -> list[Record]:
        """The log's content, compacted: the events kept, each with who acknowledged it."""
        return [
            {"event": e.to_dict(), "acked": sorted(self._acked[seq])}
            for seq, e in self._events.items()
        ]

    def _compact_if_long(self) -> None:
        """Rewrite the log when it has grown; a failure leaves the longer log (still true)."""
        if self._log.lines <= COMPACT_AT * self.keep:
            return
        try:
            self._log.rewrite(self._snapshot())
        except StoreError as exc:
            logger.warning("outbox: cannot compact the log: %s", exc)

    def _take_over_old_table(self) -> None:
        """The events of an older version's outbox table (store.d/outbox.json), with who
        acknowledged each, become the log (written whole); then the table is dropped. A
        kill in between leaves the log, which wins, and the table, dropped next time."""
        rows = self.store.old_outbox()
        if not rows:
            return
        for row in rows:
            event = Event(**{k: v for k, v in row.items() if k in EVENT_FIELDS})
            self._add(event, row.get("acked") or ())
        self._log.rewrite(self._snapshot())
        self.store.drop_old_outbox()
        logger.info("outbox: took over %d events of the old outbox table", len(rows))
