"""The poller against real git repositories on disk and a real store, with an explicit clock."""

from __future__ import annotations

import itertools
import math
import random
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controlplane.adapters import git
from controlplane.adapters.store import Store
from controlplane.domain.backoff import poll_wait
from controlplane.domain.events import Event
from controlplane.domain.models import Project
from controlplane.domain.units import human_duration
from controlplane.errors import ControlPlaneError
from controlplane.i18n import Text, tr, verbatim
from controlplane.service.outbox import Outbox
from controlplane.service.poller import (
    Poller,
    PollResult,
    next_due,
    one_line,
)
from tests.support.fixtures_repos import Origin

OriginFactory = Callable[..., Origin]
T0 = 1_000_000.0
SECRET = "hunter2-very-secret-pw"


class Recorder:
    """on_new that records what it was given (and can be told to fail)."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = fail
        self.lock = threading.Lock()

    def __call__(self, project: Project, sha: str) -> None:
        with self.lock:
            self.calls.append((project.name, sha))
        if self.fail:
            raise RuntimeError("engine exploded")


def real_check(project: Project) -> str:
    return git.ls_remote(project.repo, project.branch, timeout=30)


def add(store: Store, name: str, url: str, poll: int = 300, **extra: Any) -> Project:
    project = Project(name=name, repo=url, path=f"/srv/apps/{name}", poll=poll)
    store.add_project(project, **extra)
    return project


def make_poller(store: Store, on_new: Callable[[Project, str], None], **kw: Any) -> Poller:
    kw.setdefault("check", real_check)
    kw.setdefault("jitter", 0.0)
    kw.setdefault("rng", random.Random(7))
    return Poller(store, Outbox(store), on_new=on_new, **kw)


def events(store: Store, kind: str, project: str | None = None) -> list[Event]:
    return [e for e in Outbox(store).recent(project, limit=500) if e.kind == kind]


def by_name(results: list[PollResult]) -> dict[str, PollResult]:
    return {r.project: r for r in results}


# -- the pure parts ----------------------------------------------------------------------


def test_next_due_off_never_and_first_poll_at_once() -> None:
    assert next_due(T0, 0, 0, 0.1, 0.5) == math.inf
    assert next_due(None, 0, 3, 0.1, 0.5) == math.inf
    assert next_due(None, 300, 0, 0.1, 0.5) == -math.inf


def test_next_due_jitter_stays_within_fraction_of_interval() -> None:
    assert next_due(T0, 300, 0, 0.1, 0.5) == T0 + 300
    assert next_due(T0, 300, 0, 0.1, 0.0) == T0 + 270
    assert T0 + 329 < next_due(T0, 300, 0, 0.1, 0.9999) <= T0 + 330
    assert next_due(T0, 300, 0, 0.0, 0.9) == T0 + 300


def test_backoff_doubles_and_caps_at_an_hour_or_the_interval() -> None:
    assert [poll_wait(300, f) for f in range(6)] == [300, 600, 1200, 2400, 3600, 3600]
    assert poll_wait(60, 10_000) == 3600
    # a daily poll is never made more frequent, nor pushed further out
    assert [poll_wait(86400, f) for f in range(3)] == [86400, 86400, 86400]
    assert next_due(T0, 300, 3, 0.0, 0.3) == T0 + 2400


def test_human_duration_and_one_line_reason() -> None:
    assert human_duration(42) == "42s"
    assert human_duration(3725) == "1h 2m"
    assert human_duration(0) == "0s"
    assert one_line(KeyError("token")) == "KeyError: 'token'"
    err = git.GitError("ls-remote failed for /x:", url="/x", tail="")
    multi = git.GitError("ls-remote failed for /x:\nfatal: one\nfatal: two", url="/x", tail="")
    assert one_line(err) == "ls-remote failed for /x:"
    assert one_line(multi) == "ls-remote failed for /x: fatal: two"
    assert len(one_line(RuntimeError("x" * 1000))) == 300


def test_constructor_refuses_bad_limits(store: Store) -> None:
    with pytest.raises(ValueError, match="limit"):
        make_poller(store, Recorder(), limit=0)
    with pytest.raises(ValueError, match="jitter"):
        make_poller(store, Recorder(), jitter=1.5)


# -- schedules ---------------------------------------------------------------------------


def test_due_per_interval_and_off_never_polls(store: Store, origin: OriginFactory) -> None:
    o = origin()
    head = o.commits(2)[-1]
    add(store, "five", o.url, poll=300)
    add(store, "hourly", o.url, poll=3600)
    add(store, "off", o.url, poll=0)
    poller = make_poller(store, Recorder())

    first = by_name(poller.poll_once(now=T0))
    assert set(first) == {"five", "hourly"}
    assert all(r.ok and r.head == head and not r.new for r in first.values())
    assert poller.poll_once(now=T0 + 299) == []
    assert [r.project for r in poller.poll_once(now=T0 + 300)] == ["five"]
    assert [r.project for r in poller.poll_once(now=T0 + 3600)] == ["five", "hourly"]
    assert poller.next_poll("off") == math.inf
    assert store.state("off").last_poll is None
    assert store.state("five").last_poll == {
        "at": T0 + 3600,
        "ok": True,
        "head": head,
        "error": None,
    }


def test_jitter_spreads_projects_with_the_same_interval(
    store: Store, origin: OriginFactory
) -> None:
    o = origin()
    o.commits(1)
    for i in range(10):
        add(store, f"p{i}", o.url, poll=600)
    poller = make_poller(store, Recorder(), jitter=0.1)
    poller.poll_once(now=T0)
    dues = [poller.next_poll(f"p{i}") for i in range(10)]
    assert all(d is not None and T0 + 540 <= d <= T0 + 660 for d in dues)
    assert len(set(dues)) == 10


def test_restart_schedules_from_last_poll_not_all_at_once(
    store: Store, origin: OriginFactory
) -> None:
    o = origin()
    o.commits(1)
    add(store, "a", o.url, poll=300)
    add(store, "b", o.url, poll=600)
    make_poller(store, Recorder()).poll_once(now=T0)

    restarted = make_poller(store, Recorder())
    assert restarted.poll_once(now=T0 + 10) == []
    assert [r.project for r in restarted.poll_once(now=T0 + 300)] == ["a"]
    assert [r.project for r in restarted.poll_once(now=T0 + 600)] == ["a", "b"]


def test_interval_change_and_removal_take_effect(store: Store, origin: OriginFactory) -> None:
    o = origin()
    o.commits(1)
    add(store, "app", o.url, poll=3600)
    poller = make_poller(store, Recorder())
    assert len(poller.poll_once(now=T0)) == 1

    store.update_project("app", poll=0)
    assert poller.poll_once(now=T0 + 7200) == []
    store.update_project("app", poll=60)  # last check was long ago: due at once
    assert len(poller.poll_once(now=T0 + 7201)) == 1
    store.remove_project("app")
    assert poller.poll_once(now=T0 + 9999) == []
    assert poller.next_poll("app") is None


# -- change detection --------------------------------------------------------------------


def test_new_commit_calls_on_new_once_with_its_sha(store: Store, origin: OriginFactory) -> None:
    o = origin()
    first = o.commits(3)[-1]
    add(store, "app", o.url, poll=60)
    on_new = Recorder()
    poller = make_poller(store, on_new)

    assert by_name(poller.poll_once(now=T0))["app"].new is False
    assert on_new.calls == []  # the first head is only recorded
    assert store.state("app").head == first
    assert by_name(poller.poll_once(now=T0 + 60))["app"].new is False

    newer = o.commits(1, prefix="feature")[-1]
    result = by_name(poller.poll_once(now=T0 + 120))["app"]
    assert (result.ok, result.new, result.head) == (True, True, newer)
    assert on_new.calls == [("app", newer)]
    assert store.state("app").head == newer
    poller.poll_once(now=T0 + 180)
    assert on_new.calls == [("app", newer)]
    assert events(store, "poll_outage") == events(store, "poll_recovered") == []


def test_force_push_to_an_older_head_is_new_too(store: Store, origin: OriginFactory) -> None:
    o = origin()
    shas = o.commits(3)
    add(store, "app", o.url, poll=60)
    on_new = Recorder()
    poller = make_poller(store, on_new)
    poller.poll_once(now=T0)
    o.reset_hard(shas[0])
    o.push(force=True)
    poller.poll_once(now=T0 + 60)
    assert on_new.calls == [("app", shas[0])]


def test_on_new_raising_is_reported_and_polling_goes_on(
    store: Store, origin: OriginFactory
) -> None:
    a, b = origin("a"), origin("b")
    a.commits(1)
    b.commits(1)
    add(store, "a", a.url, poll=60)
    add(store, "b", b.url, poll=60)
    on_new = Recorder(fail=True)
    poller = make_poller(store, on_new)
    poller.poll_once(now=T0)

    new_a = a.commits(1, prefix="next")[-1]
    new_b = b.commits(1, prefix="next")[-1]
    results = by_name(poller.poll_once(now=T0 + 60))
    assert results["a"].ok and results["a"].new and results["b"].ok and results["b"].new
    assert sorted(on_new.calls) == [("a", new_a), ("b", new_b)]
    errors = events(store, "error")
    assert sorted(e.project or "" for e in errors) == ["a", "b"]
    assert all("engine exploded" in e.text and "could not be handled" in e.text for e in errors)
    # the head moved on: the failure is reported once, not on every poll
    poller.poll_once(now=T0 + 120)
    assert len(on_new.calls) == 2 and len(events(store, "error")) == 2


# -- outages -----------------------------------------------------------------------------


def test_outage_reported_once_backs_off_then_recovery_once(
    store: Store, origin: OriginFactory
) -> None:
    o = origin()
    o.commits(1)
    add(store, "app", o.url, poll=300)
    poller = make_poller(store, Recorder())
    poller.poll_once(now=T0)
    hidden = o.bare.with_name("moved.git")
    o.bare.rename(hidden)

    now, delays = T0 + 300, []
    for _ in range(6):
        result = by_name(poller.poll_once(now=now))["app"]
        assert not result.ok and result.error and "no repository" in result.error
        due = poller.next_poll("app")
        assert due is not None
        delays.append(due - now)
        assert poller.poll_once(now=due - 1) == []
        now = due
    assert delays == [600, 1200, 2400, 3600, 3600, 3600]
    state = store.state("app")
    assert (state.poll_failures, state.outage_since) == (6, T0 + 300)
    assert state.last_poll is not None and state.last_poll["ok"] is False
    outages = events(store, "poll_outage", "app")
    assert len(outages) == 1
    assert "app" in outages[0].text and "no repository" in outages[0].text
    assert "\n" not in outages[0].text
    in_russian = outages[0].message.render("ru")
    assert in_russian.startswith("app: не удаётся проверить ветку main: ")
    assert "Retrying" not in in_russian and "no repository" not in in_russian

    hidden.rename(o.bare)
    assert by_name(poller.poll_once(now=now))["app"].ok
    recovered = events(store, "poll_recovered", "app")
    assert len(recovered) == 1
    assert recovered[0].data["down"] == now - (T0 + 300)
    assert "works again after" in recovered[0].text and "6 failed checks" in recovered[0].text
    assert "(6 неудачных проверок)." in recovered[0].message.render("ru")
    state = store.state("app")
    assert (state.poll_failures, state.outage_since) == (0, None)
    assert poller.next_poll("app") == now + 300
    poller.poll_once(now=now + 300)
    assert len(events(store, "poll_outage")) == len(events(store, "poll_recovered")) == 1


def test_missing_branch_is_an_outage_naming_the_branches(
    store: Store, origin: OriginFactory
) -> None:
    o = origin()
    o.commits(1)
    store.add_project(Project(name="app", repo=o.url, path="/srv/app", branch="dev", poll=60))
    poller = make_poller(store, Recorder())
    result = poller.poll_once(now=T0)[0]
    assert not result.ok and result.error and "branch dev does not exist" in result.error
    assert "main" in events(store, "poll_outage")[0].text


def test_outage_text_never_holds_a_credential(store: Store, origin: OriginFactory) -> None:
    o = origin()
    o.commits(1)
    add(store, "app", o.url, poll=60, repo_auth=f"bob:{SECRET}")
    store.set_env("app", "prod", {"HTTPS_PROXY": "http://proxyuser:proxy-pass-42@proxy:3128"})

    def leaky(project: Project) -> str:
        raise RuntimeError(
            f"cannot reach https://bob:{SECRET}@example.com via http://proxyuser:proxy-pass-42@proxy"
        )

    poller = make_poller(store, Recorder(), check=leaky)
    poller.poll_once(now=T0)
    outage = events(store, "poll_outage")[0]
    text = outage.text
    state = store.state("app")
    shown_ru = outage.message.render("ru")
    for shown in (text, str(state.last_poll), str(outage.msg), shown_ru):
        assert SECRET not in shown and "proxy-pass-42" not in shown
    assert "cannot reach" in text and "cannot reach" in shown_ru  # the error is not ours


def test_our_errors_reason_is_a_text_with_its_secrets_hidden(
    store: Store, origin: OriginFactory
) -> None:
    o = origin()
    o.commits(1)
    add(store, "app", o.url, poll=60, repo_auth=f"bob:{SECRET}")

    def refused(project: Project) -> str:
        url = f"https://bob:{SECRET}@example.com/o/r.git"
        raise ControlPlaneError(tr("cannot reach {url}: {error}", url=url, error=verbatim(SECRET)))

    make_poller(store, Recorder(), check=refused).poll_once(now=T0)
    outage = events(store, "poll_outage")[0]
    state = store.state("app")
    for shown in (outage.text, str(outage.msg), str(state.last_poll)):
        assert SECRET not in shown
    assert state.last_poll is not None
    reason = Text.from_dict(state.last_poll["msg"])
    assert reason.msgid == "cannot reach {url}: {error}" and "example.com" in str(reason)


def test_one_failed_check_is_one_in_the_recovery_text(store: Store, origin: OriginFactory) -> None:
    o = origin()
    o.commits(1)
    add(store, "app", o.url, poll=300)
    poller = make_poller(store, Recorder())
    poller.poll_once(now=T0)
    hidden = o.bare.with_name("moved.git")
    o.bare.rename(hidden)
    poller.poll_once(now=T0 + 300)
    hidden.rename(o.bare)
    poller.poll_once(now=T0 + 900)
    recovered = events(store, "poll_recovered", "app")[0]
    assert recovered.text == "app: checking branch main works again after 10m (1 failed check)."
    assert recovered.message.render("ru") == (
        "app: проверка ветки main снова работает после 10 мин (1 неудачная проверка)."
    )


# -- concurrency, scale and the loop -----------------------------------------------------


def test_concurrency_limit_respected(store: Store) -> None:
    limit = 3
    for i in range(12):
        add(store, f"p{i:02}", f"/nowhere/p{i}.git", poll=60)
    barrier = threading.Barrier(limit, timeout=10)
    lock = threading.Lock()
    running, peak = 0, 0

    def counting(project: Project) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        barrier.wait()  # only passes once `limit` checks run at the same time
        with lock:
            running -= 1
        return "a" * 40

    poller = make_poller(store, Recorder(), check=counting, limit=limit)
    results = poller.poll_once(now=T0)
    assert len(results) == 12 and all(r.ok for r in results)
    assert peak == limit


def test_two_hundred_projects_all_polled(
    store: Store, origin: OriginFactory, tmp_path: Path
) -> None:
    o = origin()
    head = o.commits(2)[-1]
    for i in range(200):
        copy = tmp_path / "many" / f"r{i:03}.git"
        shutil.copytree(o.bare, copy)
        add(store, f"r{i:03}", str(copy), poll=300)
    poller = make_poller(store, Recorder(), jitter=0.1)

    started = time.perf_counter()
    results = poller.poll_once(now=T0)
    took = time.perf_counter() - started
    print(f"200 projects: poll_once took {took:.2f}s")
    assert len(results) == 200 and all(r.ok and r.head == head for r in results)
    assert all(store.state(f"r{i:03}").last_poll for i in range(200))


def test_run_survives_a_failing_round_and_stops(store: Store) -> None:
    add(store, "app", "/nowhere/app.git", poll=60)
    polled = threading.Event()
    calls = {"clock": 0}

    def clock() -> float:
        calls["clock"] += 1
        if calls["clock"] == 1:
            raise OSError("clock trouble")
        return T0 + calls["clock"]

    def check(project: Project) -> str:
        polled.set()
        return "b" * 40

    poller = make_poller(store, Recorder(), check=check, clock=clock)
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop, 0.01), daemon=True)
    thread.start()
    assert polled.wait(10)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert store.state("app").head == "b" * 40


def test_hung_check_holds_up_only_its_own_project(store: Store) -> None:
    add(store, "stuck", "/nowhere/stuck.git", poll=60)
    add(store, "fine", "/nowhere/fine.git", poll=60)
    release, enough = threading.Event(), threading.Event()
    calls = {"stuck": 0, "fine": 0}
    ticks = itertools.count()

    def check(project: Project) -> str:
        calls[project.name] += 1
        if project.name == "stuck":
            release.wait(30)  # a host that answers only at git's timeout
            return "c" * 40
        if calls["fine"] >= 3:
            enough.set()
        return "d" * 40

    poller = make_poller(
        store, Recorder(), check=check, limit=2, clock=lambda: T0 + 60 * next(ticks)
    )
    stop = threading.Event()
    thread = threading.Thread(target=poller.run, args=(stop, 0.01), daemon=True)
    thread.start()
    try:
        assert enough.wait(10), calls
        assert calls["stuck"] == 1  # never started again while its check runs
    finally:
        release.set()
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    deadline = time.monotonic() + 10
    while store.state("stuck").head is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.state("stuck").head == "c" * 40  # the running check was still recorded


def test_close_drops_queued_checks_which_poll_again_later(store: Store) -> None:
    add(store, "a", "/nowhere/a.git", poll=60)
    add(store, "b", "/nowhere/b.git", poll=60)
    started, release = threading.Event(), threading.Event()

    def check(project: Project) -> str:
        if project.name == "a":
            started.set()
            release.wait(30)
        return "e" * 40

    poller = make_poller(store, Recorder(), check=check, limit=1)
    first, second = poller.start_due(now=T0)
    assert started.wait(10)
    poller.close()
    release.set()
    assert first.result(timeout=10).ok
    assert second.cancelled()
    assert [r.project for r in poller.poll_once(now=T0 + 1)] == ["b"]
    assert store.state("b").head == "e" * 40


def test_project_removed_during_its_check_leaves_nothing_behind(store: Store) -> None:
    add(store, "gone", "/nowhere/gone.git", poll=60)
    started, release = threading.Event(), threading.Event()

    def check(project: Project) -> str:
        started.set()
        release.wait(30)
        raise git.HostUnreachable("cannot reach it", url=project.repo, tail="")

    poller = make_poller(store, Recorder(), check=check)
    (future,) = poller.start_due(now=T0)
    assert started.wait(10)
    store.remove_project("gone")
    store.forget("gone")
    release.set()
    assert not future.result(timeout=10).ok
    assert store.state("gone").last_poll is None
    assert events(store, "poll_outage") == []
    assert poller.poll_once(now=T0 + 600) == []
