"""Issue #14's chat defects, from the chat: the real PTB client against the local Bot API
server (which answers as Telegram does: 4,096 characters a message, 100 buttons a
keyboard, 64 bytes of callback data, 200 characters a toast), the real control plane
behind it."""

from __future__ import annotations

import json

import pytest

from tests.support.botapi import Msg
from tests.support.chat import ADMIN, Chat
from tests.support.fixtures_release import Plant

MANY = 150


def add_quick(plant: Plant, name: str) -> None:
    """A project as `project add` writes it, without asking the remote each time."""
    config = plant.stack.service.config
    new = config.check_new(
        name=name, repo=plant.origin.url, path=str(plant.box.base / "live" / name)
    )
    config.write_new(new, check_remote=False)


def names_on(phone: Chat, msg: Msg) -> list[str]:
    """The project buttons of a list, by name."""
    return [k.split(" ", 1)[1] for k, v in phone.buttons(msg).items() if v.startswith("p|")]


def newest(phone: Chat, needle: str, after: int = 0) -> Msg:
    """The newest bot message holding `needle`, once one newer than `after` has it."""
    found: list[Msg] = []

    def seen() -> bool:
        found[:] = [
            m for m in phone.api.bot_messages(ADMIN) if needle in m.text and m.message_id > after
        ]
        return bool(found)

    phone.api.wait_for(seen, 30)
    return found[-1]


def edited_to(phone: Chat, msg: Msg, needle: str) -> Msg:
    """The message `msg` once an edit put `needle` in it."""
    phone.api.wait_for(
        lambda: any(
            m.message_id == msg.message_id and needle in m.text
            for m in phone.api.bot_messages(ADMIN)
        ),
        30,
    )
    return next(m for m in phone.api.bot_messages(ADMIN) if m.message_id == msg.message_id)


@pytest.mark.timeout(300)
def test_a_hundred_and_fifty_projects_are_paged_searched_and_all_counted(phone: Chat) -> None:
    plant = phone.plant
    plant.commit("1")
    names = [f"p{i:03}" for i in range(MANY)]
    for name in names:
        add_quick(plant, name)

    # the menu's 📦 Projects: a page of ten, saying which of how many
    phone.send("/start")
    phone.press_text(phone.wait_text("choose what to do"), "Projects")
    first = phone.wait_text("Projects: 1–10 of 150")
    assert "page 1 of 15" in first.text
    assert names_on(phone, first) == names[:10]
    assert "◀️" not in phone.buttons(first)
    phone.press_text(first, "▶️")
    second = edited_to(phone, first, "11–20 of 150")
    assert names_on(phone, second) == names[10:20] and "page 2 of 15" in second.text
    phone.press_text(second, "◀️")
    edited_to(phone, first, "1–10 of 150")
    phone.api.user_presses(ADMIN, first.message_id, "pl|14", user_id=ADMIN, forged=True)
    last = edited_to(phone, first, "141–150 of 150")
    assert names_on(phone, last) == names[140:] and "▶️" not in phone.buttons(last)

    # /projects TEXT and 🔎: part of a name, paged the same way, the search kept on ▶️
    phone.send("/projects 14")
    found = phone.wait_text("whose name contains 14")
    assert "1–10 of 12 (150 in all)" in found.text and "page 1 of 2" in found.text
    assert names_on(phone, found) == ["p014", "p114", *names[140:148]]
    phone.press_text(found, "▶️")
    rest = edited_to(phone, found, "11–12 of 12")
    assert names_on(phone, rest) == ["p148", "p149"]
    phone.press_text(rest, "Search")
    phone.wait_text("Send part of a project's name")
    phone.send("p00")
    ten = phone.wait_text("whose name contains p00")
    assert names_on(phone, ten) == names[:10] and "page" not in ten.text
    phone.send("/projects nosuch")
    phone.wait_text("No project's name contains nosuch; there are 150 in all.")

    # /status: every project, none dropped, in as many messages as it takes
    before = phone.api.bot_messages(ADMIN)[-1].message_id
    phone.send("/status")
    newest(phone, "–150 of 150", before)
    parts = [m for m in phone.api.bot_messages(ADMIN) if m.message_id > before]
    assert len(parts) >= 2 and parts[0].text.startswith("Projects 1–")
    shown = "\n".join(m.text for m in parts)
    assert all(name in shown for name in names), [n for n in names if n not in shown]
    assert all(len(m.text) <= 4096 for m in parts)
    assert not any("Internal error" in m.text for m in phone.api.bot_messages(ADMIN))


