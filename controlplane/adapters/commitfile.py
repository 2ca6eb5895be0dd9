"""The numbered commits of a project in their own compact file.

A project's whole first-parent history is numbered (10,000 commits for an old
repository), so its commits do not live in the project's file (store.d/projects/NAME.json,
rewritten at every change of its state) but in store.d/commits/NAME.json, written only when
new commits are numbered. Each commit is one short array, `[n, sha, date, author,
subject]`, not a TinyDB document: 10,000 rows are about 1.2 MB and parse in a few tens of
milliseconds, once per change of the file (the parsed rows are cached by the store).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Set
from typing import Any

from controlplane.domain.history import CommitRow

ROWS = "rows"
FORMAT = 1


def decode(data: dict[str, Any] | None) -> list[CommitRow] | None:
    """The commits in a commit file's JSON, by number; None when there is no file yet.
    A row that is not a commit (a hand edit) is skipped rather than refusing them all."""
    if data is None:
        return None
    commits = [
        CommitRow(*row)
        for row in data.get(ROWS) or []
        if isinstance(row, list) and len(row) == 5 and isinstance(row[0], int)
    ]
    if any(a.n >= b.n for a, b in itertools.pairwise(commits)):
        commits.sort(key=lambda c: c.n)  # written in order; a hand edit may not be
    return commits


def find(data: dict[str, Any], numbers: Set[int], shas: Set[str]) -> list[CommitRow]:
    """Only the commits of a commit file's JSON with one of `numbers` or `shas`, by
    number: `status` needs two or three of a project's commits, and making every row a
    CommitRow was most of its time with 1,000 projects × 100 commits."""
    found = [
        CommitRow(*row)
        for row in data.get(ROWS) or []
        if isinstance(row, list)
        and len(row) == 5
        and isinstance(row[0], int)
        and (row[0] in numbers or row[1] in shas)
    ]
    return sorted(found, key=lambda c: c.n)


def encode(commits: Iterable[CommitRow]) -> dict[str, Any]:
    """A commit file's JSON for `commits`."""
    rows = [[c.n, c.sha, _stamp(c.date), c.author, c.subject] for c in commits]
    return {"format": FORMAT, ROWS: rows}


def _stamp(date: float) -> float | int:
    """Commit dates are whole seconds: stored without a fraction."""
    return int(date) if float(date).is_integer() else date
