"""Variables in the chat (issue #14): secret or plain, and when a change applies.

Plain values are shown and never eat words ('prod', 'test'); secrets are masked in every
form. A save or a delete restarts nothing by itself: the chat offers 🔄 Restart now or ⏭ At
the next restart; a delete asks first; a variable only the build reads offers no restart.
The real PTB client against the local Bot API server, real supervisord behind it.
"""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from controlplane.domain.variables import build_only, default_secret
from tests.bot.test_redaction import leaks
from tests.support.botapi import Msg
from tests.support.chat import ADMIN, PROD_KEY, Chat
from tests.support.fixtures_release import Plant

DONE = "Already done: this confirmation was used. Open the menu again to repeat it."


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("API_KEY", "x1", True),
        ("github_token", "x1", True),
        ("DB_PASSWORD", "x1", True),
        ("SENTRY_DSN", "x1", True),
        ("PRIVATE_PEM", "x1", True),
        ("DATABASE_URL", "postgres://app:pw@db:5432/app", True),
        ("REPO", "https://ghp_abc123@github.com/o/r.git", True),
        ("MODE", "prod", False),
        ("APP_ENV", "test", False),
        ("DATABASE_URL", "postgres://db:5432/app", False),
        ("REPO", "ssh://git@github.com/o/r.git", False),
    ],
)
def test_which_variables_are_secrets_by_default(name: str, value: str, secret: bool) -> None:
    assert default_secret(name, value) is secret


def test_build_only_names() -> None:
    assert build_only("PIP_INDEX_URL") and build_only("UV_INDEX_URL") and build_only("pip_x")
    assert not build_only("API_KEY") and not build_only("PIPELINE")


def shop(rig: Plant) -> None:
    """shop added, prod live at #1 with a short health window."""
    rig.commit("1")
    rig.add()
    rig.ok("env", "set", "shop", f"UV_CONFIG_FILE={rig.uv_config}", f"API_KEY={PROD_KEY}")
    rig.ok("project", "set", "shop", "health-window", "1")
    rig.ok("deploy", "shop")
    rig.wait_report("prod", "1")


def config(phone: Chat, slot: str = "prod") -> Msg:
    phone.send("/projects")
    listing = phone.wait_text("Projects")
    phone.press(listing, "p|shop")
    menu = phone.wait_text("shop · main")
    before = len(phone.api.bot_messages(ADMIN))
    phone.press(menu, f"cf|shop|{slot}")
    phone.api.wait_for(lambda: "variables" in current(phone, menu).text)
    assert len(phone.api.bot_messages(ADMIN)) == before  # edited in place
    return current(phone, menu)


def current(phone: Chat, msg: Msg) -> Msg:
    return next(m for m in phone.api.bot_messages(ADMIN) if m.message_id == msg.message_id)


def changed(phone: Chat, msg: Msg, needle: str) -> Msg:
    phone.api.wait_for(lambda: needle in current(phone, msg).text)
    return current(phone, msg)


@pytest.mark.timeout(400)
def test_plain_values_stay_words_and_secrets_go_in_every_form(phone: Chat) -> None:
    rig = phone.plant
    shop(rig)
    rig.ok("env", "set", "shop", "MODE=prod", "APP_ENV=test", "SHORT_TOKEN=hunter2")
    rig.stack.service.submit("test", "shop", {"commit": "1", "duration": 5}).join()
    phone.send("/promote shop")
    confirm = phone.wait_text("Promote #1 of shop to prod?")
    assert "***" not in confirm.text and "<b>prod</b>" in confirm.html
    phone.send("/help")
    helped = phone.wait_text("/test NAME")
    assert "/status NAME" in helped.text and "***" not in helped.text

    listing = config(phone)
    assert "<code>MODE</code> = <code>prod</code>" in listing.html
    assert "<code>APP_ENV</code> = <code>test</code>" in listing.html
    assert "SHORT_TOKEN</code> = …r2 🔒" in listing.html  # a secret by its name

    # a secret still goes in every form, from logs to any text the bot sends
    forms = [
        PROD_KEY,
        base64.b64encode(PROD_KEY.encode()).decode(),
        quote(PROD_KEY, safe=""),
        "hunter2",
    ]
    redact = rig.stack.service.redactor()
    for form in forms:
        assert redact(f"got {form} here") == "got *** here"
    assert redact("prod test production") == "prod test production"
    assert leaks(phone.api.requests, PROD_KEY, "hunter2") == []