def test_the_add_form_checks_each_answer_and_keeps_the_others(phone: Chat) -> None:
    plant = phone.plant
    plant.commit("1")
    plant.add()
    taken = plant.box.base / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine\n")

    phone.send("/add")
    phone.wait_text("Send its name")
    phone.send("shop")
    phone.wait_text("A project named shop exists already: send another name.")
    phone.send("shop2")
    phone.wait_text("repository URL")
    phone.send("https://example.com/" + "x" * 4000)
    refused = phone.wait_text("at most 2048 characters")
    assert "Send the repository URL" in refused.text and len(refused.text) < 400
    phone.send(plant.origin.url)
    phone.wait_text("project folder")
    phone.send(str(taken))
    refused = phone.wait_text("holds files")
    assert "Send another project folder" in refused.text
    phone.send(str(plant.box.base / "live" / "shop2"))
    phone.wait_text("branch")
    phone.send("/skip")
    added = phone.wait_text("Added shop2", timeout=60)
    assert "numbered 1 commit," in added.text
    assert plant.stack.store.get_project("shop2").path == str(plant.box.base / "live" / "shop2")
    assert (taken / "notes.txt").read_text() == "mine\n"
    assert not any("Internal error" in m.text for m in phone.api.bot_messages(ADMIN))


def test_an_answer_typed_at_once_meets_the_form_its_button_opened(phone: Chat) -> None:
    """The press that opens a form and the answer sent right after it (no wait for the
    prompt): the answer is the form's, never lost to the hint for free text."""
    plant = phone.plant
    plant.commit("1")
    plant.add()
    phone.send("/start")
    menu = phone.wait_text("choose what to do")
    for round_ in range(1, 4):
        phone.press(menu, "ad")
        phone.send(f"quick{round_}")  # sent with no wait: it may arrive with the press
        phone.api.wait_for(
            lambda n=round_: (
                sum("repository URL" in m.text for m in phone.api.bot_messages(ADMIN)) >= n
            )
        )
        phone.send("/cancel")
        phone.api.wait_for(
            lambda n=round_: sum(m.text == "Cancelled." for m in phone.api.bot_messages(ADMIN)) >= n
        )
    assert not any("only take answers" in m.text for m in phone.api.bot_messages(ADMIN))


def test_the_smaller_chat_defects(phone: Chat) -> None:
    api, plant = phone.api, phone.plant
    plant.commit("1")
    plant.add()

    # a toast is plain text: no tags
    phone.send("/projects")
    listing = phone.wait_text("Projects")
    phone.press(listing, "p|shop")
    menu = phone.wait_text("shop · main")
    toast = phone.answered(phone.press_text(menu, "Output to chat"))
    assert toast.get("text") == "Output of shop's commands to chat: off.", toast
    assert plant.stack.service.query.project("shop").output is False  # the switch took
    menu = phone.wait_text("shop · main")
    toast = phone.answered(phone.press_text(menu, "Installer: uv"))
    assert toast.get("text") == "Builds of shop now use pip.", toast
    assert plant.stack.service.query.project("shop").installer == "pip"
    assert "Installer: pip" in " ".join(phone.buttons(phone.wait_text("installer: pip")))

    # free text outside a form: a hint and the menu
    phone.send("hello?")
    hint = phone.wait_text("only take answers")
    assert "choose what to do" in hint.text and "Projects" in " ".join(phone.buttons(hint))

    # /rollback to a commit that does not exist: refused, naming those that do
    phone.send("/rollback shop 99")
    phone.wait_text("shop has no commit #99: its commits are numbered #1–#1.")
    assert not any("back to #99?" in m.text for m in api.bot_messages(ADMIN))

    # /help names every command a person types
    phone.send("/help")
    help_ = phone.wait_text("Commands")
    for command in ("/start", "/add", "/skip", "/projects", "/cancel"):
        assert command in help_.text, command

    # a typed test duration: the one range (5 s to 7 d) and the one parser
    phone.press(menu, "td|shop")
    phone.press_text(phone.wait_text("How long should the test"), "Type a duration")
    phone.wait_text("Send the duration, from 5s to 7d")
    phone.send("8d")
    phone.wait_text("from 5s to 7d")

    # a third-party launch refuses what is no repository URL, in one line, and asks again
    phone.send("/cancel")
    phone.send("/start")
    phone.press_text(phone.wait_text("choose what to do"), "third-party")
    phone.wait_text("to run.")
    phone.send("javascript:alert(1)")
    refused = phone.wait_text("bad repository URL")
    first, *rest = refused.text.splitlines()
    assert "'javascript:alert(1)'" in first and "git@host:owner/repo" in first
    assert rest == ["Send the repository URL to run. /cancel to stop."]
    for call in api.requests:
        markup = call.params.get("reply_markup")
        if markup:
            rows = json.loads(markup)["inline_keyboard"] if isinstance(markup, str) else []
            assert all(len(b["callback_data"].encode()) <= 64 for r in rows for b in r)
