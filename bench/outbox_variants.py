"""Other ways to keep the outbox, measured beside the log (bench_store's baselines).

- `TableOutbox`: the outbox before issue 15, a TinyDB table in one JSON file
  (store.d/outbox.json) rewritten whole, and fsynced, on every publish and every ack.
- `SqliteOutbox`: the same events in SQLite in WAL mode with synchronous=FULL (each
  commit fsyncs the WAL, as durable as the log's fsync per append), pruned to the last
  KEEP_EVENTS on publish.

Both have the Outbox's publish/pending/ack; neither tells subscribers (the log's figure
does, to nobody).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from controlplane.adapters.store import OUTBOX, Store
from controlplane.domain.events import Event
from controlplane.i18n import as_text
from controlplane.service.outbox import KEEP_EVENTS


class TableOutbox:
    """The outbox as it was: every write rewrites the table's file."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def publish(self, kind: str, project: str | None, text: str, **data: Any) -> Event:
        message = as_text(text)
        with self.store.rows(OUTBOX, OUTBOX, write=True) as rows:
            last = max((row["seq"] for row in rows.values()), default=0)
            event = Event(
                last + 1, time.time(), kind, project, str(message), data, message.to_dict()
            )
            doc_id = max((int(k) for k in rows), default=0) + 1
            rows[str(doc_id)] = {**event.to_dict(), "acked": []}
            cutoff = event.seq - KEEP_EVENTS
            for key in [k for k, row in rows.items() if row["seq"] <= cutoff]:
                del rows[key]
        return event

    def pending(self, consumer: str) -> list[Event]:
        with self.store.rows(OUTBOX, OUTBOX, write=False) as rows:
            events = [_event(row) for row in rows.values() if consumer not in row["acked"]]
        return sorted(events, key=lambda e: e.seq)

    def ack(self, consumer: str, seq: int) -> None:
        with self.store.transaction(OUTBOX):
            with self.store.rows(OUTBOX, OUTBOX, write=False) as rows:
                acked = next((r["acked"] for r in rows.values() if r["seq"] == seq), None)
            if acked is None or consumer in acked:
                return
            with self.store.rows(OUTBOX, OUTBOX, write=True) as rows:
                for row in rows.values():
                    if row["seq"] == seq:
                        row["acked"] = [*row["acked"], consumer]

    def fill(self, count: int, consumer: str) -> None:
        """`count` events, all acknowledged by `consumer`, in one write."""
        with self.store.rows(OUTBOX, OUTBOX, write=True) as rows:
            for seq in range(1, count + 1):
                event = Event(seq, time.time(), "sampled", "p", f"event {seq} " + "x" * 80)
                rows[str(seq)] = {**event.to_dict(), "acked": [consumer]}


def _event(row: dict[str, Any]) -> Event:
    return Event(**{k: v for k, v in row.items() if k != "acked"})


class SqliteOutbox:
    """The outbox in SQLite (WAL, synchronous=FULL): a row per event, a row per ack."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, doc TEXT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS acks (seq INTEGER, consumer TEXT, "
                        "PRIMARY KEY (seq, consumer)) WITHOUT ROWID")  # fmt: skip

    def publish(self, kind: str, project: str | None, text: str, **data: Any) -> Event:
        message = as_text(text)
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            (last,) = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
            event = Event(
                last + 1, time.time(), kind, project, str(message), data, message.to_dict()
            )
            self.db.execute(
                "INSERT INTO events VALUES (?, ?)", (event.seq, json.dumps(event.to_dict()))
            )
            self.db.execute("DELETE FROM events WHERE seq <= ?", (event.seq - KEEP_EVENTS,))
            self.db.execute("DELETE FROM acks WHERE seq <= ?", (event.seq - KEEP_EVENTS,))
        return event

    def pending(self, consumer: str) -> list[Event]:
        rows = self.db.execute(
            "SELECT doc FROM events WHERE seq NOT IN (SELECT seq FROM acks WHERE consumer = ?) "
            "ORDER BY seq",
            (consumer,),
        ).fetchall()
        return [Event(**json.loads(doc)) for (doc,) in rows]

    def ack(self, consumer: str, seq: int) -> None:
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO acks VALUES (?, ?)", (seq, consumer))

    def fill(self, count: int, consumer: str) -> None:
        with self.db:
            self.db.execute("BEGIN")
            for seq in range(1, count + 1):
                event = Event(seq, time.time(), "sampled", "p", f"event {seq} " + "x" * 80)
                self.db.execute(
                    "INSERT INTO events VALUES (?, ?)", (seq, json.dumps(event.to_dict()))
                )
                self.db.execute("INSERT INTO acks VALUES (?, ?)", (seq, consumer))
