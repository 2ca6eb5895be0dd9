"""The bot from the chat: the real python-telegram-bot client against the local Bot API
server, the real engine behind it, a real supervisord running the apps."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from typing import Any

import pytest

from controlplane.bot.app import BotRunner
from controlplane.domain.kinds import EventKind
from controlplane.observe.load import Snapshot, conditions
from tests.support.botapi import FakeBotAPI, Msg
from tests.support.chat import ADMIN, PROD_KEY, STRANGER, TEST_KEY, TOKEN, Chat
from tests.support.fixtures_release import Plant

CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


def test_commands_are_registered_in_two_languages(phone: Chat) -> None:
    commands = phone.api.commands
    langs = {lang for (_scope, lang) in commands}
    assert {"", "ru"} <= {lang or "" for lang in langs}, commands
    about = {
        lang: {c["command"]: c["description"] for c in got} for (_s, lang), got in commands.items()
    }
    assert about[""]["projects"] == "your projects" and about[""]["load"] == "system load"
    assert about["ru"]["projects"] == "ваши проекты" and about["ru"]["cancel"] == "прервать ввод"
    assert about[""].keys() == about["ru"].keys()
    for command, description in about["ru"].items():
        assert CYRILLIC.search(description), (command, description)
        assert not CYRILLIC.search(about[""][command]), (command, about[""][command])


def test_answers_sent_at_once_each_meet_the_state_the_one_before_left(phone: Chat) -> None:
    """A fast typist (or a long paste Telegram splits into several messages): the second
    answer is read as the second question's answer, never as the first's."""
    phone.send("/start")
    phone.press_text(phone.wait_text("choose what to do"), "Add project")
    phone.wait_text("Send its name")

    def said(needle: str) -> int:
        return sum(needle in m.text for m in phone.api.bot_messages(ADMIN))

    for round_ in range(1, 6):
        phone.send("shop")
        phone.send("--upload-pack=touch /tmp/x")  # no wait: it arrives while 'shop' is read
        phone.api.wait_for(lambda n=round_: said("bad repository URL") + said("bad project") >= n)
        phone.send("/cancel")
        phone.send("/add")
        phone.api.wait_for(lambda n=round_: said("Send its name") >= n + 1)
    assert said("bad project name") == 0 and said("bad repository URL") == 5


@pytest.mark.timeout(400)
def test_from_the_chat(phone: Chat) -> None:
    api, plant = phone.api, phone.plant
    plant.commit("1")

    # add a project: a conversation, each step validated
    phone.send("/start")
    menu = phone.wait_text("choose what to do")
    phone.press_text(menu, "Add project")
    phone.wait_text("Send its name")
    phone.send("Bad Name")
    phone.wait_text("bad project name")
    phone.send("shop")
    phone.wait_text("repository URL")
    phone.send("--upload-pack=touch /tmp/x")
    phone.wait_text("bad repository URL")
    phone.send(plant.origin.url)
    phone.wait_text("project folder")
    phone.send(str(plant.box.base / "live" / "shop"))
    phone.wait_text("branch")
    phone.send("/skip")
    added = phone.wait_text("Added shop", timeout=60)
    assert "#1" in added.text

    # config: several KEY=VALUE lines in one message; the message is deleted once saved
    phone.press(added, "cf|shop|prod")
    config = phone.wait_text("has no prod variables")
    phone.press_text(config, "Add KEY=VALUE")
    phone.wait_text("KEY=VALUE")
    values_msg = phone.send(
        f"UV_CONFIG_FILE={plant.uv_config}\nAPI_KEY={PROD_KEY}\nPIP_FIND_LINKS={plant.wheels}"
    )
    phone.wait_text("Saved API_KEY, PIP_FIND_LINKS, UV_CONFIG_FILE")
    assert next(m for m in api.chat(ADMIN) if m.message_id == values_msg).deleted
    plant.ok("env", "set", "shop", "--test", f"API_KEY={TEST_KEY}")
    plant.ok("project", "set", "shop", "health-window", "2")

    # test deploy with a live card that ends as a verdict card with Promote #1
    phone.send("/test shop 5")
    card = phone.wait_text("Test of shop #1 passed", timeout=120)
    assert "running commit 1" in card.text  # the app's own last lines on the card
    assert plant.report("test")["api"] == TEST_KEY
    verdict = next(
        m
        for m in reversed(api.bot_messages(ADMIN))
        if "test" in m.text and "Promote #1" in json.dumps(m.reply_markup)
    )
    assert card.edits >= 1 or verdict.edits >= 1

    # promote asks to confirm and names the variables that differ
    phone.press_text(verdict, "Promote #1")
    confirm = phone.wait_text("Promote #1 of shop to prod?")
    assert "API_KEY" in confirm.text and TEST_KEY not in confirm.text
    phone.press_text(confirm, "Yes")
    phone.wait_text("promoted to #1", timeout=60)
    assert plant.wait_report("prod", "1")["api"] == PROD_KEY

    # a new commit deployed from the chat, then /rollback by number
    plant.commit("2")
    phone.send("/deploy shop")
    phone.press_text(phone.wait_text("Deploy #2 "), "Yes")
    phone.wait_text("deployed to #2", timeout=90)
    plant.wait_report("prod", "2")
    phone.send("/rollback shop 1")
    phone.press_text(phone.wait_text("Roll shop prod back to #1?"), "Yes")
    card = phone.wait_text("rolled back to #1", timeout=60)
    assert "shop: shop:" not in card.text  # the card's head names the project once
    assert plant.wait_report("prod", "1")["version"] == "1"

    # the notifier delivered the engine's events, each once
    api.wait_for(
        lambda: any("rolled back" in m.text and "⏪" in m.text for m in api.bot_messages(ADMIN)), 20
    )
    texts = [m.text for m in api.bot_messages(ADMIN) if m.text.startswith("⏪")]
    assert len(texts) == 1, texts

    # nothing the server received holds a secret value
    for call in api.requests:
        blob = json.dumps(call.params, default=str)
        for secret in (PROD_KEY, TEST_KEY, TOKEN):
            assert secret not in blob, (call.method, blob[:300])


def test_strangers_get_nothing_and_change_nothing(phone: Chat) -> None:
    api, plant = phone.api, phone.plant
    plant.commit("1")
    plant.add()
    phone.send("/start")
    menu = phone.wait_text("choose what to do")
    before = plant.stack.store.path.read_bytes()

    phone.send("/start", chat=STRANGER)
    phone.send("/deploy shop", chat=STRANGER)
    api.user_sends(STRANGER, "edited", user_id=STRANGER, kind="message")
    # a replay of an admin's button data from the stranger's own chat
    bait = api.user_sends(STRANGER, "x", user_id=STRANGER)
    del bait
    report = phone.wait_text("not an admin")
    assert str(STRANGER) in report.text
    # the stranger pressing on the admin's menu message (a forged callback)
    forged = api.user_presses(ADMIN, menu.message_id, "rm!|shop", user_id=STRANGER, forged=True)
    time.sleep(1.5)
    assert api.bot_messages(STRANGER) == []
    assert api.answer_of(forged) is None
    assert plant.stack.store.get_project("shop").name == "shop"
    reports = [m for m in api.bot_messages(ADMIN) if "not an admin" in m.text]
    assert len(reports) == 1, "at most one report per hour per chat"
    assert plant.stack.store.path.read_bytes() == before


def test_stale_buttons_and_fast_answers(phone: Chat) -> None:
    api, plant = phone.api, phone.plant
    plant.commit("1")
    plant.add()
    phone.send("/projects")
    listing = phone.wait_text("Projects")
    query = phone.press(listing, "p|shop")
    answer = phone.answered(query)
    assert float(answer["answered_at"]) - float(answer["pressed_at"]) < 1.0  # type: ignore[arg-type]
    project = phone.wait_text("shop · main")
    # a button of a test that has finished (an old live card)
    finished = api.user_presses(ADMIN, project.message_id, "ex|shop|60", user_id=ADMIN, forged=True)
    assert phone.answered(finished).get("text") == "That test has finished."
    plant.ok("project", "remove", "shop")
    stale = phone.press(project, "st|shop")
    assert phone.answered(stale).get("text") == "That project no longer exists."
    junk = api.user_presses(ADMIN, project.message_id, "zz|" + "x" * 40, user_id=ADMIN, forged=True)
    assert "out of date" in str(phone.answered(junk).get("text"))


def test_typed_numbers_that_are_not_ascii_digits_get_usage(phone: Chat) -> None:
    plant = phone.plant
    plant.commit("1")
    plant.add()
    phone.send("/rollback shop ¹")
    phone.wait_text("Usage: /rollback NAME N")
    phone.send("/projects")
    listing = phone.wait_text("Projects")
    phone.press(listing, "p|shop")
    menu = phone.wait_text("shop · main")
    phone.press(menu, "pi|shop")
    polls = phone.wait_text("How often")
    phone.press_text(polls, "15m")
    phone.wait_text("Now: 15m")
    phone.press_text(phone.wait_text("Now: 15m"), "off")
    phone.wait_text("Now: off")
    assert plant.stack.store.get_project("shop").poll == 0
    assert not any("Internal error" in m.text for m in phone.api.bot_messages(ADMIN))


def test_status_and_logs_from_the_chat(phone: Chat) -> None:
    api, plant = phone.api, phone.plant
    plant.commit("1")
    plant.add()
    plant.ok("env", "set", "shop", f"UV_CONFIG_FILE={plant.uv_config}", f"API_KEY={PROD_KEY}")
    plant.ok("project", "set", "shop", "health-window", "0")
    plant.ok("deploy", "shop")
    plant.wait_report("prod", "1")
    plant.box.wait_state("shop-prod", ("RUNNING",))
    phone.send("/status")
    overview = phone.wait_text("RUNNING")
    assert "shop" in overview.text and "#1" in overview.text
    phone.send("/status shop")
    phone.wait_text("prod")
    phone.send("/logs shop")
    logs = phone.wait_text("running commit 1")
    assert "shop prod: last" in logs.text
    phone.press(logs, "lf|shop|prod")
    api.wait_for(lambda: any(m.document for m in api.bot_messages(ADMIN)))
    document = next(m.document for m in api.bot_messages(ADMIN) if m.document)
    assert document is not None and b"running commit 1" in document[1]
    # follow: the app prints a new line (a restart), the message is edited with it
    assert "fl|shop|prod|120" in phone.buttons(logs).values()
    api.user_presses(ADMIN, logs.message_id, "fl|shop|prod|6", user_id=ADMIN, forged=True)
    watching = phone.wait_text("new lines for 6 s")
    plant.box.client.restart("shop-prod")
    api.wait_for(
        lambda: any(
            m.message_id == watching.message_id and "running commit 1" in m.text
            for m in api.bot_messages(ADMIN)
        ),
        15,
    )
    for call in api.requests:
        assert PROD_KEY not in json.dumps(call.params, default=str)


# -- languages ------------------------------------------------------------------------------

OTHER_ADMIN = 222


def disk_warning() -> Any:
    """What the load sampler publishes when the disk is nearly full (a Text)."""
    snap = Snapshot(
        at=time.time(),
        source="host",
        cpu_percent=None,
        cpu_capacity=2,
        cpu_limited=False,
        memory_used=1 << 30,
        memory_limit=4 << 30,
        memory_limited=False,
        load_avg=(0.1, 0.1, 0.1),
        host_cpus=2,
        disk_path="/data",
        disk_total=100 << 30,
        disk_free=3 << 30,
    )
    return conditions(snap)["disk"]


def press_in(phone: Chat, chat: int, msg: Msg, label: str) -> None:
    data = next(v for k, v in phone.buttons(msg).items() if label in k)
    phone.api.user_presses(chat, msg.message_id, data, user_id=chat)


def test_the_language_button_is_per_chat_and_outlives_a_restart(
    plant: Plant, bot_api_options: dict[str, object]
) -> None:
    """🌐 switches one chat to Russian: its menus at once, then after the bot restarts its
    notifications (before its admin writes again) while another admin's chat stays English;
    the choice beats the admin's Telegram language."""
    api = FakeBotAPI(token=TOKEN, **bot_api_options)  # type: ignore[arg-type]
    settings = dataclasses.replace(
        plant.settings,
        telegram_token=TOKEN,
        admin_chat_ids=frozenset({ADMIN, OTHER_ADMIN}),
        telegram_api_url=api.start(),
        lang=None,
    )
    runner = BotRunner(settings, plant.stack.service)
    runner.start()
    try:
        phone = Chat(api=api, plant=plant, runner=runner)
        phone.send("/start")
        menu = phone.wait_text("choose what to do")
        phone.press_text(menu, "🌐 Language")
        picker = phone.wait_text("The language of this chat")
        assert set(phone.buttons(picker)) >= {"• English", "Русский"}
        phone.press_text(picker, "Русский")
        ru_menu = phone.wait_text("что сделать")
        assert ru_menu.message_id == menu.message_id  # the menu itself, now in Russian
        assert "📦 Проекты" in phone.buttons(ru_menu) and "🌐 Язык" in phone.buttons(ru_menu)
        assert plant.stack.store.chat_langs() == {ADMIN: "ru"}
    finally:
        runner.stop()

    runner = BotRunner(settings, plant.stack.service)
    runner.start()
    try:
        phone = Chat(api=api, plant=plant, runner=runner)
        plant.stack.outbox.publish(EventKind.LOAD_WARNING, None, disk_warning(), what="disk")
        ru = phone.wait_text("📊", chat=ADMIN)
        en = phone.wait_text("📊", chat=OTHER_ADMIN)
        assert ru.text == "📊 на диске /data свободно 3,0% (3,0 ГБ из 100,0 ГБ)", ru.text
        assert en.text == "📊 disk free 3.0% (3.0 GiB of 100.0 GiB) on /data", en.text

        # the chat's choice beats its admin's Telegram language, both ways
        phone.send("/load")  # the phone's Telegram speaks English
        load = phone.wait_text("ЦП", timeout=30)
        assert "память" in load.text and "диск" in load.text and " of " not in load.text
        api.user_sends(OTHER_ADMIN, "/start", user_id=OTHER_ADMIN, language_code="ru")
        other = phone.wait_text("что сделать", chat=OTHER_ADMIN)
        press_in(phone, OTHER_ADMIN, other, "🌐 Язык")
        picker = phone.wait_text("Язык этого чата", chat=OTHER_ADMIN)
        press_in(phone, OTHER_ADMIN, picker, "English")
        phone.wait_text("choose what to do", chat=OTHER_ADMIN)
        assert plant.stack.store.chat_langs() == {ADMIN: "ru", OTHER_ADMIN: "en"}
    finally:
        runner.stop()
        api.stop()


def test_a_fixed_language_has_no_language_button(plant: Plant) -> None:
    """CONTROLPLANE_LANG fixes the language for every chat: no 🌐, whatever was chosen."""
    plant.stack.store.set_chat_lang(ADMIN, "en")
    api = FakeBotAPI(token=TOKEN)
    settings = dataclasses.replace(
        plant.settings,
        telegram_token=TOKEN,
        admin_chat_ids=frozenset({ADMIN}),
        telegram_api_url=api.start(),
        lang="ru",
    )
    runner = BotRunner(settings, plant.stack.service)
    runner.start()
    try:
        phone = Chat(api=api, plant=plant, runner=runner)
        phone.send("/start")
        menu = phone.wait_text("что сделать")
        assert not any("🌐" in label for label in phone.buttons(menu))
        # an old 🌐 button changes nothing
        api.user_presses(ADMIN, menu.message_id, "ln|en", user_id=ADMIN, forged=True)
        phone.send("/help")
        phone.wait_text("Команды")
        assert plant.stack.store.chat_langs() == {ADMIN: "en"}
    finally:
        runner.stop()
        api.stop()
