"""Store work behind bot actions with 200 projects × 100 numbered commits.

Each action does what the bot's handler does with the store (the same Store object serve
uses, so its cache is as warm as in serve); the time is the store calls only, not the
Telegram round trip. There is no baseline: the target is absolute (≤ 10 ms).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bench.common import RUNS, Figure, log, median, tempdir
from bench.populate import open_store, populate
from controlplane.adapters.store import Store
from controlplane.service.facade import Service
from controlplane.service.outbox import KEEP_EVENTS, Outbox

PROJECTS = 200
COMMITS = 100
NOTES = {
    "an event published, then delivered by the notifier": "Two writes (publish, then the "
    "notifier's ack) of the outbox file, which keeps the last 2000 events (about 400 kB): "
    "each write serialises and fsyncs all of it. The outbox is already out of store.json; "
    "left to do: keep delivered events in an append-only log, or keep fewer of them.",
}


def actions(store: Store, names: list[str]) -> dict[str, Callable[[int], object]]:
    """Bot actions → the store work they do (i picks a project)."""
    outbox = Outbox(store)
    config = Service(store.settings, store).config

    def name(i: int) -> str:
        return names[(i * 37) % len(names)]

    def projects_list(i: int) -> object:
        return [(p, store.state(p.name)) for p in store.list_projects()]

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
        "projects list (200 rows)": projects_list,
        "project screen": project_screen,
        "rollback list (100 commits)": rollback_list,
        "set poll interval (a write)": set_poll,
        "set a variable (a write)": set_variable,
        "record operation state (a write)": record_op,
        f"publish an event ({KEEP_EVENTS} kept)": publish_event,
        "an event published, then delivered by the notifier": deliver_event,
    }


def main() -> None:
    with tempdir("cpbench-store-") as base:
        store = open_store(base / "data")
        t0 = time.monotonic()
        names = populate(store, PROJECTS, COMMITS)
        outbox = Outbox(store)
        for i in range(KEEP_EVENTS):
            outbox.publish("sampled", names[i % len(names)], f"event {i} " + "x" * 80)
        with store.rows("outbox", "outbox", write=True) as rows:  # the notifier caught up
            for row in rows.values():
                row["acked"] = ["bot"]
        size = store.path.stat().st_size / 1e6
        log(f"populated {PROJECTS}×{COMMITS} in {time.monotonic() - t0:.1f} s; {size:.1f} MB")
        per_run = 20
        for title, fn in actions(store, names).items():
            runs = []
            for r in range(max(RUNS, 5)):
                t = time.perf_counter()
                for i in range(per_run):
                    fn(r * per_run + i)
                runs.append((time.perf_counter() - t) / per_run * 1000)
            Figure(
                key=f"store:{title}",
                title=f"store work of a bot action with {PROJECTS} projects × {COMMITS} "
                f"commits: {title}",
                unit="ms",
                samples=runs,
                target="≤ 10 ms",
                kind="max",
                limit=10.0,
                note="" if median(runs) <= 10 else NOTES.get(title, ""),
            ).emit()


if __name__ == "__main__":
    main()
