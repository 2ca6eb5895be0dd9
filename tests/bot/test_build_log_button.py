"""📎 on the history (⏪ Rollback): a commit's build log as a document, secrets hidden; a
log gone meanwhile is said so. Real supervisord, real builds, the real PTB client against
the local Bot API server."""

from __future__ import annotations

import json

import pytest

from tests.bot.test_redaction import leaks
from tests.support.chat import ADMIN, Chat


@pytest.mark.timeout(300)
def test_the_history_sends_a_build_log_with_secrets_hidden(phone: Chat) -> None:
    api, plant = phone.api, phone.plant
    secret = "hunter2x9q"
    plant.commit("1", requirements=f"no-such-pkg-{secret}==1.0\n")
    plant.add()
    plant.ok("env", "set", "shop", *plant.local_index(), f"OLD_PASSWORD={secret}")
    assert plant.cli("deploy", "shop").returncode != 0  # #1's build fails
    plant.commit("2")
    plant.ok("deploy", "shop")

    phone.send("/projects")
    phone.press(phone.wait_text("Projects"), "p|shop")
    phone.press(phone.wait_text("shop · main"), "rb|shop|0")

    def picker() -> dict[str, str]:
        shown = [m for m in api.bot_messages(ADMIN) if "rc|shop|2" in json.dumps(m.reply_markup)]
        return phone.buttons(shown[-1]) if shown else {}

    api.wait_for(lambda: bool(picker()), 10)
    history = [m for m in api.bot_messages(ADMIN) if "rc|shop|2" in json.dumps(m.reply_markup)][-1]
    rows = history.reply_markup["inline_keyboard"]  # type: ignore[index]
    clips = {row[1]["callback_data"]: row[1]["text"] for row in rows if len(row) == 2}
    assert clips == {"bl|shop|2": "📎", "bl|shop|1": "📎"}, rows

    phone.press(history, "bl|shop|1")
    api.wait_for(lambda: any(m.document for m in api.bot_messages(ADMIN)), 20)
    name, data = next(m.document for m in api.bot_messages(ADMIN) if m.document)  # type: ignore[misc]
    assert name == "shop-build-1.log"
    assert b"no-such-pkg-***" in data and b"FAILED" in data, data[-2000:]
    assert leaks(api.requests, secret) == []

    for path in plant.settings.layout.builds_dir.glob("shop-1*.log"):
        path.unlink()  # as a prune does
    phone.press(history, "bl|shop|1")
    phone.wait_text("No build log of #1: it went with its release when that was pruned.")
