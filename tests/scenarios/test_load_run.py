"""Load: 200 projects polled every minute against local repositories while 50 button
presses arrive at once and two builds run; the real bot, engine and supervisord.

CI runs the short version: CYCLES poll cycles driven with an advancing clock (no waiting
for the minute). CONTROLPLANE_FULL_LOAD=1 runs the full one: 10 cycles on the real clock,
one a minute (10 minutes), with a burst of 50 presses in every cycle.
"""

from __future__ import annotations

import os
import shutil
import socketserver
import time
from collections.abc import Iterator

import psutil
import pytest

from tests.support.chat import ADMIN, Chat
from tests.support.fixtures_repos import sh_git

FULL = os.environ.get("CONTROLPLANE_FULL_LOAD") == "1"
CYCLES = 10 if FULL else int(os.environ.get("CONTROLPLANE_LOAD_CYCLES", "6"))
PROJECTS = 200
PRESSES = 50
MINUTE = 60.0
STEP = 67.0  # a minute plus the largest jitter (10 %): every project is due again


@pytest.fixture(autouse=True)
def _backlog() -> Iterator[None]:
    saved = socketserver.TCPServer.request_queue_size
    socketserver.TCPServer.request_queue_size = 128
    yield
    socketserver.TCPServer.request_queue_size = saved


@pytest.mark.timeout(900 if FULL else 300)
def test_two_hundred_projects_presses_and_builds(phone: Chat) -> None:
    api, rig = phone.api, phone.plant
    stack = rig.stack
    rig.commit("1")
    for name in ("shop", "shop2"):
        live = str(rig.box.base / "live" / name)
        rig.ok("project", "add", name, "--repo", rig.origin.url, "--path", live)
        rig.ok("env", "set", name, f"UV_CONFIG_FILE={rig.uv_config}")
        rig.ok("project", "set", name, "health-window", "1")
    seed = rig.box.base / "seed.git"
    shutil.copytree(rig.origin.bare, seed)
    names = [f"p{i:03}" for i in range(PROJECTS)]
    for name in names:
        shutil.copytree(seed, rig.box.base / "repos" / f"{name}.git")
        _add_quick(rig, name)
    phone.send("/start")
    menu = phone.wait_text("choose what to do")

    me = psutil.Process()
    now = time.time()
    cycles: list[tuple[float, int, float]] = []
    answered_in: list[float] = []
    builds = []
    for cycle in range(CYCLES):
        if FULL and cycle:
            time.sleep(max(0.0, now + cycle * STEP - time.time()))
        at = now + cycle * STEP + 1
        if cycle == 1:  # two builds while the presses and the polls go on
            builds = [stack.service.submit("deploy", n, {}) for n in ("shop", "shop2")]
        if cycle in (1, 2) or FULL:
            # a new commit in 5 repositories: the poller hands them to the engine
            for name in names[cycle * 5 : cycle * 5 + 5]:
                _push_empty_commit(rig, name)
        queries = [
            api.user_presses(ADMIN, menu.message_id, f"p|{names[i]}", user_id=ADMIN, forged=True)
            for i in range(PRESSES)
        ]
        started = time.monotonic()
        results = stack.poller.poll_once(now=at)
        took = time.monotonic() - started
        api.wait_for(lambda q=queries: all(api.answer_of(x) for x in q), timeout=60)
        answered_in.append(time.monotonic() - started)
        rss = me.memory_info().rss / 2**20
        polled = {r.project for r in results}
        cycles.append((round(took, 2), len(polled), round(rss, 1)))
        assert set(names) <= polled, f"cycle {cycle}: {len(set(names) - polled)} not polled"
        assert took < MINUTE, f"cycle {cycle} took {took:.1f} s: polls would be late"
    for op in builds:
        assert op.wait(timeout=180) and op.state == "ok", op.result
    api.wait_for(lambda: api.pending_updates() == [], timeout=30)
    news = [e for e in stack.outbox.recent(None, 10_000) if e.kind == "new_commit"]
    assert len(news) >= 10, [e.text for e in news]
    api.wait_for(
        lambda: sum("new commit" in m.text for m in api.bot_messages(ADMIN)) >= 1, timeout=60
    )
    print("cycles (seconds, projects polled, RSS MB):", cycles)
    print(f"{PRESSES} presses per cycle answered within (s):", [round(a, 2) for a in answered_in])
    warm = [c[2] for c in cycles[2:]]
    assert max(warm) - min(warm) < 25, f"memory grows from cycle to cycle: {cycles}"


def _add_quick(rig, name: str) -> None:  # type: ignore[no-untyped-def]
    """The project as `project add` writes it, without asking the remote each time."""
    config = rig.stack.service.config
    new = config.check_new(
        name=name,
        repo=str(rig.box.base / "repos" / f"{name}.git"),
        path=str(rig.box.base / "live" / name),
    )
    config.write_new(new, check_remote=False)
    config.set_poll(name, "1m")


def _push_empty_commit(rig, name: str) -> None:  # type: ignore[no-untyped-def]
    bare = rig.box.base / "repos" / f"{name}.git"
    tree = sh_git("rev-parse", "main^{tree}", cwd=bare)
    head = sh_git("rev-parse", "main", cwd=bare)
    sha = sh_git("commit-tree", tree, "-p", head, "-m", f"load {time.time()}", cwd=bare)
    sh_git("update-ref", "refs/heads/main", sha, cwd=bare)
