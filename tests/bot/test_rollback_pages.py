"""The rollback picker pages through the whole numbered history, from the chat: the real
PTB client against the local Bot API server, the real control plane behind it."""

from __future__ import annotations

import re

import pytest

from tests.bot.test_chat_defects import edited_to
from tests.support.botapi import Msg
from tests.support.chat import Chat


def commits_on(phone: Chat, msg: Msg) -> list[int]:
    """The commit numbers of a picker page, top to bottom."""
    found = []
    for label, data in phone.buttons(msg).items():
        if data.startswith("rc|"):
            match = re.match(r"#(\d+) ", label)
            assert match, label
            found.append(int(match[1]))
    return found


@pytest.mark.timeout(300)
def test_the_rollback_picker_pages_through_every_commit(phone: Chat) -> None:
    plant = phone.plant
    shas = plant.origin.bulk(60)
    plant.commit("1")
    plant.add()
    phone.send("/start")
    phone.press_text(phone.wait_text("choose what to do"), "Projects")
    phone.press_text(phone.wait_text("Projects: 1–1 of 1"), "shop")
    menu = phone.wait_text("shop · main")
    phone.press_text(menu, "Rollback")
    first = edited_to(phone, menu, "Roll back shop prod to which commit?")
    assert "Commits #61–#54 of 61, page 1 of 8" in first.text
    assert "/rollback shop N takes any number" in first.text
    assert commits_on(phone, first) == list(range(61, 53, -1))
    labels = phone.buttons(first)
    assert "◀️ Newer" not in labels and "⏮ Newest" not in labels and "Older ▶️" in labels

    phone.press_text(first, "Oldest ⏭")
    last = edited_to(phone, menu, "page 8 of 8")
    assert "Commits #5–#1 of 61" in last.text and commits_on(phone, last) == [5, 4, 3, 2, 1]
    oldest = next(k for k, v in phone.buttons(last).items() if v == "rc|shop|1")
    assert oldest.startswith(f"#1 {shas[0][:7]} old 1")
    assert "Older ▶️" not in phone.buttons(last) and "Oldest ⏭" not in phone.buttons(last)

    phone.press_text(last, "◀️ Newer")
    seventh = edited_to(phone, menu, "page 7 of 8")
    assert commits_on(phone, seventh) == list(range(13, 5, -1))
    phone.press_text(seventh, "⏮ Newest")
    newest = edited_to(phone, menu, "page 1 of 8")

    # the oldest commit, never built, is offered like any other
    phone.press_text(newest, "Oldest ⏭")
    again = edited_to(phone, menu, "page 8 of 8")
    phone.press(again, "rc|shop|1")
    phone.wait_text("Roll shop prod back to #1?")


def test_a_commit_label_names_live_and_stopped_slots() -> None:
    """The picker marks a slot running a commit, and a stopped one as stopped (a test slot
    after its run is not live)."""
    from controlplane.bot.screens import commit_label
    from controlplane.domain.history import CommitRow, SlotState

    row = CommitRow(n=3, sha="a" * 40, date=0.0, author="a", subject="fix")
    both = SlotState(prod=3, prod_running=True, test=3, test_running=True)
    assert commit_label("en", row, None, both) == "#3 aaaaaaa fix prod test"
    stopped = SlotState(prod=3, prod_running=True, test=3, test_running=False)
    assert commit_label("en", row, None, stopped) == "#3 aaaaaaa fix prod test stopped"
    assert commit_label("ru", row, None, stopped).endswith("прод тест остановлен")
