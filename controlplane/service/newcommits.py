"""The new-commit notice: every commit since the last notice, not only the newest.

A push may bring several commits at once, and a deploy or a sync between two checks may
number some before the poller sees the head. The notice names each commit numbered since
the one the previous notice named (or, with no notice kept, since the head as it was
before this fetch), newest first, at most CAP of them and then how many more; each with
its number, short sha and subject. The subjects are the repository's words: they are
redacted here (the event is kept in the outbox) and escaped where they are shown.

Under the project's policy the notice also says what happens next: the test (policy
test) or the test and the promote of a pass (policy promote) of the newest commit, which
the chat then offers no button for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.domain.events import Event
from controlplane.domain.history import CommitRow
from controlplane.domain.kinds import EventKind
from controlplane.i18n import Text, join, ntr, tr

CAP = 10  # commits named one by one in a notice; the rest are counted


@dataclass(frozen=True)
class Notice:
    """What one notice says and the data its event carries (for the chat's buttons)."""

    text: Text
    data: dict[str, Any]


def last_noticed(events: Sequence[Event]) -> int | None:
    """The commit number the newest new-commit notice among `events` named, if any."""
    for event in reversed(events):
        n = event.data.get("n") if event.kind == EventKind.NEW_COMMIT else None
        if isinstance(n, int):
            return n
    return None


def since(commits: Sequence[CommitRow], last: int | None, head: CommitRow) -> list[CommitRow]:
    """The commits after #last up to the head, newest first; the head alone when there
    are none (the branch was reset to an older commit) or nothing to count from."""
    if last is None or last >= head.n:
        return [head]
    fresh = [c for c in commits if last < c.n <= head.n]
    return sorted(fresh, key=lambda c: c.n, reverse=True) or [head]


def notice(
    name: str,
    branch: str,
    policy: str,
    commits: Sequence[CommitRow],
    redact: Callable[[str], str],
) -> Notice:
    """The notice of `commits` (newest first, the head first among them)."""
    head = commits[0]
    if len(commits) == 1:
        first = tr(
            "{name}: new commit #{n} {sha} on {branch}: {subject}",
            name=name,
            n=head.n,
            sha=head.short,
            branch=branch,
            subject=head.subject,
        )
        lines: list[Text] = [first]
    else:
        first = ntr(
            "{name}: {n} new commit on {branch}:",
            "{name}: {n} new commits on {branch}:",
            len(commits),
            name=name,
            branch=branch,
        )
        lines = [first, *(commit_line(c) for c in commits[:CAP])]
        if len(commits) > CAP:
            more = len(commits) - CAP
            lines.append(ntr("… and {n} more", "… and {n} more", more))
    then = next_step(policy, head.n)
    if then is not None:
        lines.append(then)
    shown = commits[:CAP]
    data = {
        "n": head.n,
        "policy": policy,
        "commits": [{"n": c.n, "sha": c.short, "subject": redact(c.subject)} for c in shown],
        "more": max(len(commits) - CAP, 0),
    }
    text = lines[0] if len(lines) == 1 else join(lines, "\n")
    return Notice(text.redacted(redact), data)


def commit_line(commit: CommitRow) -> Text:
    return tr("#{n} {sha} {subject}", n=commit.n, sha=commit.short, subject=commit.subject)


def next_step(policy: str, n: int) -> Text | None:
    """What the policy does with the newest commit now (None: it waits for the admin)."""
    if policy == "test":
        return tr("Testing #{n} now (policy: test).", n=n)
    if policy == "promote":
        return tr("Testing #{n} now; a pass goes to prod (policy: promote).", n=n)
    return None
