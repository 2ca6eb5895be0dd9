"""The outbox's log: what it keeps, how it reads another process's writes, an older
version's table taken over, a torn last line, and a publisher killed 200 times."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from controlplane.adapters.store import OUTBOX, Store
from controlplane.domain.events import Event
from controlplane.domain.kinds import EventKind
from controlplane.service.outbox import Outbox
from controlplane.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
WRITER = ROOT / "tests" / "support" / "outbox_writer.py"
DEPLOYED = EventKind.DEPLOYED


def seqs(events: list[Event]) -> list[int]:
    return [e.seq for e in events]


def test_each_event_is_pending_until_its_consumer_acknowledges_it(store: Store) -> None:
    outbox = Outbox(store)
    told: list[int] = []
    outbox.subscribe(lambda e: told.append(e.seq))
    for i in range(1, 4):
        outbox.publish(DEPLOYED, "p", f"event {i}", n=i)
    outbox.ack("bot:1", 2)
    outbox.ack("bot:1", 2)  # twice is once
    outbox.ack("bot:1", 99)  # an event not kept
    assert told == [1, 2, 3]
    assert seqs(outbox.pending("bot:1")) == [1, 3]
    assert seqs(outbox.pending("bot:2")) == [1, 2, 3]
    assert [e.text for e in outbox.recent("p", 2)] == ["event 2", "event 3"]
    assert outbox.recent("other") == []
    (event,) = outbox.recent(limit=1)
    assert event.data == {"n": 3} and event.message.render("en") == "event 3"


def test_another_process_reads_and_writes_the_same_log(store: Store, settings: Settings) -> None:
    serve, cli = Outbox(store), Outbox(Store.open(settings))
    serve.publish(DEPLOYED, "p", "one")
    assert seqs(cli.recent()) == [1]
    cli.publish(DEPLOYED, "p", "two")
    serve.ack("bot", 2)
    assert seqs(serve.pending("bot")) == [1]
    assert seqs(cli.pending("bot")) == [1]
    assert serve.publish(DEPLOYED, "p", "three").seq == 3


def test_the_log_keeps_the_last_events_and_is_compacted_when_long(
    store: Store, settings: Settings
) -> None:
    outbox = Outbox(store, keep=10)
    for i in range(1, 101):
        outbox.publish(DEPLOYED, "p", f"event {i}")
        if i % 2:
            outbox.ack("bot", i)
    assert seqs(outbox.pending("bot")) == list(range(92, 101, 2))
    lines = settings.layout.outbox_log.read_text().splitlines()
    assert len(lines) <= 1 + 3 * 10 + 2  # compacted: not the 150 records written
    again = Outbox(Store.open(settings), keep=10)
    assert seqs(again.recent()) == list(range(91, 101))
    assert seqs(again.pending("bot")) == list(range(92, 101, 2))
    assert again.publish(DEPLOYED, "p", "next").seq == 101


def test_an_older_versions_outbox_table_is_taken_over_once(
    store: Store, settings: Settings
) -> None:
    with store.rows(OUTBOX, OUTBOX, write=True) as rows:
        for seq in (5, 6, 7):
            event = {"seq": seq, "at": 1.0, "kind": "k", "project": "p", "text": f"e{seq}"}
            acked = ["bot:1", "bot:2"] if seq < 7 else ["bot:2"]
            rows[str(seq)] = {**event, "data": {}, "acked": acked}
    assert settings.layout.outbox_store.exists()

    outbox = Outbox(Store.open(settings))
    assert seqs(outbox.pending("bot:1")) == [7]
    assert seqs(outbox.pending("bot:2")) == []
    assert outbox.recent()[0].message.render("ru") == "e5"  # stored before events had msg
    assert not settings.layout.outbox_store.exists()
    outbox.ack("bot:1", 7)
    assert outbox.publish(DEPLOYED, "p", "after").seq == 8
    again = Outbox(Store.open(settings))
    assert seqs(again.pending("bot:1")) == [8] and seqs(again.recent()) == [5, 6, 7, 8]


def test_a_torn_last_line_is_ignored_and_cut_off_by_the_next_append(
    store: Store, settings: Settings
) -> None:
    outbox = Outbox(store)
    for i in range(3):
        outbox.publish(DEPLOYED, "p", f"event {i}")
    log = settings.layout.outbox_log
    with open(log, "ab") as fh:  # an append cut short by a kill or a full disk
        fh.write(b'{"event":{"seq":4,"at":1.0,"kind":"dep')
    reader = Outbox(Store.open(settings))
    assert seqs(reader.recent()) == [1, 2, 3]
    assert reader.publish(DEPLOYED, "p", "after").seq == 4
    assert all(json.loads(line) for line in log.read_text().splitlines())
    assert [e.text for e in Outbox(Store.open(settings)).recent()][-1] == "after"


def test_a_damaged_line_in_the_middle_loses_that_record_only(
    store: Store, settings: Settings
) -> None:
    outbox = Outbox(store)
    for i in range(3):
        outbox.publish(DEPLOYED, "p", f"event {i}")
    log = settings.layout.outbox_log
    lines = log.read_bytes().splitlines(keepends=True)
    lines[2] = b"\x00\x00garbage\n"
    log.write_bytes(b"".join(lines))
    assert seqs(Outbox(Store.open(settings)).recent()) == [1, 3]


def test_a_publisher_killed_at_random_moments_loses_no_event_and_delivers_none_twice(
    store: Store, settings: Settings
) -> None:
    keep = 40  # small, so that compaction runs (and is killed) often
    rng = random.Random(1515)
    published: set[int] = set()
    delivered: set[int] = set()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(200):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(settings.data_dir), str(keep)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        try:
            proc.wait(timeout=rng.uniform(0, 0.04))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        for line in proc.stdout.read().splitlines():
            what, seq = line.split()
            seen = published if what == "P" else delivered
            assert int(seq) not in seen, f"{line}: twice"
            seen.add(int(seq))
        proc.stdout.close()
        fresh = Outbox(Store.open(settings), keep)
        kept = set(seqs(fresh.recent(None, 10_000)))
        newest = max(kept, default=0)  # the last publish may have been killed before `P`
        assert newest >= max(published, default=0)
        assert {s for s in published if s > newest - keep} <= kept
        assert not set(seqs(fresh.pending("bot"))) & delivered
    assert len(published) > 200 and len(delivered) > 100
    print(f"200 kills: {len(published)} events published, {len(delivered)} delivered, none twice")
