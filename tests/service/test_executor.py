"""The executor: one operation per project, a build-slot limit, failures, cancel, followers."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from controlplane.adapters import runner
from controlplane.errors import ControlPlaneError
from controlplane.i18n import Text
from controlplane.service.executor import (
    MAX_EVENTS,
    WAITING_FOR_SLOT,
    Busy,
    Executor,
    Operation,
    Progress,
    ShuttingDown,
    outcome,
)

WAIT = 10.0


@pytest.fixture
def executor() -> Iterator[Executor]:
    ex = Executor()
    yield ex
    ex.shutdown(wait=WAIT)


def gated(gate: threading.Event, result: str = "finished") -> Callable[[Operation], str]:
    """An operation that reports a step, then waits for the gate (or a cancel)."""

    def fn(op: Operation) -> str:
        op.step("started")
        while not gate.wait(0.05):
            op.raise_if_cancelled()
        op.step("after the gate")
        return result

    return fn


def finish(op: Operation) -> Operation:
    assert op.wait(WAIT), f"{op} did not finish"
    return op


def test_busy_message_shows_op_and_local_clock() -> None:
    since = time.mktime((2024, 5, 1, 12, 3, 4, 0, 0, -1))
    exc = Busy("alpha", "deploy", since)
    assert str(exc) == "busy: deploy since 12:03:04"
    assert (exc.project, exc.op, exc.since) == ("alpha", "deploy", since)
    assert isinstance(exc, ControlPlaneError)


def test_second_op_on_a_project_is_busy_while_another_project_proceeds(
    executor: Executor,
) -> None:
    gate = threading.Event()
    deploy = executor.submit("alpha", "deploy", gated(gate))
    with pytest.raises(Busy) as caught:
        executor.submit("alpha", "restart", lambda op: "never")
    clock = time.strftime("%H:%M:%S", time.localtime(deploy.since))
    assert str(caught.value) == f"busy: deploy since {clock}"
    assert re.fullmatch(r"busy: deploy since \d\d:\d\d:\d\d", str(caught.value))

    other = finish(executor.submit("beta", "deploy", lambda op: "beta deployed"))
    assert (other.state, other.result) == ("ok", "beta deployed")
    assert executor.busy("alpha") is deploy and not deploy.done
    assert executor.running() == [deploy]

    gate.set()
    assert finish(deploy).state == "ok"
    assert executor.busy("alpha") is None
    again = finish(executor.submit("alpha", "restart", lambda op: "restarted"))
    assert again.result == "restarted"
    assert executor.get(deploy.id) is deploy and executor.get("nope") is None


def test_heavy_operations_share_two_slots_and_light_ones_do_not_wait() -> None:
    executor = Executor(heavy_limit=2)
    lock = threading.Condition()
    inside: list[str] = []
    most = 0
    gate = threading.Event()

    def build(op: Operation) -> str:
        nonlocal most
        with lock:
            inside.append(op.project)
            most = max(most, len(inside))
            lock.notify_all()
        gate.wait(WAIT)
        with lock:
            inside.remove(op.project)
        return "built"

    ops = [executor.submit(name, "build", build, heavy=True) for name in ("a", "b", "c")]
    with lock:
        assert lock.wait_for(lambda: len(inside) == 2, WAIT)
        waiting = [op for op in ops if op.project not in inside]
    assert len(waiting) == 1
    first = waiting[0].wait_events(0, timeout=WAIT)
    assert [(e.kind, e.message) for e in first] == [("step", WAITING_FOR_SLOT)]

    light = finish(executor.submit("d", "restart", lambda op: "restarted"))
    assert light.state == "ok"

    gate.set()
    assert all(finish(op).state == "ok" for op in ops)
    assert most == 2
    executor.shutdown(wait=WAIT)


def test_a_failing_operation_becomes_failed_and_the_executor_keeps_working(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished: list[Operation] = []
    heard = threading.Condition()

    def on_finish(op: Operation) -> None:
        with heard:
            finished.append(op)
            heard.notify_all()
        raise RuntimeError("a broken listener must not matter")

    executor = Executor(on_finish=on_finish)

    def crash(op: Operation) -> str:
        raise KeyError("slot")

    def refuse(op: Operation) -> str:
        raise ControlPlaneError("commit 7 is not on branch main")

    with caplog.at_level(logging.ERROR, logger="controlplane.executor"):
        crashed = finish(executor.submit("alpha", "deploy", crash))
    assert (crashed.state, crashed.result) == ("failed", "internal error: KeyError: 'slot'")
    assert crashed.events[-1].kind == "failed"
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)

    refused = finish(executor.submit("alpha", "deploy", refuse))
    assert (refused.state, refused.result) == ("failed", "commit 7 is not on branch main")

    fine = finish(executor.submit("alpha", "deploy", lambda op: "deployed 8"))
    assert (fine.state, fine.result) == ("ok", "deployed 8")
    assert (fine.events[-1].kind, fine.events[-1].text) == ("done", "deployed 8")
    # on_finish runs after the op is marked done, so wait for the listener itself
    with heard:
        assert heard.wait_for(lambda: len(finished) == 3, WAIT)
    assert finished == [crashed, refused, fine]
    executor.shutdown(wait=WAIT)


def test_cancel_sets_the_event_and_the_operation_ends_cancelled(executor: Executor) -> None:
    op = executor.submit("alpha", "deploy", gated(threading.Event()))
    op.wait_events(0, timeout=WAIT)
    assert executor.cancel("alpha") is True
    assert op.cancel.is_set()
    assert (finish(op).state, op.result) == ("cancelled", "cancelled")
    assert op.events[-1].kind == "failed"
    assert executor.cancel("alpha") is False


def test_cancel_stops_a_subprocess_through_the_runner(executor: Executor) -> None:
    def sleep(op: Operation) -> str:
        op.step("sleeping")
        runner.run(["sleep", "60"], cancel=op.cancel, timeout=WAIT * 3)
        return "slept"

    op = executor.submit("alpha", "build", sleep)
    op.wait_events(0, timeout=WAIT)
    executor.cancel("alpha")
    assert finish(op).state == "cancelled"


def test_cancel_while_waiting_for_a_build_slot_never_runs_it() -> None:
    executor = Executor(heavy_limit=1)
    gate = threading.Event()
    ran: list[str] = []
    holder = executor.submit("a", "build", gated(gate), heavy=True)
    holder.wait_events(0, timeout=WAIT)

    def build(op: Operation) -> str:
        ran.append(op.project)
        return "built"

    waiting = executor.submit("b", "build", build, heavy=True)
    assert waiting.wait_events(0, timeout=WAIT)[0].message == WAITING_FOR_SLOT
    executor.cancel("b")
    assert finish(waiting).state == "cancelled"
    gate.set()
    assert finish(holder).state == "ok"
    assert ran == []
    executor.shutdown(wait=WAIT)


def test_several_followers_see_the_same_events_in_order(executor: Executor) -> None:
    gate = threading.Event()

    def deploy(op: Operation) -> str:
        op.step("fetch")
        op.log("From https://example.org/app\n")
        gate.wait(WAIT)
        op.step("install")
        for n in range(20):
            op.log(f"line {n}")
        return "deployed 3"

    op = executor.submit("alpha", "deploy", deploy)
    early = op.wait_events(1, timeout=WAIT)  # fetch and its log line are out
    now = op.last_seq
    seen: dict[str, list[Progress]] = {}

    def follow(name: str, after: int) -> None:
        seen[name] = list(op.follow(after))

    threads = [
        threading.Thread(target=follow, args=(name, after))
        for name, after in (("cli", 0), ("bot", 0), ("late", now))
    ]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(WAIT)
    assert seen["cli"] == seen["bot"]
    assert [e.seq for e in seen["cli"]] == list(range(1, 25))
    assert seen["cli"][1].text == "From https://example.org/app"
    assert seen["cli"][-1].kind == "done" and seen["cli"][-1].text == "deployed 3"
    assert seen["late"] == [e for e in seen["cli"] if e.seq > now]
    assert early and early[-1].seq <= now
    assert list(op.follow()) == seen["cli"]  # a follower after the end gets it all at once


def test_events_are_bounded_and_waiting_can_time_out(executor: Executor) -> None:
    gate = threading.Event()

    def chatty(op: Operation) -> str:
        for n in range(MAX_EVENTS + 100):
            op.log(f"line {n}")
        gate.wait(WAIT)
        return "quiet now"

    op = executor.submit("alpha", "build", chatty)
    assert op.wait(0.01) is False
    with pytest.raises(Busy):
        executor.submit("alpha", "build", chatty)
    gate.set()
    finish(op)
    events = list(op.follow())
    assert len(events) == MAX_EVENTS
    assert events[0].seq == 102 and events[-1].kind == "done"
    assert op.wait_events(events[-1].seq, timeout=0.01) == []


def test_shutdown_cancels_running_operations_and_refuses_new_ones() -> None:
    executor = Executor()
    op = executor.submit("alpha", "deploy", gated(threading.Event()))
    op.wait_events(0, timeout=WAIT)
    executor.shutdown(wait=WAIT)
    assert op.state == "cancelled"
    with pytest.raises(ShuttingDown):
        executor.submit("beta", "deploy", lambda op: "never")


def test_outcome_names_the_state_and_the_text() -> None:
    def shown(state_text: tuple[str, Text], lang: str = "en") -> tuple[str, str]:
        return state_text[0], state_text[1].render(lang)

    assert shown(outcome(ControlPlaneError("no such commit"), False)) == (
        "failed",
        "no such commit",
    )
    assert shown(outcome(ControlPlaneError("killed"), True)) == ("cancelled", "cancelled")
    assert shown(outcome(ValueError("x"), True)) == ("failed", "internal error: ValueError: x")
    assert shown(outcome(ValueError("x"), True), "ru") == (
        "failed",
        "внутренняя ошибка: ValueError: x",
    )


def test_busy_names_the_operation_in_the_readers_language() -> None:
    busy = Busy("alpha", "deploy", 0.0)
    assert str(busy).startswith("busy: deploy since ")
    assert busy.text.render("ru").startswith("занято: ")
    assert "busy" not in busy.text.render("ru")


def test_heavy_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="heavy_limit"):
        Executor(heavy_limit=0)
