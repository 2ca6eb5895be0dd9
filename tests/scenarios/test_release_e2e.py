"""The release engine end to end, through the CLI, against real git, venvs and supervisord."""

from __future__ import annotations

import threading
import time

import psutil

from controlplane.engine import build
from tests.support.fixtures_release import Plant, add_shop


def test_life_cycle(plant: Plant) -> None:
    plant.commit("1")
    add_shop(plant)

    # test deploy → verdict passed, with the test variables laid over prod's
    out = plant.ok("deploy", "shop", "--test", "--duration", "5")
    assert "passed" in out and "#1" in out
    test = plant.report("test")
    assert test["version"] == "1" and test["api"] == "sk-test-0123456789" and test["lib"] == "1.0"
    assert plant.box.client.info("shop-test").state == "STOPPED"

    # promote: the release the test ran goes live in prod, no rebuild
    built = (plant.settings.logs_dir / "builds" / "shop-1.log").stat().st_mtime
    out = plant.ok("promote", "shop")
    assert "promoted to #1" in out
    assert plant.wait_report("prod", "1")["api"] == "sk-prod-0123456789"
    assert (plant.settings.logs_dir / "builds" / "shop-1.log").stat().st_mtime == built

    # changing a prod variable restarts prod (and only prod) with the new value
    pid = plant.box.wait_state("shop-prod", ("RUNNING",)).pid
    plant.ok("env", "set", "shop", "API_KEY=sk-prod-rotated-42", "--restart")
    assert plant.box.wait_state("shop-prod", ("RUNNING",), not_pid=pid).pid != pid
    deadline = time.monotonic() + 15
    while plant.report("prod")["api"] != "sk-prod-rotated-42" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert plant.report("prod")["api"] == "sk-prod-rotated-42"
    assert plant.box.client.info("shop-test").state == "STOPPED"

    # a new commit; the poller sees it; policy promote: test, then promote
    plant.ok("project", "set", "shop", "policy", "promote")
    plant.ok("project", "set", "shop", "test-duration", "5")
    plant.ok("poll", "shop", "1m")
    plant.commit("2")
    results = plant.stack.poller.poll_once(now=time.time() + 3600)
    assert [(r.project, r.new) for r in results] == [("shop", True)]
    op = plant.stack.executor.busy("shop")
    assert op is not None and op.wait(timeout=120), "the policy run did not end"
    assert op.state == "ok", op.result
    assert plant.wait_report("prod", "2")["version"] == "2"
    kinds = [e.kind for e in plant.stack.outbox.recent("shop")]
    assert kinds[-4:] == ["new_commit", "verdict", "promoted", "promoted"][-4:] or (
        {"new_commit", "verdict", "promoted"} <= set(kinds)
    )

    # rollback to #1 by number: a link flip and a restart, no rebuild
    started = time.monotonic()
    out = plant.ok("rollback", "shop", "1")
    assert "rolled back to #1" in out
    assert plant.wait_report("prod", "1")["version"] == "1"
    assert time.monotonic() - started < 30
    assert (plant.settings.logs_dir / "builds" / "shop-1.log").stat().st_mtime == built

    # keep=2: two more commits deployed prune #1 and #2 (the test slot holds #2, but it is
    # stopped: it pins nothing, and is discarded with its release); rolling back to #1
    # builds it again
    plant.commit("3")
    plant.ok("deploy", "shop")
    plant.commit("4")
    plant.ok("deploy", "shop")
    releases = {r.n: r.state for r in plant.stack.store.releases("shop")}
    assert releases == {1: "pruned", 2: "pruned", 3: "ready", 4: "ready"}, releases
    assert plant.stack.store.state("shop").test is None
    assert (
        not (plant.stack.engine.releases_dir("shop"))
        .joinpath("1-" + plant.stack.store.commits("shop")[0].short)
        .exists()
    )
    plant.ok("rollback", "shop", "1")
    assert plant.wait_report("prod", "1")["version"] == "1"
    assert {r.n: r.state for r in plant.stack.store.releases("shop")}[1] == "ready"
    assert (plant.settings.logs_dir / "builds" / "shop-1.log").stat().st_mtime > built
    history = plant.ok("history", "shop").splitlines()
    assert history[-1].startswith("#1") and "live prod" in history[-1]

    # a commit whose requirements fail: release failed, prod untouched, pip's error shown
    plant.commit("5", requirements="no-such-package-xyz==9.9\n")
    done = plant.cli("deploy", "shop")
    assert done.returncode == 1
    assert "no-such-package-xyz" in done.stdout + done.stderr
    assert plant.report("prod")["version"] == "1"
    assert {r.n: r.state for r in plant.stack.store.releases("shop")}[5] == "failed"

    # an app that crashes at start: verdict failed; deployed to prod it reverts by itself
    plant.commit("6", crash=True)
    done = plant.cli("deploy", "shop", "--test", "--duration", "5")
    assert done.returncode == 1 and "failed" in done.stderr, done.stderr
    done = plant.cli("deploy", "shop")
    assert done.returncode == 1 and "reverted to #1" in done.stderr, done.stdout + done.stderr
    assert plant.wait_report("prod", "1")["version"] == "1"
    plant.box.wait_state("shop-prod", ("RUNNING",))
    assert "reverted" in [e.kind for e in plant.stack.outbox.recent("shop")]


