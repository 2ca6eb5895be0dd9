"""What every handler needs, kept in the application's bot_data."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from telegram import Update
from telegram.ext import ContextTypes

from controlplane.adapters.secrets import Redactor
from controlplane.adapters.store import Store
from controlplane.engine.releases import Engine
from controlplane.engine.testrun import TestRuns
from controlplane.service.facade import Service
from controlplane.service.outbox import Outbox
from controlplane.settings import Settings

T = TypeVar("T")


@dataclass
class Deps:
    """The control plane as the bot sees it."""

    settings: Settings
    store: Store
    outbox: Outbox
    service: Service
    engine: Engine
    tests: TestRuns
    langs: dict[int, str] = field(default_factory=dict)
    _redactor: Redactor = field(default_factory=Redactor)
    _stamp: tuple[int, int] = (0, 0)

    def lang(self, chat_id: int | None) -> str:
        if self.settings.lang:
            return self.settings.lang
        return self.langs.get(chat_id or 0, "en")

    def redactor(self) -> Redactor:
        """Every secret value in the store, refreshed when the store file changes."""
        try:
            st = os.stat(self.store.path)
            stamp = (st.st_ino, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._stamp:
            self._redactor = Redactor(self.store.all_secret_values())
            if self.settings.telegram_token:
                self._redactor.add([self.settings.telegram_token])
            self._stamp = stamp
        return self._redactor


def deps(context: ContextTypes.DEFAULT_TYPE) -> Deps:
    value = context.application.bot_data["deps"]
    assert isinstance(value, Deps)
    return value


def chat_of(update: Update) -> int:
    chat = update.effective_chat
    return chat.id if chat else 0


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run store, git and service calls off the event loop."""
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
