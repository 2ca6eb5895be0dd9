"""A test run's outcome: the evidence a watch gathered, the check's result, the verdict.

Plain data and the pure decisions on it (`judge` for a test run, `crash_looping` for a
health window). Each record has `to_dict()` for the store and the control socket, and
`from_dict()` that reads what older versions stored (missing fields take their defaults,
unknown ones are ignored), so the stored format is the one it always was.

A verdict's reason is kept twice: `reason`, the English text older versions stored and
read, and `reason_msg`, the same as a Text's data (absent in older rows), which
`reason_text` gives back to render in the reader's language. `evidence_lines` and
`verdict_lines` say what a verdict rests on, as Texts, for a face to show.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from controlplane.i18n import N_, Duration, Size, Text, ntr, tr, verbatim

INTERRUPTED = N_("interrupted by a restart")
# judge's reason for restarts (its msgid: ntr's singular, written out there for extraction)
RESTARTED = "restarted {n} time (exit codes {codes})"
PASSED = N_("stayed up without restarts")
# reasons that name nothing: an older row without reason_msg still reads in any language
FIXED_REASONS = frozenset({INTERRUPTED, PASSED})


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
    # each distinct error once, with its count (controlplane.domain.tracebacks.SeenError)
    distinct: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.distinct:  # the format as stored before distinct errors were kept
            del data["distinct"]
        return data

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
    error: str | None = None  # English, as stored since the first version
    error_msg: dict[str, Any] | None = None  # the same, as a Text's data

    @property
    def error_text(self) -> Text | None:
        """Why the check failed, in the reader's language (an older row: as stored)."""
        if self.error_msg:
            return Text.from_dict(self.error_msg)
        return verbatim(self.error) if self.error else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.error_msg is None:
            del data["error_msg"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Verdict:
    """Whether a test run passed, why, and what it rests on."""

    passed: bool
    reason: str  # English, as stored since the first version
    at: float
    early: bool = False  # stopped before its time: cancelled (never a pass since 0.x)
    duration: float = 0.0  # the seconds the run was given
    check: CheckResult | None = None
    evidence: Evidence | None = None
    reason_msg: dict[str, Any] | None = None  # the reason as a Text's data (newer rows)

    @classmethod
    def interrupted(cls, at: float) -> Verdict:
        """The verdict of a run a restart of the control plane cut short."""
        return cls(passed=False, reason=INTERRUPTED, at=at)

    @classmethod
    def of(cls, passed: bool, reason: Text, at: float, **details: Any) -> Verdict:
        """A verdict whose reason is a Text: kept in English and as data."""
        return cls(passed=passed, reason=str(reason), at=at, reason_msg=reason.to_dict(), **details)

    @property
    def cancelled(self) -> bool:
        """The run was cancelled before its time: neither passed nor failed."""
        return self.early

    @property
    def outcome(self) -> str:
        """'passed', 'failed' or 'cancelled' (an older row that passed early: cancelled)."""
        if self.early:
            return "cancelled"
        return "passed" if self.passed else "failed"

    @property
    def promotable(self) -> bool:
        """Whether Promote is offered for it: a pass that ran its whole time."""
        return self.passed and not self.early

    @property
    def reason_text(self) -> Text:
        """The reason, to render in the reader's language; an older row without its data
        reads as stored (a reason that names nothing is translated all the same)."""
        if self.reason_msg:
            return Text.from_dict(self.reason_msg)
        return tr(self.reason) if self.reason in FIXED_REASONS else verbatim(self.reason)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "passed": self.passed,
            "reason": self.reason,
            "at": self.at,
            "early": self.early,
            "duration": self.duration,
            "check": self.check.to_dict() if self.check is not None else None,
            "evidence": self.evidence.to_dict() if self.evidence is not None else None,
        }
        if self.reason_msg is not None:
            data["reason_msg"] = self.reason_msg
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        check, evidence, msg = data.get("check"), data.get("evidence"), data.get("reason_msg")
        return cls(
            passed=bool(data.get("passed", False)),
            reason=str(data.get("reason", "")),
            at=float(data.get("at", 0.0)),
            early=bool(data.get("early", False)),
            duration=float(data.get("duration", 0.0)),
            check=CheckResult.from_dict(check) if isinstance(check, dict) else None,
            evidence=Evidence.from_dict(evidence) if isinstance(evidence, dict) else None,
            reason_msg=msg if isinstance(msg, dict) and msg.get("id") else None,
        )


