"""Confirmations, presses and cards that meet double taps, restarts and dropped connections
(issue #15, defects 3 and 7): the real PTB client against the local Bot API server, the
real engine and supervisord behind it.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from controlplane.bot.app import BotRunner
from tests.support.botapi import FakeBotAPI, Msg
from tests.support.chat import ADMIN, PROD_KEY, TOKEN, Chat
from tests.support.fixtures_release import Plant

DONE = "Already done: this confirmation was used. Open the menu again to repeat it."
EXPIRED = "This confirmation has expired; open it again."


@pytest.fixture
def phone(plant: Plant, bot_api_options: dict[str, object]) -> Iterator[Chat]:
    """The admin's phone, whose bot can be restarted (restart below)."""
    api = FakeBotAPI(token=TOKEN, **bot_api_options)  # type: ignore[arg-type]
    settings = dataclasses.replace(
        plant.settings,
        telegram_token=TOKEN,
        admin_chat_ids=frozenset({ADMIN}),
        telegram_api_url=api.start(),
        allow_file_urls=True,
        lang=None,
    )
    chat = Chat(api=api, plant=plant, runner=BotRunner(settings, plant.stack.service))
    chat.runner.start()
    try:
        yield chat
    finally:
        chat.runner.stop()
        api.stop()


def restart(phone: Chat) -> None:
    """The bot runner stopped and started again (as serve does after the bot died)."""
    phone.runner.stop()
    phone.runner = BotRunner(phone.runner.deps.settings, phone.plant.stack.service)
    phone.runner.start()


def shop(rig: Plant, commits: int = 1) -> None:
    """shop added, prod live at #1 (and more commits made and fetched, not deployed)."""
    rig.commit("1")
    rig.add()
    rig.ok("env", "set", "shop", f"UV_CONFIG_FILE={rig.uv_config}", f"API_KEY={PROD_KEY}")
    rig.ok("project", "set", "shop", "health-window", "1")
    rig.ok("deploy", "shop")
    rig.wait_report("prod", "1")
    for n in range(2, commits + 1):
        rig.commit(str(n))


def current(phone: Chat, msg: Msg) -> Msg:
    return next(m for m in phone.api.chat(ADMIN) if m.message_id == msg.message_id)


def yes_of(phone: Chat, msg: Msg) -> str:
    return next(v for k, v in phone.buttons(msg).items() if "Yes" in k)


def stale(phone: Chat, msg: Msg, data: str) -> str:
    """A press of a button the client still shows (taken off the message since)."""
    return phone.api.user_presses(ADMIN, msg.message_id, data, user_id=ADMIN, forged=True)


def new_screen(phone: Chat, command: str, needle: str) -> Msg:
    """The screen a command sends (a new message, even when older ones say the same)."""
    before = len(phone.api.bot_messages(ADMIN))
    phone.send(command)
    phone.api.wait_for(
        lambda: any(needle in m.text for m in phone.api.bot_messages(ADMIN)[before:])
    )
    return next(m for m in phone.api.bot_messages(ADMIN)[before:] if needle in m.text)


def press_twice(phone: Chat, ask: Msg) -> list[str]:
    """Yes pressed twice in a row (a double tap): both answers, once the Yes is gone."""
    yes = yes_of(phone, ask)
    presses = [phone.press(ask, yes), stale(phone, ask, yes)]
    answers = [str(phone.answered(q).get("text", "")) for q in presses]
    # its Yes and No are gone (Remove and New key replace the message with their result)
    phone.api.wait_for(lambda: yes not in phone.buttons(current(phone, ask)).values())
    return answers


def screen(phone: Chat, data: str, needle: str) -> Msg:
    """The screen a project's button opens, pressed on a fresh /projects listing."""
    listing = new_screen(phone, "/projects", "Projects")
    stale(phone, listing, data)
    phone.api.wait_for(lambda: needle in current(phone, listing).text)
    return current(phone, listing)


def prod_starts(rig: Plant) -> list[str]:
    out_log = rig.settings.logs_dir / "shop-prod.out.log"
    return [line for line in out_log.read_text().splitlines() if "running commit" in line]


@pytest.mark.timeout(400)
def test_every_confirmation_pressed_twice_acts_once(phone: Chat) -> None:
    rig = phone.plant
    shop(rig, commits=2)
    service = rig.stack.service

    phone.send("/deploy shop")  # deploy: names the head it fetched, #2
    answers = press_twice(phone, phone.wait_text("Deploy #2 "))
    assert sorted(answers) == sorted(["Started", DONE]), answers
    phone.wait_text("deployed to #2", timeout=90)

    phone.send("/rollback shop 1")
    answers = press_twice(phone, phone.wait_text("Roll shop prod back to #1?"))
    assert sorted(answers) == sorted(["Started", DONE]), answers
    phone.wait_text("rolled back to #1", timeout=60)
    assert prod_starts(rig) == ["running commit 1", "running commit 2", "running commit 1"]

    service.submit("test", "shop", {"commit": "2", "duration": 5}).join()
    phone.send("/promote shop")
    answers = press_twice(phone, phone.wait_text("Promote #2 of shop to prod?"))
    assert sorted(answers) == sorted(["Started", DONE]), answers
    phone.wait_text("promoted to #2", timeout=60)

    answers = press_twice(phone, screen(phone, "ss|shop|prod|stop", "Stop shop prod?"))
    assert sorted(answers) == sorted(["Started", DONE]), answers
    phone.wait_text("✅ stop shop", timeout=30)
    assert len(prod_starts(rig)) == 4  # #1, deploy #2, rollback #1, promote #2: each once

    key = service.config.deploy_key("shop", new=False).public
    answers = press_twice(phone, screen(phone, "dn|shop", "Make a new deploy key for shop?"))
    assert sorted(answers) == sorted(["", DONE]), answers
    assert service.config.deploy_key("shop", new=False).public != key

    answers = press_twice(phone, screen(phone, "rm|shop", "Remove shop?"))
    assert sorted(answers) == sorted(["", DONE]), answers
    phone.wait_text("shop removed.")

    cards = [m.text.split(":")[0] for m in phone.api.bot_messages(ADMIN) if m.text[:1] in "✅❌"]
    for op in ("deploy", "rollback", "promote", "stop"):
        assert sum(op in c for c in cards) == 1, (op, cards)


