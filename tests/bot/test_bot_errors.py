"""An exception in a bot handler, from the chat: the real PTB client against the local Bot
API server. The person who pressed gets an answer (no spinner left), the admins get one
report in their language (grouped: a repeat is counted and told after 10 minutes), and the
bot goes on answering."""

from __future__ import annotations

import dataclasses
import time

from controlplane.bot.app import BotRunner
from controlplane.domain.kinds import EventKind
from controlplane.i18n import Text
from controlplane.service.alarms import Alarms
from controlplane.service.facade import Service
from controlplane.service.requests import DEFAULT_TEST_SECONDS
from tests.support.botapi import FakeBotAPI
from tests.support.chat import ADMIN, TOKEN, Chat
from tests.support.fixtures_release import Plant

OTHER_ADMIN = 222


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FaultyService(Service):
    """The real facade, except that giving a test more time fails with a bug."""

    def extend(self, name: str, seconds: int = DEFAULT_TEST_SECONDS) -> Text:
        raise RuntimeError(f"injected fault while extending {name}")


def test_a_handler_that_raises_is_answered_reported_once_and_the_bot_goes_on(
    plant: Plant, bot_api_options: dict[str, object]
) -> None:
    plant.commit("1")
    plant.add()
    clock = Clock()
    runtime = plant.stack.service.runtime
    runtime = dataclasses.replace(runtime, alarms=Alarms(runtime.outbox, clock))
    api = FakeBotAPI(token=TOKEN, **bot_api_options)  # type: ignore[arg-type]
    settings = dataclasses.replace(
        plant.settings,
        telegram_token=TOKEN,
        admin_chat_ids=frozenset({ADMIN, OTHER_ADMIN}),
        telegram_api_url=api.start(),
        lang=None,
    )
    plant.stack.store.set_chat_lang(OTHER_ADMIN, "ru")
    runner = BotRunner(settings, FaultyService(settings, plant.stack.store, runtime))
    runner.start()
    try:
        phone = Chat(api=api, plant=plant, runner=runner)
        phone.send("/projects")
        phone.press(phone.wait_text("Projects"), "p|shop")
        menu = phone.wait_text("shop · main")

        def press_extend() -> dict[str, object]:
            query = api.user_presses(ADMIN, menu.message_id, "ex|shop|60", forged=True)
            return phone.answered(query)

        answer = press_extend()
        assert answer.get("show_alert") is True
        assert str(answer.get("text")).startswith("⚠️ That failed: an internal error.")
        report = phone.wait_text("🚨 Internal error in the bot handler")
        assert "RuntimeError: injected fault while extending shop" in report.text
        assert "What I did: The person who pressed or wrote was told it failed" in report.text
        ru = phone.wait_text("🚨 Внутренняя ошибка (обработчик бота)", chat=OTHER_ADMIN)
        assert "Что можно сделать:" in ru.text

        press_extend()  # again within 10 minutes: answered, counted, not sent
        phone.send("/projects")  # the bot goes on
        phone.wait_text("Projects")  # the listing became the menu: this is the new one
        time.sleep(1.0)
        reports = [m for m in api.bot_messages(ADMIN) if "Internal error" in m.text]
        assert len(reports) == 1, [m.text for m in reports]

        clock.now += 600
        assert runtime.alarms.tick() == 1  # what serve's loop does every pass
        repeat = phone.wait_text("Seen 1 time in the last 10 minutes.")
        assert "injected fault while extending shop" in repeat.text
        phone.wait_text("За последние 10 минут: 1 раз.", chat=OTHER_ADMIN)
    finally:
        runner.stop()
        api.stop()


def test_an_admin_who_blocked_the_bot_is_reported_to_the_others_without_a_loop(
    plant: Plant, bot_api_options: dict[str, object]
) -> None:
    """Telegram refuses every message to one admin (403): the others are told once, the
    refusals of the report itself make no further report, and delivery goes on."""
    clock = Clock()
    runtime = plant.stack.service.runtime
    runtime = dataclasses.replace(runtime, alarms=Alarms(runtime.outbox, clock))
    api = FakeBotAPI(token=TOKEN, **bot_api_options)  # type: ignore[arg-type]
    settings = dataclasses.replace(
        plant.settings,
        telegram_token=TOKEN,
        admin_chat_ids=frozenset({ADMIN, OTHER_ADMIN}),
        telegram_api_url=api.start(),
        lang=None,
    )
    api.user_blocks(OTHER_ADMIN)
    runner = BotRunner(settings, Service(settings, plant.stack.store, runtime))
    runner.start()
    try:
        phone = Chat(api=api, plant=plant, runner=runner)
        outbox = runtime.outbox
        outbox.publish(EventKind.DEPLOYED, "shop", "shop deployed to #1")
        phone.wait_text("shop deployed to #1")
        report = phone.wait_text("🚨 Internal error in the notifier")
        assert "notifier: Forbidden: bot was blocked by the user\n" in report.text
        assert f"The message to chat {OTHER_ADMIN} was skipped; the others go on." in report.text
        outbox.publish(EventKind.DEPLOYED, "shop", "shop deployed to #2")  # refused: counted
        phone.wait_text("shop deployed to #2")
        time.sleep(1.0)
        clock.now += 600
        runtime.alarms.tick()
        phone.wait_text("Seen 1 time in the last 10 minutes.")  # #2; the report's refusal: none
        time.sleep(1.0)
        reports = [m for m in api.bot_messages(ADMIN) if m.text.startswith("🚨")]
        assert len(reports) == 2, [m.text for m in reports]
        clock.now += 1200
        assert runtime.alarms.tick() == 0, "the refused reports made no report"
        assert api.bot_messages(OTHER_ADMIN) == []
    finally:
        runner.stop()
        api.stop()
