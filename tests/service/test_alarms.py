"""Error reports (service/alarms.py): an exception injected in each of serve's loops (the
reconcile loop, serve's own loop, a poll round, the load sampler, the notifier) reaches
the admins once as an `alarm` event, repeats come grouped with a count after 10 minutes,
the loop goes on, and a report never raises, also when the outbox cannot take it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.events import EventTail
from controlplane.bot.context import Deps
from controlplane.bot.notifier import MAX_TRIES, Notifier
from controlplane.domain.events import Event
from controlplane.domain.kinds import EventKind
from controlplane.domain.models import Project
from controlplane.errors import StoreError
from controlplane.i18n import Text, tr
from controlplane.observe.load import Probe, Sampler, Snapshot
from controlplane.service.alarms import Alarms, Part
from controlplane.service.facade import Service
from controlplane.service.outbox import Outbox
from controlplane.service.poller import Poller
from controlplane.service.serve import FatalRetry, Server, build_runtime
from controlplane.settings import Settings
from tests.support.fixtures_supervisor import BoxFactory

SHA = "a" * 40


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def alarms_in(outbox: Outbox) -> list[Event]:
    return [e for e in outbox.recent(limit=500) if e.kind == EventKind.ALARM]


def damage(path: Path) -> bytes:
    """The store file cut short (a full disk, a crash mid-write); returns what it held."""
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    return good


# -- the reporter --------------------------------------------------------------------------


def test_a_report_goes_out_once_then_repeats_come_counted_every_10_minutes(
    store: Store, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    outbox, clock = Outbox(store), Clock()
    alarms = Alarms(outbox, clock, log_path=settings.layout.serve_log)
    caplog.set_level(logging.ERROR, "controlplane.service.alarms")

    def boom(n: int) -> RuntimeError:
        try:
            raise RuntimeError(f"probe broke {n}")
        except RuntimeError as exc:
            return exc

    alarms.report(Part.SAMPLER, boom(1))
    (first,) = alarms_in(outbox)
    assert first.message.render("en") == (
        "Internal error in the load sampler: RuntimeError: probe broke 1\n"
        "What I did: The next sample is taken as usual, in 30 s.\n"
        f"What you can do: See the traceback in {settings.layout.serve_log}; report it if it "
        "keeps happening."
    )
    russian = first.message.render("ru")
    assert russian.startswith("Внутренняя ошибка (замер нагрузки): RuntimeError: probe broke 1")
    assert "Что я сделал: Следующий замер" in russian
    record = caplog.records[-1]
    assert record.exc_info is not None and "probe broke 1" in caplog.text  # with its traceback

    for n in range(2, 6):  # within the window: counted, not sent
        clock.now += 60
        alarms.report(Part.SAMPLER, boom(n))
    assert alarms.tick() == 0 and len(alarms_in(outbox)) == 1
    clock.now = 1000.0 + 600
    assert alarms.tick() == 1 and alarms.tick() == 0
    repeat = alarms_in(outbox)[-1]
    assert "probe broke 5" in repeat.text and "Seen 4 times in the last 10 minutes." in repeat.text
    assert "За последние 10 минут: 4 раза." in repeat.message.render("ru")
    assert repeat.data == {"part": "sampler", "count": 4}

    # quiet for a window: the group is forgotten, the next error is told at once
    clock.now += 600
    alarms.tick()
    alarms.report(Part.SAMPLER, boom(6))
    assert len(alarms_in(outbox)) == 3 and "Seen" not in alarms_in(outbox)[-1].text


def test_groups_are_per_part_and_project_and_our_errors_are_translated(store: Store) -> None:
    outbox = Outbox(store)
    alarms = Alarms(outbox, Clock(), redact=lambda s: s.replace("hunter2", "***"))
    alarms.report(Part.POLLER, RuntimeError("x"), project="shop")
    alarms.report(Part.POLLER, RuntimeError("x"), project="blog")
    alarms.report(Part.POLLER, RuntimeError("y"))
    alarms.report(
        Part.RECONCILE, StoreError(tr("cannot write {path}: {reason}", path="/d", reason="hunter2"))
    )
    reports = alarms_in(outbox)
    assert [(e.project, e.data["part"]) for e in reports] == [
        ("shop", "poller"),
        ("blog", "poller"),
        (None, "poller"),
        (None, "reconcile"),
    ]
    reconcile = reports[-1]
    assert "hunter2" not in reconcile.text and "cannot write /d: ***" in reconcile.text
    assert "не удаётся записать /d: ***" in reconcile.message.render("ru")  # ours: translated


class BrokenOutbox:
    """An outbox whose every publish fails (the store's disk full)."""

    def __init__(self) -> None:
        self.broken = True
        self.events: list[tuple[str, Text]] = []

    def publish(self, kind: EventKind, project: str | None, text: Text | str, **data: Any) -> Event:
        if self.broken:
            raise OSError(28, "No space left on device")
        assert isinstance(text, Text)
        self.events.append((kind, text))
        return Event(seq=len(self.events), at=0.0, kind=kind, project=project, text=str(text))


def test_a_report_never_raises_and_is_sent_once_the_outbox_works_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outbox, clock = BrokenOutbox(), Clock()

    def broken_redact(text: str) -> str:
        raise RuntimeError("redactor broke")

    alarms = Alarms(outbox, clock, redact=broken_redact)
    alarms.report(Part.NOTIFIER, ValueError("bad"))  # the outbox and the redactor fail
    alarms.report(Part.NOTIFIER, ValueError("bad"))
    alarms.report("no such part", KeyError("k"), did=Text("not a msgid"))
    assert alarms.tick(clock.now + 1) == 0
    assert "the error report could not be published" in caplog.text
    outbox.broken = False
    alarms.report(Part.NOTIFIER, ValueError("bad"))  # told nobody yet: at once, with the count
    assert len(outbox.events) == 1
    kind, text = outbox.events[0]
    assert kind == EventKind.ALARM and "Seen 3 times" in str(text)
    assert "ValueError" in str(text) and "bad" not in str(text)  # unredacted: the type only


# -- serve's loop: reconcile and a pass --------------------------------------------------


def test_a_damaged_store_at_reconcile_is_reported_once_and_retried(
    box_factory: BoxFactory,
) -> None:
    box = box_factory()
    box.add_project("shop")
    outbox, clock = Outbox(box.store), Clock()
    server = Server(
        settings=box.settings,
        store=box.store,
        client=box.client,
        retry=FatalRetry(),
        tail=EventTail(box.settings.layout.events_log),
        outbox=outbox,
        alarms=Alarms(outbox, clock),
    )
    good = damage(box.store.path)
    server.serve_once(0.0)
    server.serve_once(5.0)  # the next pass runs; the retry is not due yet
    server.serve_once(10.0)  # tried again, failed again: counted
    assert not server.reconciled
    (report,) = alarms_in(outbox)
    assert report.text.startswith("Internal error in the reconcile loop: ")
    assert "damaged" in report.text and "applied again in 10 s" in report.text
    box.store.path.write_bytes(good)
    server.serve_once(20.0)
    assert server.reconciled
    box.wait_state("shop-prod", ("RUNNING",))
    clock.now += 600
    server.serve_once(21.0)  # the loop sends the counted report
    assert "Seen 1 time in the last 10 minutes." in alarms_in(outbox)[-1].text
    assert len(alarms_in(outbox)) == 2


class FailingTail(EventTail):
    """The event listener's log, unreadable for the first `times` reads."""

    def __init__(self, path: Path, times: int) -> None:
        super().__init__(path)
        self.file = path
        self.times = times
        self.reads = 0

    def read_new(self) -> list[dict[str, Any]]:
        self.reads += 1
        if self.reads <= self.times:
            raise PermissionError(13, "Permission denied", str(self.file))
        return super().read_new()


def test_a_pass_of_serve_that_fails_is_reported_and_the_loop_goes_on(
    store: Store, settings: Settings
) -> None:
    outbox = Outbox(store)
    tail = FailingTail(settings.layout.events_log, times=3)
    server = Server(
        settings=settings,
        store=store,
        client=None,  # type: ignore[arg-type]  # never reached: reconciled already
        retry=FatalRetry(),
        tail=tail,
        outbox=outbox,
        alarms=Alarms(outbox),
        reconciled=True,
    )
    stop = threading.Event()
    thread = threading.Thread(target=server.run, args=(stop, 0.01))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while tail.reads < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(10)
    assert tail.reads >= 6, "the loop went on after the failed passes"
    (report,) = alarms_in(outbox)
    assert report.text.startswith("Internal error in the main loop of serve: PermissionError")
    assert "The next pass of the loop runs as usual" in report.text


# -- the poller ----------------------------------------------------------------------------


def test_a_poll_round_that_fails_as_a_whole_is_reported_and_the_next_runs(store: Store) -> None:
    store.add_project(
        Project(name="shop", repo="https://example.com/x.git", path="/srv/shop", poll=300)
    )
    outbox, checked = Outbox(store), []

    def check(project: Project) -> str:
        checked.append(project.name)
        return SHA

    poller = Poller(store, outbox, check=check, on_new=lambda p, s: None, alarms=Alarms(outbox))
    good = damage(store.path)
    assert poller.round_once() is False
    assert poller.round_once() is False
    (report,) = alarms_in(outbox)
    assert report.text.startswith("Internal error in the poll round: ")
    assert "The next round runs as usual" in report.text
    store.path.write_bytes(good)
    assert poller.round_once() is True
    deadline = time.monotonic() + 10
    while not checked and time.monotonic() < deadline:
        time.sleep(0.01)
    poller.close()
    assert checked == ["shop"]


def test_a_check_whose_result_cannot_be_recorded_is_reported_with_its_project(
    store: Store,
) -> None:
    store.add_project(
        Project(name="shop", repo="https://example.com/x.git", path="/srv/shop", poll=300)
    )
    outbox = Outbox(store)
    good: list[bytes] = []

    def check(project: Project) -> str:  # the store damaged while git answered
        good.append(damage(store.path))
        return SHA

    poller = Poller(store, outbox, check=check, on_new=lambda p, s: None, alarms=Alarms(outbox))
    (result,) = poller.poll_once()
    poller.close()
    store.path.write_bytes(good[0])
    assert not result.ok
    (report,) = alarms_in(outbox)
    assert report.project == "shop"
    assert "Its result was not recorded; shop is checked again at its next time." in report.text


# -- the load sampler ----------------------------------------------------------------------


class FailingProbe(Probe):
    """A probe whose first `times` snapshots fail (a cgroup file gone mid-read)."""

    def __init__(self, settings: Settings, times: int) -> None:
        super().__init__(settings)
        self.times = times
        self.calls = 0

    def take(self, *args: Any, **kwargs: Any) -> Snapshot:
        self.calls += 1
        if self.calls <= self.times:
            raise FileNotFoundError(2, "No such file or directory", "/sys/fs/cgroup/cpu.stat")
        return super().take(*args, **kwargs)


def test_a_failing_sample_is_reported_once_and_sampling_goes_on(
    store: Store, settings: Settings
) -> None:
    outbox, clock = Outbox(store), Clock()
    alarms = Alarms(outbox, clock)
    probe = FailingProbe(settings, times=3)
    sampler = Sampler(probe, None, interval=0.01, on_error=alarms.reporter(Part.SAMPLER))
    stop = threading.Event()
    thread = threading.Thread(target=sampler.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while sampler.last is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(30)
    assert sampler.last is not None, "sampling went on after the failures"
    (report,) = alarms_in(outbox)
    assert report.text.startswith("Internal error in the load sampler: FileNotFoundError")
    clock.now += 600
    assert alarms.tick() == 1
    assert "Seen 2 times in the last 10 minutes." in alarms_in(outbox)[-1].text


# -- the notifier --------------------------------------------------------------------------


class Send:
    """The notifier's send: fails while `broken`, records what went out."""

    def __init__(self) -> None:
        self.broken = True
        self.sent: list[tuple[int, str]] = []
        self.tries = 0

    async def __call__(self, chat: int, text: str, **kwargs: Any) -> object:
        self.tries += 1
        if self.broken:
            raise RuntimeError("send broke")
        self.sent.append((chat, text))
        return None


def test_the_notifier_reports_its_own_failures_without_reporting_about_its_reports(
    store: Store, settings: Settings
) -> None:
    settings = dataclasses.replace(settings, admin_chat_ids=frozenset({1, 2}))
    runtime = build_runtime(settings, store)
    clock = Clock()
    runtime = dataclasses.replace(runtime, alarms=Alarms(runtime.outbox, clock))
    outbox = runtime.outbox
    send = Send()
    notifier = Notifier(
        None, Deps(settings=settings, service=Service(settings, store, runtime)), send=send
    )
    outbox.publish(EventKind.DEPLOYED, "shop", "shop deployed to #1")

    async def passes(n: int) -> None:
        for _ in range(n):
            await notifier.deliver_once()  # never raises

    asyncio.run(passes(10))
    (report,) = alarms_in(outbox)
    assert report.text.startswith("Internal error in the notifier: RuntimeError: send broke")
    assert outbox.pending("bot:1") == [] and outbox.pending("bot:2") == []  # skipped in the end
    tries = send.tries
    assert tries == 2 * MAX_TRIES * 2  # the event and the report, 3 tries each, 2 chats

    clock.now += 600
    assert runtime.alarms.tick() == 1  # the counted failures of the event (5 more)
    asyncio.run(passes(10))
    assert len(alarms_in(outbox)) == 2, "no report about a report that could not be sent"
    assert "Seen 5 times" in alarms_in(outbox)[-1].text
    clock.now += 1200
    assert runtime.alarms.tick() == 0

    send.broken = False  # the fault is gone: delivery goes on
    outbox.publish(EventKind.DEPLOYED, "shop", "shop deployed to #2")
    asyncio.run(passes(1))
    assert [chat for chat, text in send.sent if "#2" in text] == [1, 2]