@pytest.mark.timeout(300)
def test_confirmations_after_a_restart_and_a_newer_commit(phone: Chat) -> None:
    rig = phone.plant
    shop(rig, commits=2)
    service = rig.stack.service

    # a used deploy and an unused rollback, both pressed after the bot restarted: refused
    phone.send("/deploy shop")
    used = phone.wait_text("Deploy #2 ")
    used_yes = yes_of(phone, used)
    phone.press(used, used_yes)
    phone.wait_text("deployed to #2", timeout=90)
    phone.send("/rollback shop 1")
    unused = phone.wait_text("Roll shop prod back to #1?")
    restart(phone)
    assert phone.answered(stale(phone, used, used_yes)).get("text") == DONE
    assert phone.answered(stale(phone, unused, yes_of(phone, unused))).get("text") == EXPIRED
    phone.api.wait_for(lambda: not phone.buttons(current(phone, unused)))
    assert service.query.state("shop").prod == 2

    # "Deploy #3?" confirmed after #4 arrived (and was fetched): #3 is deployed
    rig.commit("3")
    phone.send("/deploy shop")
    ask = phone.wait_text("Deploy #3 ")
    rig.commit("4")
    service.submit("sync", "shop", {}).join()
    assert max(c.n for c in service.query.commits("shop")) == 4
    phone.press_text(ask, "Yes")
    phone.wait_text("deployed to #3", timeout=90)
    assert service.query.state("shop").prod == 3

    # a newer screen of the same action supersedes the older one
    older = new_screen(phone, "/rollback shop 1", "Roll shop prod back to #1?")
    new_screen(phone, "/rollback shop 1", "Roll shop prod back to #1?")
    query = stale(phone, older, yes_of(phone, older))
    assert "newer confirmation" in str(phone.answered(query).get("text"))
    assert service.query.state("shop").prod == 3


@pytest.mark.timeout(300)
def test_presses_that_meet_a_dropped_connection_act_once(phone: Chat) -> None:
    api, rig = phone.api, phone.plant
    shop(rig, commits=2)

    # the answer of a Yes is lost before it reaches Telegram: answered again, acted once
    phone.send("/deploy shop")
    ask = phone.wait_text("Deploy #2 ")
    api.drop_connection("answerCallbackQuery", handled=False)
    assert phone.answered(phone.press_text(ask, "Yes")).get("text") == "Started"
    phone.wait_text("deployed to #2", timeout=90)

    # the answer reaches Telegram, its reply is lost: not answered twice, acted once
    phone.send("/rollback shop 1")
    ask = phone.wait_text("Roll shop prod back to #1?")
    api.drop_connection("answerCallbackQuery", handled=True)
    assert phone.answered(phone.press_text(ask, "Yes")).get("text") == "Started"
    phone.wait_text("rolled back to #1", timeout=60)

    # the updates with the press are lost on their way to the bot: fetched again, acted once
    phone.send("/rollback shop 2")
    ask = phone.wait_text("Roll shop prod back to #2?")
    api.drop_connection("getUpdates", handled=True)
    phone.send("/help")  # the poll under way returns this; the next one is the dropped one
    assert phone.answered(phone.press_text(ask, "Yes")).get("text") == "Started"
    phone.wait_text("rolled back to #2", timeout=60)

    # a screen's edit dropped: the screen comes all the same
    api.drop_connection("editMessageText", handled=False)
    phone.send("/projects")
    phone.press(phone.wait_text("Projects"), "p|shop")
    phone.wait_text("shop · main")

    assert api.dropped == [
        "answercallbackquery",
        "answercallbackquery",
        "getupdates",
        "editmessagetext",
    ]
    assert prod_starts(rig) == [
        "running commit 1",
        "running commit 2",
        "running commit 1",
        "running commit 2",
    ]
    assert rig.stack.store.state("shop").prod == 2


def gone_pid() -> int:
    """The id of a process that has ended (as serve's, after a crash)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_live_card_cut_short_by_a_crash_ends_at_the_next_start(phone: Chat) -> None:
    rig = phone.plant
    rig.commit("1")
    rig.add()
    phone.send("/projects")
    card = phone.wait_text("Projects")  # stands for the card the crashed serve left at ⏳
    store = rig.stack.store

    def left(rows: dict[str, Any]) -> None:
        rows["0badc0de"] = {
            "chat": ADMIN,
            "message": card.message_id,
            "op": "deploy",
            "project": "shop",
            "pid": gone_pid(),
            "since": 0.0,
        }

    store.change_bot_table("cards", left)
    restart(phone)
    ended = phone.wait_text("cut short by a restart of the control plane")
    assert ended.message_id == card.message_id
    assert ended.text.startswith("⚠️ deploy shop:"), ended.text
    assert not phone.buttons(ended)
    assert store.change_bot_table("cards", dict) == {}
