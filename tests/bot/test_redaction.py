"""No secret leaves in any form: asserted on what the local Bot API server received.

The first tests drive the bot's own HTTP client (RedactingRequest) directly against the
local server, one endpoint and field after another; the others are scenarios from the
chat, with a real supervisord running an app that prints its secrets."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
)
from telegram.error import TelegramError
from telegram.ext import ExtBot

from controlplane.adapters.secrets import Redactor
from controlplane.adapters.supervisor.client import slot_logs
from controlplane.bot.redaction import RedactingRequest
from controlplane.domain.models import has_credentials, mask_credentials, validate_repo_url
from controlplane.errors import ValidationError
from tests.support.botapi import Call, FakeBotAPI, running
from tests.support.chat import ADMIN, PROD_KEY, Chat
from tests.support.fixtures_release import Plant

CHAT = 4242
SECRET = "sk-live-Xq81zz7Rt0p"
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    + "".join(
        f"MIIEvQIBADANBgkqhkiG9w0BAQEFAASC{i:02d}Kcwg{i:02d}SjAgEAAoIBAQC7VJTUt9Us8cKj{i:02d}\n"
        for i in range(32)
    )
    + "-----END PRIVATE KEY-----"
)
PEM_LINES = [line for line in PEM.splitlines() if "PRIVATE KEY" not in line]


def strings(value: Any) -> Iterator[str]:
    """Every text in a request as the server decoded it: JSON-encoded parameters
    (reply_markup, commands) opened up, uploaded files as text."""
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, str):
        yield value
        if value[:1] in ("{", "["):
            with contextlib.suppress(ValueError):
                yield from strings(json.loads(value))


def leaks(calls: list[Call], *needles: str) -> list[tuple[str, str]]:
    """(method, text) for every received text holding one of `needles`."""
    return [
        (call.method, text[:200])
        for call in calls
        for text in strings(call.params)
        if any(needle in text for needle in needles)
    ]


# -- every field of every endpoint ----------------------------------------------------------


@pytest.fixture
def api() -> Iterator[FakeBotAPI]:
    with running() as server:
        yield server


def redacting_bot(api: FakeBotAPI, secrets: list[str]) -> ExtBot[Any]:
    redactor = Redactor(secrets)
    return ExtBot(
        api.token,
        base_url=f"{api.url}/bot",
        base_file_url=f"{api.url}/file/bot",
        request=RedactingRequest(lambda: redactor),
    )


async def test_every_text_field_of_every_endpoint_is_redacted(api: FakeBotAPI) -> None:
    api.user_sends(CHAT, "hi", user_id=CHAT)
    buttons = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(f"#3 rotate {SECRET}", callback_data="rc|shop|3")],
            [InlineKeyboardButton("docs", url=f"https://example.com/?t={SECRET}")],
        ]
    )
    async with redacting_bot(api, [SECRET, "code"]) as bot:
        sent = await bot.send_message(
            CHAT, f"<b>key</b> <code>{SECRET}</code>", parse_mode="HTML", reply_markup=buttons
        )
        await bot.send_message(CHAT, f"plain {SECRET!r}")
        await bot.edit_message_text(
            f"<pre>{json.dumps({'k': SECRET})}</pre>",
            CHAT,
            sent.message_id,
            parse_mode="HTML",
            reply_markup=buttons,
        )
        await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=None)
        await bot.send_document(
            CHAT,
            InputFile(f"log line {SECRET}\n".encode() + b"\xff binary\n", filename=f"{SECRET}.log"),
            caption=f"<i>{SECRET}</i>",
            parse_mode="HTML",
        )
        await bot.set_my_commands([BotCommand("logs", f"show {SECRET}")])
        query = api.user_presses(CHAT, sent.message_id, "rc|shop|3", user_id=CHAT, forged=True)
        await bot.answer_callback_query(query, text=f"failed: {SECRET}")
        with pytest.raises(TelegramError):  # the local server has no polls; the call is kept
            await bot.send_poll(CHAT, f"which {SECRET}?", [f"a {SECRET}", "b"])
    assert leaks(api.requests, SECRET) == []
    sent_text = [c.params["text"] for c in api.calls("sendMessage")]
    assert sent_text == ["<b>key</b> <code>***</code>", "plain '***'"]
    assert api.calls("editMessageText")[0].params["text"] == '<pre>{"k": "***"}</pre>'
    document = next(m for m in api.bot_messages(CHAT) if m.document)
    assert document.document == ("***.log", b"log line ***\n\xff binary\n")
    assert document.text == "***"
    answer = api.answer_of(query)
    assert answer is not None and answer["text"] == "failed: ***"
    # callback data is not text: the button still does what it did
    markup = json.loads(api.calls("sendMessage")[0].params["reply_markup"])
    assert markup["inline_keyboard"][0][0] == {
        "text": "#3 rotate ***",
        "callback_data": "rc|shop|3",
    }
    assert markup["inline_keyboard"][1][0]["url"] == "https://example.com/?t=***"


async def test_a_value_that_is_a_tag_name_leaves_the_markup_alone(api: FakeBotAPI) -> None:
    api.user_sends(CHAT, "hi", user_id=CHAT)
    async with redacting_bot(api, ["code", "strong", "href", "amp;"]) as bot:
        await bot.send_message(
            CHAT,
            "<b>shop</b> <code>API</code> = code <strong>x</strong> &amp; "
            '<a href="https://example.com/code">link</a>',
            parse_mode="HTML",
        )
    message = api.bot_messages(CHAT)[-1]  # refused (400 "Unsupported start tag") if broken
    assert message.html == (
        "<b>shop</b> <code>API</code> = *** <strong>x</strong> &amp; "
        '<a href="https://example.com/***">link</a>'
    )


# -- URLs with credentials ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        ("ssh://deploy:PASSW0RD@host/o/r.git", "ssh://***@host/o/r.git"),
        ("https://user:tok3n@host/o/r.git", "https://***@host/o/r.git"),
        ("https://tok3n@host/o/r.git", "https://***@host/o/r.git"),
        ("git+https://u:tok3n@host/o/r.git", "git+https://***@host/o/r.git"),
        ("ftp://u:p@ss@host/o/r.git", "ftp://***@host/o/r.git"),
        ("deploy:PASSW0RD@host:o/r.git", "***@host:o/r.git"),
    ],
)
def test_a_url_with_credentials_is_recognised_and_masked(typed: str, shown: str) -> None:
    assert has_credentials(typed)
    assert mask_credentials(typed) == shown


@pytest.mark.parametrize(
    "typed", ["ssh://git@host/o/r.git", "git@host:o/r.git", "https://host/o/r.git"]
)
def test_a_url_without_credentials_is_left_as_it_is(typed: str) -> None:
    assert not has_credentials(typed)
    assert mask_credentials(typed) == typed


@pytest.mark.parametrize(
    "typed",
    [
        "ssh://deploy:PASSW0RD@host/o/r.git",
        "deploy:PASSW0RD@host:o/r.git",
        "git+https://u:PASSW0RD@host/o/r.git",
        "https://u:PASSW0RD@host",
    ],
)
def test_a_refused_url_never_quotes_its_password(typed: str) -> None:
    with pytest.raises(ValidationError) as refused:
        validate_repo_url(typed)
    assert "PASSW0RD" not in str(refused.value) and "***@" in str(refused.value)


# -- from the chat --------------------------------------------------------------------------

PRINTER = """\
import json, os, sys, time
key = os.environ["TLS_KEY"]
print(repr(key), file=sys.stderr)
print(json.dumps({"tls_key": key, "api": os.environ["API_KEY"]}), file=sys.stderr)
print("loaded key:", flush=True)
print(key, flush=True)
print("ready", flush=True)
sys.stderr.flush()
while True:
    time.sleep(3600)