def test_busy_timeout_and_cancel(plant: Plant) -> None:
    plant.commit("1")
    add_shop(plant)
    # a requirement served by a socket that never answers: the install step hangs
    import socket

    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)
    port = hang.getsockname()[1]
    try:
        plant.ok(
            "env",
            "set",
            "shop",
            f"UV_CONFIG_FILE={plant.box.base / 'hang.toml'}",
            "PIP_NO_INDEX=0",
            f"PIP_INDEX_URL=http://127.0.0.1:{port}/simple",
            "UV_HTTP_TIMEOUT=300",
        )
        (plant.box.base / "hang.toml").write_text(f'index-url = "http://127.0.0.1:{port}/simple"\n')
        (plant.box.base / "hang.toml").chmod(0o644)
        plant.commit("2", requirements="hangs-forever\n")
        # the first step to meet the silent index is pip's upgrade, then the install
        plant.stack.engine.timeouts = build.BuildTimeouts(pip=3, install=3)
        done = plant.cli("deploy", "shop", "--test")
        assert done.returncode == 1 and "timed out" in done.stdout + done.stderr, done.stderr

        # a second operation on a busy project is refused at once
        plant.stack.engine.timeouts = build.BuildTimeouts(pip=120, install=120)
        plant.commit("3", requirements="hangs-too\n")
        first: dict[str, object] = {}
        runner = threading.Thread(
            target=lambda: first.update(done=plant.cli("deploy", "shop", "--test"))
        )
        runner.start()
        deadline = time.monotonic() + 30
        while plant.stack.executor.busy("shop") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        second = plant.cli("deploy", "shop")
        assert second.returncode == 1 and "busy: test since" in second.stderr
        # and cancel stops the hung build; its process group is gone
        assert "cancel requested" in plant.ok("cancel", "shop")
        runner.join(timeout=60)
        done = first["done"]
        assert done.returncode == 1  # type: ignore[attr-defined]
        assert plant.stack.executor.busy("shop") is None
        releases = {r.n: r.state for r in plant.stack.store.releases("shop")}
        assert releases[3] == "failed" and releases[2] == "failed"
        third = plant.stack.store.commits("shop")[-1]
        assert not build.is_ready(plant.stack.engine.release_path("shop", 3, third.sha))
        leftovers = [
            p.info["cmdline"]
            for p in psutil.process_iter(["cmdline"])
            if any("hangs-too" in part for part in p.info["cmdline"] or [])
        ]
        assert leftovers == [], leftovers
    finally:
        hang.close()
