"""The outbox: events published in-process and kept in the store.

Every step worth telling a person (a new commit, a verdict, a promote, an automatic
revert, a crash loop, a poll outage and its end, an interrupted operation) is an Event
(controlplane.domain.events). The Outbox is the EventSink the engine, the poller and
the load sampler are given: it writes each event to the store's outbox before anyone is
told, so a consumer (the bot's notifier) can deliver each exactly once, also across
restarts: it asks for what it has not acknowledged yet and acknowledges after sending.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from controlplane.adapters.store import OUTBOX, Store
from controlplane.domain.events import Event
from controlplane.domain.kinds import EventKind
from controlplane.i18n import Text, as_text

logger = logging.getLogger(__name__)

KEEP_EVENTS = 2000


Subscriber = Callable[[Event], None]


class Outbox:
    """Publishes events to subscribers and to the store's outbox table (an EventSink)."""

    def __init__(self, store: Store) -> None:
        self.store = store
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
        with self.store.rows(OUTBOX, OUTBOX, write=True) as rows:
            last = max((row["seq"] for row in rows.values()), default=0)
            event = Event(
                seq=last + 1,
                at=time.time(),
                kind=str(kind),
                project=project,
                text=str(message),
                data=data,
                msg=message.to_dict(),
            )
            doc_id = max((int(k) for k in rows), default=0) + 1
            rows[str(doc_id)] = {**event.to_dict(), "acked": []}
            cutoff = event.seq - KEEP_EVENTS
            for key in [k for k, row in rows.items() if row["seq"] <= cutoff]:
                del rows[key]
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
        with self.store.rows(OUTBOX, OUTBOX, write=False) as rows:
            events = [_event(row) for row in rows.values() if consumer not in row["acked"]]
        return sorted(events, key=lambda e: e.seq)

    def ack(self, consumer: str, seq: int) -> None:
        """Mark an event delivered to `consumer`."""
        with self.store.transaction(OUTBOX):
            with self.store.rows(OUTBOX, OUTBOX, write=False) as rows:
                acked = next((r["acked"] for r in rows.values() if r["seq"] == seq), None)
            if acked is None or consumer in acked:
                return
            with self.store.rows(OUTBOX, OUTBOX, write=True) as rows:
                for row in rows.values():
                    if row["seq"] == seq:
                        row["acked"] = [*row["acked"], consumer]

    def recent(self, project: str | None = None, limit: int = 50) -> list[Event]:
        """The latest events, for status screens."""
        with self.store.rows(OUTBOX, OUTBOX, write=False) as rows:
            events = [
                _event(r) for r in rows.values() if project is None or r["project"] == project
            ]
        return sorted(events, key=lambda e: e.seq)[-limit:]


def _event(row: dict[str, Any]) -> Event:
    return Event(**{k: v for k, v in row.items() if k != "acked"})
