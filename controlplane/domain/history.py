"""Commit numbers, release records and slot state: the data and the pure decisions on it.

Numbers follow the design: the whole first-parent history of the branch is numbered oldest
first when a project is added (#1 is the branch's first commit); every commit seen
afterwards gets the next number; numbers are never reused or changed. A project numbered
by an older version (its last 20 commits then) keeps its numbers. Everything that takes a
commit takes a number (`7`, `#7`) or a SHA prefix (at least 4 hex digits).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from controlplane.domain.models import SLOTS
from controlplane.domain.verdict import Verdict
from controlplane.errors import NotFound, ValidationError
from controlplane.i18n import tr

REF_RE = re.compile(r"#?(\d{1,7})|([0-9a-f]{4,40})")
RELEASE_STATES = ("building", "ready", "failed", "pruned")
SHOWN_LIMIT = 200  # characters of a commit subject or author kept


def _from_dict(cls: Any, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


def clip(text: str, limit: int = SHOWN_LIMIT) -> str:
    """Text from a repository cut to `limit` characters on one line, '…' marking a cut."""
    line = " ".join(text.splitlines()) if "\n" in text or "\r" in text else text
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class CommitRow:
    """A numbered commit. Its subject and author come from the repository, so they are cut
    to a sane length here, once, for every face (a 5,000-character subject would make a
    chat message too long for Telegram)."""

    n: int
    sha: str
    date: float
    author: str
    subject: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "author", clip(self.author))
        object.__setattr__(self, "subject", clip(self.subject))

    @property
    def short(self) -> str:
        return self.sha[:7]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CommitRow:
        return _from_dict(cls, data)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Release:
    """One commit built once: its state, the steps' evidence and the test verdict."""

    n: int
    sha: str
    state: str = "building"
    created: float = 0.0
    finished: float | None = None
    seconds: float | None = None
    installer: str | None = None
    steps: tuple[dict[str, Any], ...] = ()
    error: str | None = None
    log: str | None = None
    size: int = 0
    verdict: dict[str, Any] | None = None

    @property
    def short(self) -> str:
        return self.sha[:7]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = list(self.steps)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Release:
        release: Release = _from_dict(cls, data)
        return replace(release, steps=tuple(release.steps))

    def with_(self, **changes: Any) -> Release:
        return replace(self, **changes)


@dataclass(frozen=True)
class SlotState:
    """Which release each slot runs and whether it should run."""

    prod: int | None = None
    prod_previous: int | None = None
    last_good: int | None = None
    prod_running: bool = False
    test: int | None = None
    test_running: bool = False
    test_run: dict[str, Any] | None = None
    head: str | None = None
    last_poll: dict[str, Any] | None = None
    poll_failures: int = 0
    outage_since: float | None = None
    op: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlotState:
        return _from_dict(cls, data)  # type: ignore[no-any-return]

    def with_(self, **changes: Any) -> SlotState:
        return replace(self, **changes)

    def running(self, slot: str) -> bool:
        return self.test_running if slot == "test" else self.prod_running

    @property
    def test_verdict(self) -> Verdict | None:
        """The verdict of the last test run, once it has one."""
        raw = (self.test_run or {}).get("verdict")
        return Verdict.from_dict(raw) if isinstance(raw, dict) else None

    def release(self, slot: str) -> int | None:
        return self.test if slot == "test" else self.prod

    def live_slots(self, n: int) -> list[str]:
        """The slots that hold release `n` and run it (a stopped slot is not live)."""
        return [s for s in SLOTS if self.release(s) == n and self.running(s)]

    def stopped_slots(self, n: int) -> list[str]:
        """The slots that hold release `n` but are stopped (a test slot after its run,
        until it is discarded or promoted over)."""
        return [s for s in SLOTS if self.release(s) == n and not self.running(s)]

    def pinned(self) -> tuple[int | None, ...]:
        """The releases prune never takes: prod's (running or stopped: it is what starts
        again), the one before it and the last good one, and a running test's. A stopped
        test's release is not pinned: it is kept while it is among the newest `keep`
        like any other, and when prune takes it the test slot is discarded with it."""
        test = self.test if self.test_running else None
        return (self.prod, test, self.last_good, self.prod_previous)


def number_new(known: Sequence[CommitRow], seen: Iterable[CommitRow]) -> list[CommitRow]:
    """Give the commits in `seen` (oldest first, n ignored) that `known` lacks the next numbers."""
    shas = {c.sha for c in known}
    last = max((c.n for c in known), default=0)
    fresh: list[CommitRow] = []
    for commit in seen:
        if commit.sha in shas:
            continue
        last += 1
        shas.add(commit.sha)
        fresh.append(replace(commit, n=last))
    return fresh


def parse_ref(raw: str) -> int | str:
    """'7' or '#7' → 7; 'a1b2c3' → 'a1b2c3'; anything else is refused."""
    text = str(raw).strip().lower()
    match = REF_RE.fullmatch(text)
    if not match:
        raise ValidationError(
            tr("commit"),
            raw,
            tr("use a commit number such as 7 or #7, or a SHA prefix of 4+ hex digits"),
        )
    return int(match[1]) if match[1] else match[2]


def find(commits: Sequence[CommitRow], raw: str) -> CommitRow:
    """The commit a number or SHA prefix names; a clear error when none or several do."""
    ref = parse_ref(raw)
    if isinstance(ref, int):
        hits = [c for c in commits if c.n == ref]
    else:
        hits = [c for c in commits if c.sha.startswith(ref)]
    if not hits:
        raise NotFound(
            tr("no commit {ref}; `controlplane history NAME` lists the numbers", ref=raw)
        )
    if len(hits) > 1:
        shown = ", ".join(f"#{c.n} {c.short}" for c in hits[:5])
        raise ValidationError(
            tr("commit"),
            raw,
            tr("it matches several commits ({commits}); give more", commits=shown),
        )
    return hits[0]


def to_prune(releases: Sequence[Release], keep: int, protected: Iterable[int | None]) -> list[int]:
    """Numbers of releases whose folders go: all but the newest `keep` ready ones,
    never a protected one (live in a slot, the last good prod); failed ones always go
    (their record and log stay)."""
    guard = {n for n in protected if n is not None}
    ready = sorted((r.n for r in releases if r.state == "ready"), reverse=True)
    kept = set(ready[:keep]) | guard
    gone = [n for n in ready if n not in kept]
    gone += [r.n for r in releases if r.state == "failed" and r.size and r.n not in guard]
    return sorted(set(gone))


@dataclass(frozen=True)
class Paged:
    """Page `page` (0-based, clamped) of `total` rows newest first, `size` a page: the
    rows [start, stop) of the newest-first list, and how many pages there are."""

    page: int
    pages: int
    start: int
    stop: int
    total: int


def paged(total: int, page: int, size: int) -> Paged:
    """Which rows page `page` of a newest-first list holds (a page past the end is the
    last one, a negative one the first)."""
    pages = max(1, -(-total // size))
    page = min(max(page, 0), pages - 1)
    return Paged(page, pages, page * size, min(total, (page + 1) * size), total)