@pytest.mark.timeout(400)
def test_marking_a_variable_in_the_chat(phone: Chat) -> None:
    rig = phone.plant
    shop(rig)
    rig.ok("env", "set", "shop", "MODE=prod-eu-1")
    listing = config(phone)
    phone.press_text(listing, "MODE")
    screen = changed(phone, listing, "🔓 Plain")
    assert "prod-eu-1" in screen.text and "chosen by its name" in screen.text
    query = phone.press_text(screen, "🔒 Mark secret")
    assert "MODE is a secret now" in str(phone.answered(query)["text"])
    screen = changed(phone, listing, "🔒 Secret")
    assert "prod-eu-1" not in screen.text and "chosen by its name" not in screen.text
    assert rig.stack.service.redactor()("mode prod-eu-1.") == "mode ***."
    assert "MODE=…-1  (secret)" in rig.ok("env", "list", "shop")
    phone.press_text(screen, "🔓 Mark plain")
    changed(phone, listing, "🔓 Plain")
    assert rig.stack.service.redactor()("mode prod-eu-1.") == "mode prod-eu-1."
    # the API key, a secret by its name, masked on its screen
    phone.press_text(current(phone, listing), "⬅️ Back")
    back = changed(phone, listing, "variables")
    phone.press_text(back, "API_KEY")
    assert PROD_KEY not in changed(phone, listing, "🔒 Secret").text


def restart_choice(phone: Chat, needle: str) -> Msg:
    msg = phone.wait_text(needle)
    labels = list(phone.buttons(msg))
    assert labels == ["🔄 Restart now", "⏭ At the next restart", "⬅️ Back"], labels
    return msg


@pytest.mark.timeout(400)
def test_a_save_offers_restart_now_or_at_the_next_restart(phone: Chat) -> None:
    rig = phone.plant
    shop(rig)
    pid = rig.box.wait_state("shop-prod", ("RUNNING",)).pid
    listing = config(phone)
    phone.press(listing, "ca|shop|prod")
    phone.wait_text("Send one or more lines")
    phone.send("API_KEY=sk-prod-rotated-1")
    saved = restart_choice(phone, "Saved API_KEY for shop prod.")
    assert "keeps the old values until it restarts" in saved.text
    phone.press_text(saved, "⏭ At the next restart")
    changed(phone, saved, "keeps running; the change applies at its next restart")
    assert list(phone.buttons(current(phone, saved))) == ["⬅️ Back"]
    # nothing restarted: the same process, with the old value
    assert rig.box.wait_state("shop-prod", ("RUNNING",)).pid == pid
    assert rig.report("prod")["api"] == PROD_KEY

    phone.press(listing, "ca|shop|prod")
    asked = lambda: [m for m in phone.api.bot_messages(ADMIN) if "Send one or more" in m.text]  # noqa: E731
    phone.api.wait_for(lambda: len(asked()) == 2)
    phone.send("API_KEY=sk-prod-rotated-2")
    saved = restart_choice(phone, "Saved API_KEY for shop prod.")
    phone.press_text(saved, "🔄 Restart now")
    card = phone.wait_text("restart shop", timeout=60)
    phone.api.wait_for(lambda: "✅" in current(phone, card).text, 60)
    assert "health window" in current(phone, card).text  # watched as after a deploy
    assert rig.box.wait_state("shop-prod", ("RUNNING",), not_pid=pid).pid != pid
    phone.api.wait_for(lambda: rig.report("prod")["api"] == "sk-prod-rotated-2", 30)
    # the offer acts once (a stale copy of the button, pressed again)
    data = phone.buttons(saved)["🔄 Restart now"]
    again = phone.api.user_presses(ADMIN, saved.message_id, data, user_id=ADMIN, forged=True)
    assert phone.answered(again)["text"] == DONE


@pytest.mark.timeout(400)
def test_a_delete_asks_first_and_a_build_only_variable_never_restarts(phone: Chat) -> None:
    rig = phone.plant
    shop(rig)
    rig.ok("env", "set", "shop", "GREETING=hello")
    pid = rig.box.wait_state("shop-prod", ("RUNNING",)).pid
    listing = config(phone)
    phone.press_text(listing, "GREETING")
    screen = changed(phone, listing, "🔓 Plain")
    phone.press_text(screen, "🗑 Delete")
    asked = changed(phone, listing, "Delete GREETING from shop prod?")
    assert "GREETING" in rig.stack.service.store.env("shop", "prod")  # not yet
    phone.press_text(asked, "✅ Yes, do it")
    done = changed(phone, listing, "Deleted GREETING from shop prod.")
    assert list(phone.buttons(done)) == ["🔄 Restart now", "⏭ At the next restart", "⬅️ Back"]
    assert "GREETING" not in rig.stack.service.store.env("shop", "prod")
    assert rig.box.wait_state("shop-prod", ("RUNNING",)).pid == pid

    # only the build reads it: no restart offered, none made
    phone.press_text(done, "⬅️ Back")
    phone.press(changed(phone, done, "variables"), "ca|shop|prod")
    phone.wait_text("Send one or more lines")
    phone.send("PIP_INDEX_URL=https://pypi.example/simple")
    saved = phone.wait_text("Saved PIP_INDEX_URL for shop prod.")
    assert "Only the build reads them" in saved.text
    assert list(phone.buttons(saved)) == ["⬅️ Back"]
    assert rig.box.wait_state("shop-prod", ("RUNNING",)).pid == pid
    assert "PIP_INDEX_URL=https://pypi.example/simple" in rig.ok("env", "list", "shop")
