"""The test run's verdict: the pure judgement, and the records the store keeps."""

from __future__ import annotations

from controlplane.domain.history import SlotState
from controlplane.domain.verdict import CheckResult, Evidence, Verdict, crash_looping, judge

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
    ok = Evidence(program="p", state="RUNNING")
    assert judge(ok, None) == (True, "stayed up without restarts")
    failed = CheckResult(ok=False, error="pytest exited 1")
    assert judge(ok, failed) == (False, "check failed: pytest exited 1")
    assert judge(ok, CheckResult(ok=False)) == (False, "check failed: non-zero exit")
    assert judge(ok, CheckResult(ok=True))[0] is True
    crashed = Evidence(program="p", state="RUNNING", restarts=2, exit_codes=[3, 3])
    assert judge(crashed, None) == (False, "restarted 2 times (exit codes 3, 3)")
    assert judge(Evidence(program="p", state="FATAL"), None)[1] == "not running at the end (FATAL)"
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
