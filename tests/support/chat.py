"""The admin's phone: the real python-telegram-bot client of a running bot against the
local Bot API server (tests/support/botapi.py), with the whole control plane behind it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from controlplane.bot.app import BotRunner
from tests.support.botapi import FakeBotAPI, Msg
from tests.support.fixtures_release import Plant

ADMIN = 111
STRANGER = 999
TOKEN = "424242:SECRET-BOT-TOKEN-abcdef"
PROD_KEY = "sk-prod-VerySecret-0123"
TEST_KEY = "sk-test-AlsoSecret-4567"


@dataclass
class Chat:
    """The admin's phone."""

    api: FakeBotAPI
    plant: Plant
    runner: BotRunner

    def send(self, text: str, chat: int = ADMIN) -> int:
        return self.api.user_sends(chat, text, user_id=chat)

    def last(self, chat: int = ADMIN) -> Msg:
        return self.api.bot_messages(chat)[-1]

    def wait_text(self, needle: str, timeout: float = 20, chat: int = ADMIN) -> Msg:
        found: list[Msg] = []

        def seen() -> bool:
            found[:] = [m for m in self.api.bot_messages(chat) if needle in m.text]
            return bool(found)

        self.api.wait_for(seen, timeout)
        return found[-1]

    def buttons(self, msg: Msg) -> dict[str, str]:
        rows = (msg.reply_markup or {}).get("inline_keyboard", [])
        return {b["text"]: b["callback_data"] for row in rows for b in row}

    def press(self, msg: Msg, data: str, chat: int = ADMIN) -> str:
        query = self.api.user_presses(chat, msg.message_id, data, user_id=chat)
        return query

    def press_text(self, msg: Msg, label: str) -> str:
        data = next(v for k, v in self.buttons(msg).items() if label in k)
        return self.press(msg, data)

    def answered(self, query: str, timeout: float = 10) -> dict[str, object]:
        self.api.wait_for(lambda: self.api.answer_of(query) is not None, timeout)
        answer = self.api.answer_of(query)
        assert answer is not None
        return answer


@pytest.fixture
def phone(plant: Plant, bot_api_options: dict[str, object]) -> Iterator[Chat]:
    api = FakeBotAPI(token=TOKEN, **bot_api_options)  # type: ignore[arg-type]
    url = api.start()
    settings = dataclasses.replace(
        plant.settings,
        telegram_token=TOKEN,
        admin_chat_ids=frozenset({ADMIN}),
        telegram_api_url=url,
        allow_file_urls=True,
        lang=None,
    )
    runner = BotRunner(settings, plant.stack.service)
    runner.start()
    assert runner.error is None
    try:
        yield Chat(api=api, plant=plant, runner=runner)
    finally:
        runner.stop()
        api.stop()
