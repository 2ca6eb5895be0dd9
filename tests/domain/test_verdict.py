"""The test run's verdict: the pure judgement, and the records the store keeps."""

from __future__ import annotations

import json

import pytest

from controlplane.domain.history import SlotState
from controlplane.domain.verdict import (
    CheckResult,
    Evidence,
    Verdict,
    cancelled_reason,
    check_line,
    crash_looping,
    crash_text,
    evidence_lines,
    judge,
    verdict_lines,
)
from controlplane.i18n import Text, tr

# a verdict as the store has kept it since before the dataclass: the format must not move
STORED = {
    "passed": False,
    "reason": "check failed: pytest exited 1",
    "at": 1_700_000_000.5,
    "early": False,
    "duration": 60,
    "check": {
        "ok": False,
        "seconds": 1.25,
        "tail": ["E   assert 1 == 2", "1 failed"],
        "omitted": 3,
        "error": "pytest exited 1",
    },
    "evidence": {
        "program": "shop-test",
        "elapsed": 0.0,
        "duration": 0.0,
        "state": "UNKNOWN",
        "pid": 0,
        "restarts": 0,
        "exit_codes": [],
        "peak_memory": 0,
        "memory_kind": "PSS",
        "errors": 0,
        "last_lines": [],
    },
}


def test_judge_and_crash_loop() -> None:
    def english(verdict: tuple[bool, Text]) -> tuple[bool, str]:
        return verdict[0], str(verdict[1])

    ok = Evidence(program="p", state="RUNNING")
    assert english(judge(ok, None)) == (True, "stayed up without restarts")
    failed = CheckResult(ok=False, error="pytest exited 1")
    assert english(judge(ok, failed)) == (False, "check failed: pytest exited 1")
    assert english(judge(ok, CheckResult(ok=False))) == (False, "check failed: non-zero exit")
    assert judge(ok, CheckResult(ok=True))[0] is True
    crashed = Evidence(program="p", state="RUNNING", restarts=2, exit_codes=[3, 3])
    assert english(judge(crashed, None)) == (False, "restarted 2 times (exit codes 3, 3)")
    once = Evidence(program="p", state="RUNNING", restarts=1, exit_codes=[3])
    assert english(judge(once, None)) == (False, "restarted 1 time (exit codes 3)")
    assert str(judge(Evidence(program="p", state="FATAL"), None)[1]) == (
        "not running at the end (FATAL)"
    )
    assert crash_looping(Evidence(program="p", state="BACKOFF"))
    assert not crash_looping(Evidence(program="p", state="RUNNING", restarts=1))


def test_a_stored_verdict_reads_back_and_writes_the_same() -> None:
    verdict = Verdict.from_dict(STORED)
    assert verdict.passed is False and verdict.reason.startswith("check failed")
    assert verdict.check == CheckResult(
        ok=False,
        seconds=1.25,
        tail=["E   assert 1 == 2", "1 failed"],
        omitted=3,
        error="pytest exited 1",
    )
    assert verdict.evidence == Evidence(program="shop-test")
    assert verdict.to_dict() == STORED


def test_a_full_verdict_round_trips() -> None:
    evidence = Evidence(
        program="shop-test",
        elapsed=61.2,
        duration=60,
        state="RUNNING",
        pid=42,
        exit_codes=[1],
        peak_memory=35 << 20,
        errors=1,
        last_lines=["ERROR x"],
    )
    verdict = Verdict(
        passed=True,
        reason="stayed up without restarts",
        at=5.0,
        early=True,
        duration=60,
        check=CheckResult(ok=True, seconds=0.5, tail=["ok"]),
        evidence=evidence,
    )
    assert Verdict.from_dict(verdict.to_dict()) == verdict


def test_an_interrupted_verdict_and_an_old_one_without_details() -> None:
    old = {"passed": False, "reason": "interrupted by a restart", "at": 7.0}
    verdict = Verdict.from_dict(old)
    assert verdict == Verdict.interrupted(7.0)
    assert (verdict.check, verdict.evidence, verdict.early) == (None, None, False)
    assert {k: verdict.to_dict()[k] for k in old} == old
    # fields a later version may add are ignored on reading
    assert Verdict.from_dict({**old, "extra": 1}) == verdict


