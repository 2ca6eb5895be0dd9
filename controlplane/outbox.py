"""Events of the engine: published in-process and kept in a persistent outbox.

Every step worth telling a person (a new commit, a verdict, a promote, an automatic
revert, a crash loop, a poll outage and its end, an interrupted operation) is an Event.
It is written to the store's outbox before anyone is told, so a consumer (the bot's
notifier) can deliver each exactly once, also across restarts: it asks for what it has
not acknowledged yet and acknowledges after sending.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from tinydb import Query

from controlplane.store import Store

logger = logging.getLogger(__name__)

KEEP_EVENTS = 2000


@dataclass(frozen=True)
class Event:
    """One thing that happened."""

    seq: int
    at: float
    kind: str
    project: str | None
    text: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Subscriber = Callable[[Event], None]


class Outbox:
    """Publishes events to subscribers and to the store's outbox table."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(fn)

    def publish(self, kind: str, project: str | None, text: str, **data: Any) -> Event:
        """Persist the event, then tell in-process subscribers (their errors are logged)."""
        with self.store.transaction() as db:
            table = self.store.table(db, "outbox")
            last = max((row["seq"] for row in table.all()), default=0)
            event = Event(
                seq=last + 1, at=time.time(), kind=kind, project=project, text=text, data=data
            )
            table.insert({**event.to_dict(), "acked": []})
            if len(table) > KEEP_EVENTS:
                cutoff = event.seq - KEEP_EVENTS
                table.remove(Query().seq <= cutoff)
        logger.info("event %s %s: %s", kind, project or "-", text)
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
        with self.store.transaction() as db:
            rows = self.store.table(db, "outbox").search(~Query().acked.any([consumer]))
        events = [Event(**{k: v for k, v in row.items() if k != "acked"}) for row in rows]
        return sorted(events, key=lambda e: e.seq)

    def ack(self, consumer: str, seq: int) -> None:
        """Mark an event delivered to `consumer`."""
        with self.store.transaction() as db:
            table = self.store.table(db, "outbox")
            row = table.get(Query().seq == seq)
            if row is not None and consumer not in row["acked"]:
                table.update({"acked": [*row["acked"], consumer]}, Query().seq == seq)

    def recent(self, project: str | None = None, limit: int = 50) -> list[Event]:
        """The latest events, for status screens."""
        with self.store.transaction() as db:
            rows = self.store.table(db, "outbox").all()
        events = [Event(**{k: v for k, v in r.items() if k != "acked"}) for r in rows]
        events = [e for e in events if project is None or e.project == project]
        return sorted(events, key=lambda e: e.seq)[-limit:]
