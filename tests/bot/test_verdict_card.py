"""The verdict as the admin sees it in the chat: a cancelled test is no pass, and a pass
that the policy promotes by itself offers no Promote of its own.

Real supervisord, git and venvs behind the real bot, against the local Bot API server.
"""

from __future__ import annotations

import json
import time

from controlplane.bot.progress import shown
from controlplane.domain.verdict import Evidence
from controlplane.engine.testrun import live_line
from tests.support.chat import ADMIN, Chat
from tests.support.fixtures_release import add_shop


def markup(msg: object) -> str:
    return json.dumps(getattr(msg, "reply_markup", None) or {})


def test_cancel_gives_a_cancelled_verdict_without_promote(phone: Chat) -> None:
    api, plant = phone.api, phone.plant
    plant.commit("1")
    add_shop(plant)
    phone.send("/test shop 120")
    card = phone.wait_text("⏳", timeout=30)
    plant.box.wait_state("shop-test", ("RUNNING",), timeout=120)
    phone.press_text(card, "Cancel")
    ended = phone.wait_text("Test of shop #1 cancelled", timeout=60)
    assert "cancelled after" in ended.text and "passed" not in ended.text, ended.text
    assert "Promote" not in markup(ended) and "Discard" in markup(ended)
    # the notifier's message of the verdict: no Promote either
    api.wait_for(lambda: any("test of #1" in m.text for m in api.bot_messages(ADMIN)), 30)
    told = [m for m in api.bot_messages(ADMIN) if "test of #1" in m.text]
    assert all("Promote" not in markup(m) for m in told), [m.text for m in told]
    assert all("passed" not in m.text for m in told)


def test_a_pass_the_policy_promotes_offers_no_promote(phone: Chat) -> None:
    api, plant = phone.api, phone.plant
    plant.commit("1")
    add_shop(plant)
    plant.ok("project", "set", "shop", "policy", "promote")
    plant.ok("project", "set", "shop", "test-duration", "5")
    plant.ok("poll", "shop", "1m")
    plant.commit("2")
    plant.stack.poller.poll_once(now=time.time() + 3600)
    op = plant.stack.executor.busy("shop")
    assert op is not None and op.wait(timeout=180) and op.state == "ok", op and op.result
    api.wait_for(lambda: any("promoted to #2" in m.text for m in api.bot_messages(ADMIN)), 30)
    verdicts = [m for m in api.bot_messages(ADMIN) if "test of #2" in m.text]
    assert verdicts and all("passed" in m.text for m in verdicts), [m.text for m in verdicts]
    assert all("Promote" not in markup(m) for m in verdicts), [markup(m) for m in verdicts]


def test_an_apps_error_line_keeps_its_own_words_in_code() -> None:
    ev = Evidence(
        program="shop-test",
        elapsed=12.0,
        state="BACKOFF",
        restarts=3,
        distinct=[{"error": "ERROR: <db> down", "where": "", "count": 3}],
    )
    html = shown("ru", live_line(ev, 60))
    assert html.startswith("BACKOFF 12 с из 1 мин") and "перезапусков: 3" in html, html
    assert html.endswith("\n3× <code>ERROR: &lt;db&gt; down</code>"), html
