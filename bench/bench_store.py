"""Store work behind bot actions with 1,000 projects × 100 numbered commits.

Each action does what the bot's handler does with the store (the same Store object serve
uses, so its cache is as warm as in serve); the time is the store calls only, not the
Telegram round trip. The target is absolute (≤ 10 ms); the outbox's two rows also run,
in the same process on the same disk, the outbox as it was before issue 15 (a JSON file
rewritten per write) and the same outbox in SQLite in WAL mode (bench/outbox_variants.py).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from bench.common import RUNS, Figure, log, median, tempdir
from bench.outbox_variants import SqliteOutbox, TableOutbox
from bench.populate import open_store, populate
from controlplane.adapters.store import Store
from controlplane.bot import screens
from controlplane.domain.events import Event
from controlplane.service.facade import Service
from controlplane.service.outbox import KEEP_EVENTS, Outbox

PROJECTS = 1000
COMMITS = 100
WRITE_NOTE = (
    "A change of a project's settings or variables rewrites store.json, which holds every "
    "project's document with its encrypted variables: 0.7 MB with 1,000 projects. Encoding "
    "it is 12 ms without sorted keys and 19 ms with them on this machine, before the write "
    "and its fsync, so this cannot reach 10 ms while one file holds all projects. What it "
    "would take: each project's document in its own file (as its releases, state and "
    "commits are already), store.json keeping the key check and the names; a change would "
    "then rewrite about 1 kB."
)
NOTES: dict[str, str] = {
    "set poll interval (a write)": WRITE_NOTE,
    "set a variable (a write)": WRITE_NOTE,
}
PUBLISH = f"publish an event ({KEEP_EVENTS} kept)"
DELIVER = "an event published, then delivered by the notifier"
OLD_TABLE = "the outbox before: one JSON file rewritten per write"
SQLITE = "SQLite, WAL, synchronous=FULL"


class AnOutbox(Protocol):
    def publish(self, kind: Any, project: str | None, text: Any) -> object: ...
    def pending(self, consumer: str) -> list[Event]: ...
    def ack(self, consumer: str, seq: int) -> None: ...


def actions(store: Store, names: list[str], outbox: AnOutbox) -> dict[str, Callable[[int], object]]:
    """Bot actions → the store work they do (i picks a project)."""
    config = Service(store.settings, store).config

    def name(i: int) -> str:
        return names[(i * 37) % len(names)]

    def projects_list(i: int) -> object:  # a page, as bot/views.py projects_listing reads it
        return screens.list_page(
            store.list_projects(),
            i % (len(names) // screens.LIST_PAGE),
            "",
            lambda shown: [(p, store.state(p.name), None) for p in shown],
        )

    def project_screen(i: int) -> object:
        return store.get_project(name(i)), store.state(name(i))

    def rollback_list(i: int) -> object:
        return store.commits(name(i)), store.releases(name(i)), store.state(name(i))

    def set_poll(i: int) -> object:
        return config.set_poll(name(i), ["5m", "1h"][i % 2])

    def set_variable(i: int) -> object:
        return config.env_set(name(i), "prod", [f"FLAG={i}"])

    def record_op(i: int) -> object:  # every operation records itself in the slot state
        return store.update_state(name(i), op={"op": "deploy", "at": i})

    def publish_event(i: int) -> object:  # … and reports through the outbox (kept full)
        return outbox.publish("deployed", name(i), f"{name(i)}: deployed to #{i}")

    def deliver_event(i: int) -> object:  # the notifier's work per event, caught up
        event = outbox.publish("deployed", name(i), f"{name(i)}: deployed to #{i}")
        for pending in outbox.pending("bot"):
            outbox.ack("bot", pending.seq)
        return event

    return {
        f"projects list, a page of {screens.LIST_PAGE}": projects_list,
        "project screen": project_screen,
        "rollback list (100 commits)": rollback_list,
        "set poll interval (a write)": set_poll,
        "set a variable (a write)": set_variable,
        "record operation state (a write)": record_op,
        PUBLISH: publish_event,
        DELIVER: deliver_event,
    }


def per_call_ms(fn: Callable[[int], object], per_run: int = 20) -> list[float]:
    """Milliseconds a call, one sample per run of `per_run` calls."""
    runs = []
    for r in range(max(RUNS, 5)):
        t = time.perf_counter()
        for i in range(per_run):
            fn(r * per_run + i)
        runs.append((time.perf_counter() - t) / per_run * 1000)
    return runs


def outbox_baselines(
    store: Store, names: list[str], base: Path
) -> dict[str, dict[str, list[float]]]:
    """The outbox's rows measured with the table it replaced and with SQLite."""
    old, lite = TableOutbox(store), SqliteOutbox(base / "outbox.sqlite")
    found: dict[str, dict[str, list[float]]] = {PUBLISH: {}, DELIVER: {}}
    for label, variant in ((OLD_TABLE, old), (SQLITE, lite)):
        variant.fill(KEEP_EVENTS, "bot")
        fns = actions(store, names, variant)
        for title in found:
            found[title][label] = per_call_ms(fns[title])
    return found


def main() -> None:
    with tempdir("cpbench-store-") as base:
        store = open_store(base / "data")
        t0 = time.monotonic()
        names = populate(store, PROJECTS, COMMITS)
        outbox = Outbox(store)
        for i in range(KEEP_EVENTS):
            event = outbox.publish("sampled", names[i % len(names)], f"event {i} " + "x" * 80)
            outbox.ack("bot", event.seq)  # the notifier caught up
        size = store.path.stat().st_size / 1e6
        log(f"populated {PROJECTS}×{COMMITS} in {time.monotonic() - t0:.1f} s; {size:.1f} MB")
        only = set(sys.argv[1:])  # e.g. `python -m bench.bench_store outbox`: its rows only
        baselines = outbox_baselines(store, names, base)
        for title, fn in actions(store, names, outbox).items():
            if only and title not in baselines:
                continue
            runs = per_call_ms(fn)
            Figure(
                key=f"store:{title}",
                title=f"store work of a bot action with {PROJECTS} projects × {COMMITS} "
                f"commits: {title}",
                unit="ms",
                samples=runs,
                baselines=baselines.get(title, {}),
                target="≤ 10 ms",
                kind="max",
                limit=10.0,
                note="" if median(runs) <= 10 else NOTES.get(title, ""),
            ).emit()


if __name__ == "__main__":
    main()