"""


def commit_app(plant: Plant, subject: str, main: str = PRINTER) -> None:
    plant.origin.commit(subject, {"main.py": main, "VERSION": "1\n", "requirements.txt": ""})
    plant.origin.push()


@pytest.mark.timeout(300)
def test_logs_and_the_log_file_hide_every_line_and_escaped_form(phone: Chat) -> None:
    api, plant = phone.api, phone.plant
    commit_app(plant, "app that prints its key")
    plant.add()
    plant.ok("env", "set", "shop", f"TLS_KEY={PEM}", f"API_KEY={PROD_KEY}")
    plant.ok("project", "set", "shop", "health-window", "0")
    plant.ok("deploy", "shop")
    plant.box.wait_state("shop-prod", ("RUNNING",))
    out_log, _err_log = slot_logs(plant.settings, "shop", "prod")
    api.wait_for(lambda: out_log.exists() and "ready" in out_log.read_text(), 20)

    phone.send("/logs shop")
    logs = phone.wait_text("ready")
    # the key's first line has scrolled out of the 30-line window; the rest is hidden
    assert "BEGIN PRIVATE KEY" not in logs.text
    assert logs.text.count("***") >= 28 + 2, logs.text  # 28 key lines, repr, JSON
    assert not any(line in logs.text for line in PEM_LINES)
    phone.press(logs, "lf|shop|prod")
    api.wait_for(lambda: any(m.document for m in api.bot_messages(ADMIN)))
    document = next(m.document for m in api.bot_messages(ADMIN) if m.document)
    assert document is not None and b"ready" in document[1]
    escaped = [repr(PEM)[1:-1], json.dumps(PEM)[1:-1], PROD_KEY]
    assert leaks(api.requests, *PEM_LINES, *escaped) == []


@pytest.mark.timeout(300)
def test_rollback_buttons_hide_a_secret_in_a_commit_subject(phone: Chat) -> None:
    api, plant = phone.api, phone.plant
    short = "hunter2x9"
    commit_app(plant, "first")
    commit_app(plant, f"set {short}")
    commit_app(plant, f"rotate to {PROD_KEY} now")  # cut on the button inside the key
    plant.add()
    plant.ok("env", "set", "shop", f"API_KEY={PROD_KEY}", f"OLD_PASSWORD={short}")
    phone.send("/projects")
    listing = phone.wait_text("Projects")
    phone.press(listing, "p|shop")
    menu = phone.wait_text("shop · main")
    phone.press(menu, "rb|shop|0")

    def picker() -> list[str]:
        shown = [m for m in api.bot_messages(ADMIN) if "rc|shop|3" in json.dumps(m.reply_markup)]
        return list(phone.buttons(shown[-1])) if shown else []

    api.wait_for(lambda: bool(picker()), 10)
    labels = picker()
    assert any(label.startswith("#2 ") and "set ***" in label for label in labels), labels
    assert any(label.startswith("#3 ") and "rotate to ***…" in label for label in labels), labels
    # no request holds the key, the short one, or the key's first 8 characters and more
    assert leaks(api.requests, PROD_KEY, short, PROD_KEY[:8]) == []


@pytest.mark.timeout(300)
def test_credentials_sent_to_add_and_launch_are_deleted(phone: Chat) -> None:
    api = phone.api
    password = "PASSW0RD-q7z"
    phone.send("/add")
    phone.wait_text("Send its name")
    phone.send("shop")
    phone.wait_text("repository URL")
    typed = phone.send(f"ssh://deploy:{password}@127.0.0.1/srv/shop.git")
    refusal = phone.wait_text("ssh signs in with a key")
    assert "ssh://***@127.0.0.1/srv/shop.git" in refusal.text
    assert next(m for m in api.chat(ADMIN) if m.message_id == typed).deleted
    typed = phone.send(f"git+https://deploy:{password}@127.0.0.1/srv/shop.git")
    phone.wait_text("git+https://***@")
    assert next(m for m in api.chat(ADMIN) if m.message_id == typed).deleted
    kept = phone.send("ssh://git@127.0.0.1/srv/shop.git")  # a user name alone is no secret
    phone.wait_text("project folder")
    assert not next(m for m in api.chat(ADMIN) if m.message_id == kept).deleted
    phone.send("/cancel")
    phone.wait_text("Cancelled.")

    # the third-party launch flow
    phone.send("/start")
    menu = phone.wait_text("choose what to do")
    api.user_presses(ADMIN, menu.message_id, "lc", user_id=ADMIN, forged=True)
    phone.wait_text("URL to run")
    typed = phone.send(f"ssh://deploy:{password}@127.0.0.1/srv/other.git")
    phone.wait_text("ssh://***@127.0.0.1/srv/other.git")
    assert next(m for m in api.chat(ADMIN) if m.message_id == typed).deleted
    sent_by_bot = [c for c in api.requests if c.method != "getUpdates"]
    assert leaks(sent_by_bot, password) == []


@pytest.mark.timeout(300)
def test_config_opens_with_values_that_are_tag_names(phone: Chat) -> None:
    api, plant = phone.api, phone.plant
    plant.commit("1")
    plant.add()
    plant.ok("env", "set", "shop", "MODE=code", "STYLE=strong", "LINK=href", f"API_KEY={PROD_KEY}")
    phone.send("/projects")
    listing = phone.wait_text("Projects")
    phone.press(listing, "p|shop")
    menu = phone.wait_text("shop · main")
    phone.press(menu, "cf|shop|prod")
    config = phone.wait_text("variables (🔒 secrets masked)")
    assert "<code>API_KEY</code>" in config.html and "<code>MODE</code>" in config.html
    assert "<***>" not in config.html
    assert not any(call.status == 400 for call in api.requests), [
        (c.method, c.response) for c in api.requests if c.status == 400
    ]
    assert leaks(api.requests, PROD_KEY) == []