def judge(ev: Evidence, check: CheckResult | None) -> tuple[bool, Text]:
    """Passed when the check passed and the app stayed up without restarts; and why."""
    if check is not None and not check.ok:
        return False, tr("check failed: {error}", error=check.error_text or tr("non-zero exit"))
    if ev.restarts:
        codes = ", ".join(str(c) for c in ev.exit_codes[-5:])
        return False, ntr(
            "restarted {n} time (exit codes {codes})",
            "restarted {n} times (exit codes {codes})",
            ev.restarts,
            codes=codes or tr("unknown"),
        )
    if ev.state != "RUNNING":
        return False, tr("not running at the end ({state})", state=ev.state)
    return True, tr(PASSED)


def cancelled_reason(ev: Evidence) -> Text:
    """Why a cancelled run has no verdict of pass or fail."""
    return tr("cancelled after {elapsed}; not judged", elapsed=Duration(ev.elapsed))


def crash_text(ev: Evidence) -> Text:
    """What a crash loop in a health window really was: how many times the app exited
    (at least once, when the watch ended in BACKOFF or FATAL before the event of the exit
    was read), with which exit statuses, and the state it was left in."""
    exits = max(ev.restarts, 1 if ev.state in ("BACKOFF", "FATAL", "EXITED") else 0)
    codes = ", ".join(str(c) for c in ev.exit_codes[-5:]) or tr("unknown")
    return ntr(
        "exited {n} time in {elapsed} (exit status {codes}), now {state}",
        "exited {n} times in {elapsed} (exit statuses {codes}), now {state}",
        exits,
        elapsed=Duration(ev.elapsed),
        codes=codes,
        state=ev.state,
    )


def error_lines(ev: Evidence, limit: int = 5) -> list[Text]:
    """Each distinct error the app printed, once, with its count (the first `limit`)."""
    lines: list[Text] = []
    for seen in ev.distinct[:limit]:
        where = str(seen.get("where") or "")
        count, error = int(seen.get("count", 1)), verbatim(str(seen.get("error", "")))
        if where:
            lines.append(tr("{count}× {error} ({where})", count=count, error=error, where=where))
        else:
            lines.append(tr("{count}× {error}", count=count, error=error))
    if len(ev.distinct) > limit:
        more = len(ev.distinct) - limit
        lines.append(ntr("and {n} other error", "and {n} other errors", more))
    return lines


def evidence_lines(ev: Evidence, *, restarts: bool = True) -> list[Text]:
    """What a watch saw, one Text a line: how long the app ran and in which state it
    ended, its restarts and exit codes (none: nothing said, the first line says it ran),
    its peak memory, the error lines of its log and each distinct error once.
    `restarts=False` leaves the restarts out (a reason that says them already)."""
    lines = [
        tr(
            "ran {elapsed} of {duration}, {state} at the end",
            elapsed=Duration(ev.elapsed),
            duration=Duration(ev.duration or ev.elapsed),
            state=ev.state,
        )
    ]
    if ev.restarts and restarts:
        codes = ", ".join(str(c) for c in ev.exit_codes[-5:])
        lines.append(
            ntr(
                "{n} restart, exit codes {codes}",
                "{n} restarts, exit codes {codes}",
                ev.restarts,
                codes=codes or tr("unknown"),
            )
        )
    lines.append(
        tr("peak memory {memory} ({kind})", memory=Size(ev.peak_memory), kind=ev.memory_kind)
    )
    lines.append(
        ntr("{n} error line in the log", "{n} error lines in the log", ev.errors)
        if ev.errors
        else tr("no error lines in the log")
    )
    return lines + error_lines(ev)


def check_line(check: CheckResult) -> Text:
    """The check command's outcome in one line."""
    if check.ok:
        return tr("check passed in {seconds}", seconds=Duration(check.seconds))
    return tr(
        "check failed after {seconds}: {error}",
        seconds=Duration(check.seconds),
        error=check.error_text or tr("non-zero exit"),
    )


def verdict_lines(verdict: Verdict) -> list[Text]:
    """What a verdict rests on: the check's line, then the evidence's lines (without the
    restarts when the reason is them: a card says a thing once)."""
    lines = [check_line(verdict.check)] if verdict.check is not None else []
    if verdict.evidence is not None and verdict.evidence.elapsed:
        said = (verdict.reason_msg or {}).get("id") == RESTARTED
        lines += evidence_lines(verdict.evidence, restarts=not said)
    return lines


def crash_looping(ev: Evidence) -> bool:
    """During a health window: the app is down for good or restarts again and again."""
    return ev.state in ("FATAL", "BACKOFF") or ev.restarts >= 2
