"""The bot's own life inside serve (service/botlife.py: BotWatch, as serve's `start_bot`
wires it): Telegram unreachable at start, a rejected token, the bot's thread killed. The
real PTB client talks to the local Bot API server (tests/support/botapi.py); what counts
is what the admin sees in the chat, what `controlplane status`/`health` say, and that the
token is nowhere on disk or in a log line."""

from __future__ import annotations

import dataclasses
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from controlplane.service.botlife import BotWatch, health_text, read_health, redact_logs, redactor
from controlplane.service.serve import start_bot
from controlplane.settings import Settings
from tests.conftest import cli_env
from tests.support.botapi import FakeBotAPI
from tests.support.fixtures_release import Plant

ADMIN = 111
TOKEN = "424242:SECRET-BOT-TOKEN-abcdef"
WRONG = "424242:REVOKED-TOKEN-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bot_settings(plant: Plant, url: str, token: str = TOKEN, lang: str | None = None) -> Settings:
    return dataclasses.replace(
        plant.settings,
        telegram_token=token,
        admin_chat_ids=frozenset({ADMIN}),
        telegram_api_url=url,
        lang=lang,
    )


def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@contextmanager
def watched(plant: Plant, settings: Settings) -> Iterator[BotWatch]:
    """The bot as serve runs it, with serve's log redaction on every handler."""
    unredact = redact_logs(redactor(settings, plant.stack.service))
    watch = start_bot(settings, plant.stack.service, plant.stack.outbox)
    try:
        yield watch
    finally:
        watch.stop()
        unredact()


def bot_back(api: FakeBotAPI) -> list[str]:
    return [m.text for m in api.bot_messages(ADMIN) if m.text.startswith("🤖")]


def answers_start(api: FakeBotAPI) -> None:
    api.user_sends(ADMIN, "/start", user_id=ADMIN)
    api.wait_for(lambda: any("/" not in m.text for m in api.bot_messages(ADMIN)[-1:]), 20)


def test_telegram_unreachable_at_start_then_back(plant: Plant) -> None:
    """Nobody listens at the API's address when serve starts (DNS not ready after a boot):
    the bot retries, says so in status, and comes up by itself once Telegram answers; the
    admin gets one message about it."""
    port = free_port()
    settings = bot_settings(plant, f"http://127.0.0.1:{port}")
    api = FakeBotAPI(token=TOKEN)
    with watched(plant, settings) as watch:
        until(lambda: read_health(settings).state == "retrying")
        health = read_health(settings)
        assert "NetworkError" in health.why and health.next_try is not None
        assert "Telegram unreachable" in str(health_text(health))
        time.sleep(3)  # Telegram stays unreachable a while: several tries fail
        api.start(port)
        back = time.monotonic()
        until(lambda: watch.health.state == "polling")
        print(f"\npolling {time.monotonic() - back:.1f} s after the API came back")
        answers_start(api)
        api.wait_for(lambda: bool(bot_back(api)), 20)
        [told] = bot_back(api)
        print("told:", told)
        assert "could not reach Telegram for" in told and "it answers again" in told
        answers_start(api)
        assert len(bot_back(api)) == 1
    assert read_health(settings).state == "stopped"
    api.stop()


def test_a_rejected_token_is_retried_slowly_and_is_nowhere(
    plant: Plant, caplog: pytest.LogCaptureFixture
) -> None:
    """Telegram answers 401: the bot keeps trying every few minutes; status and the
    healthcheck say the token is rejected; the token is in no file and no log line."""
    caplog.set_level(logging.DEBUG)
    api = FakeBotAPI(token=TOKEN)
    settings = bot_settings(plant, api.start(), token=WRONG)
    try:
        with watched(plant, settings) as watch:
            until(lambda: read_health(settings).state == "token_rejected")
            health = read_health(settings)
            assert health.next_try is not None and 20 < health.next_try - time.time() <= 90
            assert "was rejected" in health.why and WRONG not in health.why
            assert watch.runner is not None and watch.runner.alive  # still trying
            assert len(api.calls("getMe")) == 1  # the next try is minutes away
            print(f"\n{health.why}; next try in {health.next_try - time.time():.0f} s")
            env = cli_env(plant.settings.data_dir, TELEGRAM_TOKEN=WRONG)
            check = subprocess.run(
                [sys.executable, "-m", "controlplane", "health"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert check.returncode == 1, check.stdout + check.stderr
            assert "Telegram rejected the token" in check.stdout
            print("health:", check.stdout.strip())
            status = subprocess.run(
                [sys.executable, "-m", "controlplane", "status"],
                env={**env, "LANG": "ru_RU.UTF-8", "LC_ALL": "ru_RU.UTF-8"},
                capture_output=True,
                text=True,
                check=True,
            )
            assert "Telegram отклонил токен" in status.stdout, status.stdout
        assert "was rejected" in caplog.text
        assert WRONG not in caplog.text and WRONG.split(":")[1] not in caplog.text
        for path in plant.settings.data_dir.rglob("*"):
            if path.is_file():
                assert WRONG.encode() not in path.read_bytes(), path
    finally:
        api.stop()


def test_the_bots_thread_killed_comes_back_and_the_admin_is_told_once(plant: Plant) -> None:
    """A fault kills the bot's loop (its main task cancelled): serve starts a new bot, and
    the admin hears once, in the chat's language, that it stopped and for how long."""
    api = FakeBotAPI(token=TOKEN)
    settings = bot_settings(plant, api.start(), lang="ru")
    try:
        with watched(plant, settings) as watch:
            until(lambda: watch.health.state == "polling")
            first = watch.runner
            assert first is not None and first.loop is not None and first.task is not None
            first.loop.call_soon_threadsafe(first.task.cancel)
            until(lambda: watch.runner is not first and watch.health.state == "polling")
            assert "CancelledError" in (first.error or "")
            api.wait_for(lambda: bool(bot_back(api)), 20)
            [told] = bot_back(api)
            assert "Бот остановился (CancelledError)" in told, told
            print("\ntold:", told)
            answers_start(api)
            assert len(bot_back(api)) == 1
    finally:
        api.stop()


def test_a_token_revoked_while_polling_is_found_and_retried_slowly(plant: Plant) -> None:
    """Telegram starts refusing the token while the bot polls (revoked in BotFather): PTB
    gives its polling up; serve starts a new bot, which finds the token rejected and keeps
    trying slowly; status says so."""
    api = FakeBotAPI(token=TOKEN)
    settings = bot_settings(plant, api.start())
    try:
        with watched(plant, settings) as watch:
            until(lambda: watch.health.state == "polling")
            first = watch.runner
            api.revoke_token("424242:ANOTHER-TOKEN-NOW")
            until(lambda: read_health(settings).state == "token_rejected")
            assert watch.runner is not first
            assert "polling stopped" in (getattr(first, "error", "") or "")
            print("\n" + str(health_text(read_health(settings))))
    finally:
        api.stop()