def test_the_slot_state_gives_the_test_runs_verdict() -> None:
    assert SlotState().test_verdict is None
    assert SlotState(test_run={"n": 3, "started": 1.0}).test_verdict is None
    state = SlotState(test=3, test_run={"n": 3, "verdict": STORED})
    assert state.test_verdict == Verdict.from_dict(STORED)


@pytest.mark.parametrize(
    ("restarts", "russian"),
    [(1, "1 перезапуск"), (3, "3 перезапуска"), (11, "11 перезапусков"), (21, "21 перезапуск")],
)
def test_a_reason_counts_restarts_in_each_language(restarts: int, russian: str) -> None:
    ev = Evidence(program="shop-test", state="RUNNING", restarts=restarts, exit_codes=[1, 3])
    passed, reason = judge(ev, None)
    stored = Verdict.of(passed, reason, 5.0, evidence=ev).to_dict()
    verdict = Verdict.from_dict(json.loads(json.dumps(stored)))  # as the store gives it back
    times = "time" if restarts == 1 else "times"
    assert verdict.reason == f"restarted {restarts} {times} (exit codes 1, 3)"
    assert verdict.reason_text.render("ru") == f"{russian} (коды выхода: 1, 3)"
    assert str(verdict.reason_text) == verdict.reason


def test_an_older_verdict_without_its_text_still_reads() -> None:
    verdict = Verdict.from_dict(STORED)
    assert verdict.reason_msg is None and "reason_msg" not in verdict.to_dict()
    # words of its own time are shown as stored; a reason that names nothing is translated
    assert verdict.reason_text.render("ru") == "check failed: pytest exited 1"
    old = Verdict.from_dict({"passed": False, "reason": "interrupted by a restart", "at": 7.0})
    assert old.reason_text.render("ru") == "прерван перезапуском"
    assert str(old.reason_text) == "interrupted by a restart"
    # a damaged text is left out, the English reason stays
    broken = Verdict.from_dict({**STORED, "reason_msg": "not a dict"})
    assert broken.reason_msg is None and broken.reason_text.render("en") == STORED["reason"]


def test_a_failed_check_gives_its_reason_in_russian() -> None:
    why = tr("{command} exited with status {status}", command="pytest -q", status=1)
    check = CheckResult(ok=False, seconds=2.0, error=str(why), error_msg=why.to_dict())
    passed, reason = judge(Evidence(program="p", state="RUNNING"), check)
    assert passed is False
    assert str(reason) == "check failed: pytest -q exited with status 1"
    assert reason.render("ru") == "проверка не прошла: pytest -q: код выхода 1"
    again = CheckResult.from_dict(check.to_dict())
    assert again == check and again.error_text == why
    assert check_line(again).render("ru") == "проверка не прошла через 2 с: pytest -q: код выхода 1"


def test_evidence_lines_in_each_language() -> None:
    ev = Evidence(
        program="shop-test",
        elapsed=61.0,
        duration=60.0,
        state="RUNNING",
        restarts=3,
        exit_codes=[1, 1, 2],
        peak_memory=int(1.5 * 2**30),
        errors=2,
    )
    assert [line.render("ru") for line in evidence_lines(ev)] == [
        "работал 1 мин 1 с из 1 мин, в конце RUNNING",
        "3 перезапуска, коды выхода: 1, 1, 2",
        "пик памяти 1,5 ГБ (PSS)",
        "2 строки с ошибками в логе",
    ]
    assert [str(line) for line in evidence_lines(ev)] == [
        "ran 1m 1s of 1m, RUNNING at the end",
        "3 restarts, exit codes 1, 1, 2",
        "peak memory 1.5 GiB (PSS)",
        "2 error lines in the log",
    ]
    calm = Evidence(program="shop-test", elapsed=30.0, duration=30.0, state="RUNNING")
    assert [line.render("ru") for line in evidence_lines(calm)][1:] == [
        "пик памяти 0 Б (PSS)",
        "в логе нет строк с ошибками",
    ]
    verdict = Verdict.of(True, tr("stayed up without restarts"), 1.0, evidence=calm)
    assert verdict_lines(verdict) == evidence_lines(calm)


