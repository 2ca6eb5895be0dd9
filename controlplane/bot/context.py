"""What every handler needs, kept in the application's bot_data: the bot's settings, the
service facade (the bot's one way to the control plane) and each chat's language."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from telegram import Update
from telegram.ext import ContextTypes

from controlplane.bot.texts import pick_lang
from controlplane.service.facade import Redactor, Service
from controlplane.settings import Settings

T = TypeVar("T")


@dataclass
class Deps:
    """The control plane as the bot sees it, and the language of each chat: the one it
    chose with 🌐 (kept in the store, loaded at start) or its admin's Telegram language."""

    settings: Settings
    service: Service
    chosen: dict[int, str] = field(default_factory=dict)
    telegram: dict[int, str] = field(default_factory=dict)

    def lang(self, chat_id: int | None) -> str:
        """CONTROLPLANE_LANG for everyone, else the chat's choice, else its admin's."""
        chat = chat_id or 0
        return pick_lang(self.settings.lang, self.chosen.get(chat), self.telegram.get(chat))

    def choose(self, chat_id: int, lang: str) -> None:
        """Remember the language a chat chose (the store first: it outlives the bot)."""
        self.service.config.set_chat_lang(chat_id, lang)
        self.chosen[chat_id] = lang

    def redactor(self) -> Redactor:
        """Every secret value in the store and the bot's token (refreshed by the facade
        when the store changes)."""
        token = self.settings.telegram_token
        return self.service.redactor(also=(token,) if token else ())


def deps(context: ContextTypes.DEFAULT_TYPE) -> Deps:
    value = context.application.bot_data["deps"]
    assert isinstance(value, Deps)
    return value


def chat_of(update: Update) -> int:
    chat = update.effective_chat
    return chat.id if chat else 0


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the facade's calls (store, git, supervisord, files) off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


class Throttle:
    """At most one call per `every` seconds per key (edits of one message)."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._last: dict[object, float] = {}

    def ready(self, key: object) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, 0.0) >= self.every:
            self._last[key] = now
            return True
        return False
