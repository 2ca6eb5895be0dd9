"""The new-commit notice (service/newcommits.py) and its buttons (bot/notifier.py): which
commits it names, its cap, what the policy does, redaction, and the buttons it offers."""

from __future__ import annotations

import html
from typing import Any

from controlplane.bot.notifier import Batch, event_buttons, event_text
from controlplane.domain.events import Event
from controlplane.domain.history import CommitRow
from controlplane.service.newcommits import CAP, last_noticed, notice, since

SECRET = "sk-live-0123456789"


def row(n: int, subject: str = "") -> CommitRow:
    return CommitRow(n, f"{n:02d}" + "a" * 38, 0.0, "ada", subject or f"change {n}")


def hide(text: str) -> str:
    return text.replace(SECRET, "***")


def event(kind: str, n: int, policy: str = "notify") -> Event:
    return Event(1, 0.0, kind, "shop", "", {"n": n, "policy": policy}, None)


def rendered(lang: str, commits: list[CommitRow], policy: str = "notify") -> tuple[str, Any]:
    said = notice("shop", "main", policy, commits, hide)
    stored = Event(1, 0.0, "new_commit", "shop", str(said.text), said.data, said.text.to_dict())
    markup = event_buttons(stored, lang)
    buttons = {
        b.text: b.callback_data for r in (markup.inline_keyboard if markup else ()) for b in r
    }
    return event_text(Batch((stored,)), lang), buttons


def test_the_commits_since_the_last_notice_newest_first() -> None:
    commits = [row(n) for n in range(1, 8)]
    assert [c.n for c in since(commits, 4, commits[-1])] == [7, 6, 5]
    assert [c.n for c in since(commits, None, commits[-1])] == [7]
    assert [c.n for c in since(commits, 7, commits[2])] == [3]  # a branch reset to #3
    events = [event("new_commit", 3), event("verdict", 9), event("new_commit", 5)]
    assert last_noticed(events) == 5
    assert last_noticed([event("verdict", 9)]) is None


def test_several_commits_each_named_with_number_sha_and_subject_escaped_and_redacted() -> None:
    commits = [row(3, f"fix <b>this</b> & {SECRET}"), row(2)]
    text, buttons = rendered("en", commits)
    assert text.splitlines() == [
        "🆕 shop: 2 new commits on main:",
        "#3 03aaaaa fix &lt;b&gt;this&lt;/b&gt; &amp; ***",
        "#2 02aaaaa change 2",
    ]
    assert buttons == {
        "🧪 Test #3": "tr|shop||3",
        "🚀 Deploy #3": "dp|shop|3|+",
        "📜 History": "rb|shop|0|+",
    }


def test_past_the_cap_the_rest_are_counted() -> None:
    commits = [row(n) for n in range(CAP + 3, 0, -1)]
    text, _buttons = rendered("en", commits)
    lines = text.splitlines()
    assert lines[0] == f"🆕 shop: {CAP + 3} new commits on main:"
    assert lines[1].startswith(f"#{CAP + 3} ") and len(lines) == CAP + 2
    assert lines[-1] == "… and 3 more"
    said = notice("shop", "main", "notify", commits, hide)
    assert said.data["more"] == 3 and len(said.data["commits"]) == CAP


def test_one_commit_and_the_policies_say_what_they_do_instead_of_a_button() -> None:
    text, buttons = rendered("en", [row(4)], policy="test")
    assert text.splitlines() == [
        "🆕 shop: new commit #4 04aaaaa on main: change 4",
        "Testing #4 now (policy: test).",
    ]
    assert list(buttons) == ["🚀 Deploy #4", "📜 History"]
    text, buttons = rendered("en", [row(4)], policy="promote")
    assert text.endswith("Testing #4 now; a pass goes to prod (policy: promote).")
    assert list(buttons) == ["📜 History"]


def test_russian() -> None:
    text, buttons = rendered("ru", [row(3), row(2)])
    assert html.unescape(text).splitlines()[0] == "🆕 shop: 2 новых коммита в main:"
    assert list(buttons) == ["🧪 Тест #3", "🚀 Деплой #3", "📜 История"]