def test_a_passed_verdict_says_no_restarts_once() -> None:
    calm = Evidence(program="shop-test", elapsed=30.0, duration=30.0, state="RUNNING")
    passed, reason = judge(calm, None)
    verdict = Verdict.of(passed, reason, 1.0, evidence=calm)
    for lang in ("en", "ru"):
        card = "\n".join([reason.render(lang), *(x.render(lang) for x in verdict_lines(verdict))])
        restarts = "restart" if lang == "en" else "перезапуск"
        assert card.count(restarts) == 1, card
    # a crash loop's reason names the restarts: the evidence does not say them again
    crashed = Evidence(
        program="shop-test", elapsed=5.0, state="BACKOFF", restarts=3, exit_codes=[3, 3, 3]
    )
    passed, reason = judge(crashed, None)
    verdict = Verdict.from_dict(Verdict.of(passed, reason, 1.0, evidence=crashed).to_dict())
    card = "\n".join([str(verdict.reason_text), *(str(x) for x in verdict_lines(verdict))])
    assert card.count("restart") == 1 and card.count("3, 3, 3") == 1, card
    assert any("restarts" in str(x) for x in evidence_lines(crashed))  # alone: it says them


def test_a_cancelled_verdict_is_neither_passed_nor_promotable() -> None:
    ev = Evidence(program="shop-test", elapsed=9.0, duration=60.0, state="RUNNING")
    verdict = Verdict.of(False, cancelled_reason(ev), 1.0, early=True, evidence=ev)
    again = Verdict.from_dict(json.loads(json.dumps(verdict.to_dict())))
    assert (again.outcome, again.cancelled, again.promotable) == ("cancelled", True, False)
    assert str(again.reason_text) == "cancelled after 9s; not judged"
    assert again.reason_text.render("ru") == "отменён через 9 с; без вердикта"
    # a row an older version stored as "passed — stopped early" is a cancel too
    old = Verdict.from_dict({"passed": True, "reason": "stopped early", "at": 1.0, "early": True})
    assert (old.outcome, old.promotable) == ("cancelled", False)
    full = Verdict.of(True, tr("stayed up without restarts"), 1.0, evidence=ev)
    assert (full.outcome, full.promotable) == ("passed", True)


def test_a_crash_is_told_with_its_real_count_and_status() -> None:
    # the watch saw BACKOFF before the exit's event came: one exit all the same
    early = Evidence(program="shop-prod", elapsed=1.0, state="BACKOFF")
    assert str(crash_text(early)) == "exited 1 time in 1s (exit status unknown), now BACKOFF"
    ev = Evidence(program="shop-prod", elapsed=4.0, state="BACKOFF", restarts=2, exit_codes=[1, 1])
    assert str(crash_text(ev)) == "exited 2 times in 4s (exit statuses 1, 1), now BACKOFF"
    assert crash_text(ev).render("ru") == (
        "завершился 2 раза за 4 с (коды выхода 1, 1), сейчас BACKOFF"
    )


def test_each_distinct_error_is_listed_once_with_its_count() -> None:
    ev = Evidence(
        program="shop-test",
        elapsed=20.0,
        duration=20.0,
        state="BACKOFF",
        restarts=9,
        exit_codes=[1] * 9,
        errors=9,
        distinct=[
            {"error": "ValueError: boom", "where": "main.py:3", "count": 9},
            {"error": "ERROR: disk full", "where": "", "count": 2},
        ],
    )
    lines = [str(line) for line in evidence_lines(ev)]
    assert lines[-2:] == ["9× ValueError: boom (main.py:3)", "2× ERROR: disk full"]
    assert Evidence.from_dict(json.loads(json.dumps(ev.to_dict()))) == ev
