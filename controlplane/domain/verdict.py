"""A test run's outcome: the evidence a watch gathered, the check's result, the verdict.

Plain data and the pure decisions on it (`judge` for a test run, `crash_looping` for a
health window). Each record has `to_dict()` for the store and the control socket, and
`from_dict()` that reads what older versions stored (missing fields take their defaults,
unknown ones are ignored), so the stored format is the one it always was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

INTERRUPTED = "interrupted by a restart"


def _known(cls: Any, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass
class Evidence:
    """What a watch saw so far."""

    program: str
    elapsed: float = 0.0
    duration: float = 0.0
    state: str = "UNKNOWN"
    pid: int = 0
    restarts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    peak_memory: int = 0  # the slot's PSS (memory_kind says when it is RSS)
    memory_kind: str = "PSS"
    errors: int = 0
    last_lines: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class CheckResult:
    """The project's check command, run inside the release before the test slot starts."""

    ok: bool
    seconds: float = 0.0
    tail: list[str] = field(default_factory=list)
    omitted: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Verdict:
    """Whether a test run passed, why, and what it rests on."""

    passed: bool
    reason: str
    at: float
    early: bool = False  # stopped before its time (a cancel)
    duration: float = 0.0  # the seconds the run was given
    check: CheckResult | None = None
    evidence: Evidence | None = None

    @classmethod
    def interrupted(cls, at: float) -> Verdict:
        """The verdict of a run a restart of the control plane cut short."""
        return cls(passed=False, reason=INTERRUPTED, at=at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reason": self.reason,
            "at": self.at,
            "early": self.early,
            "duration": self.duration,
            "check": self.check.to_dict() if self.check is not None else None,
            "evidence": self.evidence.to_dict() if self.evidence is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        check, evidence = data.get("check"), data.get("evidence")
        return cls(
            passed=bool(data.get("passed", False)),
            reason=str(data.get("reason", "")),
            at=float(data.get("at", 0.0)),
            early=bool(data.get("early", False)),
            duration=float(data.get("duration", 0.0)),
            check=CheckResult.from_dict(check) if isinstance(check, dict) else None,
            evidence=Evidence.from_dict(evidence) if isinstance(evidence, dict) else None,
        )


def judge(ev: Evidence, check: CheckResult | None) -> tuple[bool, str]:
    """Passed when the check passed and the app stayed up without restarts."""
    if check is not None and not check.ok:
        return False, f"check failed: {check.error or 'non-zero exit'}"
    if ev.restarts:
        codes = ", ".join(str(c) for c in ev.exit_codes[-5:]) or "unknown"
        return False, f"restarted {ev.restarts} times (exit codes {codes})"
    if ev.state != "RUNNING":
        return False, f"not running at the end ({ev.state})"
    return True, "stayed up without restarts"


def crash_looping(ev: Evidence) -> bool:
    """During a health window: the app is down for good or restarts again and again."""
    return ev.state in ("FATAL", "BACKOFF") or ev.restarts >= 2
