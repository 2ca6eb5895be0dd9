"""The local Bot API server against the real python-telegram-bot HTTP client."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from tests.support.botapi import FakeBotAPI, Flood, parse_html

CHAT = 4242
GROUP = -1001234567890


@pytest.fixture(autouse=True)
def _timedelta_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    # RetryAfter.retry_after warns (an error here) unless PTB's timedelta mode is on.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
def api() -> Iterator[FakeBotAPI]:
    with FakeBotAPI() as server:
        yield server


def make_bot(api: FakeBotAPI, token: str | None = None) -> Bot:
    return Bot(token or api.token, base_url=f"{api.url}/bot", base_file_url=f"{api.url}/file/bot")


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    async with make_bot(api) as b:
        yield b


ROWS = [f"p|{i}" for i in range(101)]  # a keyboard of 101 buttons: one too many


def keyboard(*datas: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d, callback_data=d) for d in datas]])


def raw_call(api: FakeBotAPI, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One call with urllib: JSON body if given, else GET."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api.url + path, data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# --- polling ------------------------------------------------------------------------------------


async def test_long_poll_delivers_a_message_and_the_offset_confirms_it(
    api: FakeBotAPI, bot: Bot
) -> None:
    assert bot.username == "cp_test_bot"
    threading.Timer(0.3, api.user_sends, (CHAT, "/deploy web")).start()
    started = time.monotonic()
    updates = await bot.get_updates(timeout=5)
    assert 0.2 < time.monotonic() - started < 4
    [update] = updates
    assert update.message is not None
    assert update.message.text == "/deploy web"
    assert update.message.chat.type == "private"
    assert update.message.from_user is not None and update.message.from_user.id == CHAT
    assert update.message.parse_entities() == {update.message.entities[0]: "/deploy"}

    assert await bot.get_updates(timeout=0) == updates  # not confirmed yet
    assert await bot.get_updates(offset=update.update_id + 1, timeout=0) == ()
    assert api.pending_updates() == []


async def test_pending_updates_return_at_once_with_limit(api: FakeBotAPI, bot: Bot) -> None:
    for i in range(3):
        api.user_sends(CHAT, f"m{i}")
    started = time.monotonic()
    updates = await bot.get_updates(timeout=10, limit=2)
    assert time.monotonic() - started < 1
    assert [u.message.text for u in updates if u.message] == ["m0", "m1"]
    last = await bot.get_updates(offset=-1)
    assert [u.message.text for u in last if u.message] == ["m2"]
    assert len(api.pending_updates()) == 1


async def test_allowed_updates_filters_later_updates(api: FakeBotAPI, bot: Bot) -> None:
    await bot.get_updates(timeout=0, allowed_updates=["callback_query"])
    api.user_sends(CHAT, "ignored")
    assert await bot.get_updates(timeout=0) == ()
    await bot.get_updates(timeout=0, allowed_updates=[])
    api.user_sends(CHAT, "seen")
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None and update.message.text == "seen"


def test_stop_releases_a_waiting_long_poll() -> None:
    server = FakeBotAPI()
    server.start()
    results: list[Any] = []
    path = f"/bot{server.token}/getUpdates?timeout=30"
    poller = threading.Thread(target=lambda: results.append(raw_call(server, path)))
    poller.start()
    server.wait_for(lambda: server._poll_generation == 1)
    started = time.monotonic()
    server.stop()
    poller.join(5)
    assert time.monotonic() - started < 2
    assert results == [(200, {"ok": True, "result": []})]


def test_a_second_poller_terminates_the_first_with_409(api: FakeBotAPI) -> None:
    results: list[Any] = []
    path = f"/bot{api.token}/getUpdates?timeout=30"
    first = threading.Thread(target=lambda: results.append(raw_call(api, path)))
    first.start()
    api.wait_for(lambda: api._poll_generation == 1)
    assert raw_call(api, f"/bot{api.token}/getUpdates?timeout=0")[0] == 200
    first.join(5)
    [(status, body)] = results
    assert status == 409
    assert body["description"].startswith("Conflict: terminated by other getUpdates request")


async def test_channel_posts_and_edits_arrive_as_such(api: FakeBotAPI, bot: Bot) -> None:
    api.user_sends(-1009876543210, "release notes", kind="channel_post")
    sent = api.user_sends(GROUP, "/status", user_id=7)
    api.user_sends(GROUP, "/status web", kind="edited_message", message_id=sent, user_id=7)
    post, message, edit = await bot.get_updates(timeout=0)
    assert post.channel_post is not None and post.channel_post.chat.type == "channel"
    assert post.channel_post.sender_chat is not None and post.message is None
    assert message.message is not None and message.message.chat.type == "supergroup"
    assert edit.edited_message is not None
    assert edit.edited_message.message_id == sent
    assert edit.edited_message.text == "/status web"
    assert edit.edited_message.edit_date is not None
    assert api.chat(GROUP)[0].edits == 1


async def test_a_forwarded_message_carries_its_origin(api: FakeBotAPI, bot: Bot) -> None:
    api.user_sends(CHAT, "look", forward_from=99)
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.forward_origin is not None
    assert update.message.forward_origin.sender_user.id == 99  # type: ignore[attr-defined]


# --- sending and its errors -------------------------------------------------------------------


async def test_send_edit_delete_are_what_the_person_sees(api: FakeBotAPI, bot: Bot) -> None:
    sent = await bot.send_message(
        CHAT, "<b>build</b> #1 &lt;ok&gt; 🚀", parse_mode=ParseMode.HTML, reply_markup=keyboard("a")
    )
    assert sent.text == "build #1 <ok> 🚀"
    assert sent.text_html == "<b>build</b> #1 &lt;ok&gt; 🚀"
    second = await bot.send_message(CHAT, "second")
    assert second.message_id == sent.message_id + 1

    await bot.edit_message_text("<i>done</i>", CHAT, sent.message_id, parse_mode="HTML")
    await bot.delete_message(CHAT, second.message_id)
    first, gone = api.chat(CHAT)
    assert (first.text, first.html, first.edits, first.reply_markup) == (
        "done",
        "<i>done</i>",
        1,
        None,  # an edit without reply_markup drops the keyboard, as on Telegram
    )
    assert gone.deleted and gone.from_bot
    assert api.bot_messages(CHAT) == [first, gone]


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("x" * 4097, {}, "Message is too long"),
        ("<b>" + "x" * 4096 + "</b>", {"parse_mode": "HTML"}, None),  # counted after parsing
        ("   ", {}, "Message text is empty"),
        ("<b></b>", {"parse_mode": "HTML"}, "Message text is empty"),
        (
            "load < 5",
            {"parse_mode": "HTML"},
            'Can\'t parse entities: unsupported start tag "" at byte offset 5',
        ),
        (
            "ok <br> done",
            {"parse_mode": "HTML"},
            'Can\'t parse entities: unsupported start tag "br" at byte offset 3',
        ),
        (
            "<b>bold",
            {"parse_mode": "HTML"},
            "Can't parse entities: can't find end tag corresponding to start tag \"b\"",
        ),
        (
            "<b><i>x</b></i>",
            {"parse_mode": "HTML"},
            "Can't parse entities: unmatched end tag at byte offset 7, "
            'expected "</i>", found "</b>"',
        ),
        ("x</b>", {"parse_mode": "HTML"}, "Can't parse entities: unexpected end tag"),
        (
            "ok",
            {"reply_markup": keyboard("é" * 33)},  # 66 bytes
            "Button_data_invalid",
        ),
        (
            "ok",
            {
                "reply_markup": InlineKeyboardMarkup(
                    [[b] for b in keyboard(*ROWS).inline_keyboard[0]]
                )
            },
            "Reply markup is too long",
        ),
        ("ok", {"reply_markup": keyboard(*ROWS[:100])}, None),  # 100 buttons are taken
        (
            "ok",
            {"reply_markup": InlineKeyboardMarkup([[InlineKeyboardButton("plain")]])},
            "Text buttons are unallowed in the inline keyboard",
        ),
        (
            "ok",
            {
                "reply_markup": InlineKeyboardMarkup(
                    [[InlineKeyboardButton("open", url="http://localhost:8000/x")]]
                )
            },
            "Wrong HTTP URL",
        ),
    ],
)
async def test_send_message_rejects_what_telegram_rejects(
    bot: Bot, text: str, kwargs: dict[str, Any], message: str | None
) -> None:
    if message is None:
        await bot.send_message(CHAT, text, **kwargs)
        return
    with pytest.raises(BadRequest) as caught:
        await bot.send_message(CHAT, text, **kwargs)
    assert message.lower() in caught.value.message.lower()


async def test_edit_errors(api: FakeBotAPI, bot: Bot) -> None:
    sent = await bot.send_message(
        CHAT, "<b>same</b>", parse_mode="HTML", reply_markup=keyboard("a")
    )
    with pytest.raises(BadRequest, match="Message is not modified: specified new message"):
        await bot.edit_message_text(
            "<strong>same</strong>",
            CHAT,
            sent.message_id,
            parse_mode="HTML",
            reply_markup=keyboard("a"),
        )
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=keyboard("a"))
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", CHAT, 999)
    with pytest.raises(BadRequest, match="Message_too_long"):
        await bot.edit_message_text("x" * 4097, CHAT, sent.message_id)
    user_message = api.user_sends(CHAT, "hi")
    with pytest.raises(BadRequest, match="Message can't be edited"):
        await bot.edit_message_text("x", CHAT, user_message)
    await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=keyboard("b"))
    assert api.chat(CHAT)[0].reply_markup == keyboard("b").to_dict()

    assert await bot.delete_message(CHAT, sent.message_id) is True
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(CHAT, sent.message_id)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", CHAT, sent.message_id)


async def test_reply_to_a_missing_message(bot: Bot) -> None:
    with pytest.raises(BadRequest, match="Message to be replied not found"):
        await bot.send_message(CHAT, "re", reply_to_message_id=77)


async def test_blocked_user_is_forbidden(api: FakeBotAPI, bot: Bot) -> None:
    api.user_blocks(CHAT)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "hello?")


# --- faults -----------------------------------------------------------------------------------


async def test_rate_limit_raises_retry_after_then_passes(api: FakeBotAPI, bot: Bot) -> None:
    api.rate_limit(CHAT, retry_after=3, times=2)
    for _ in range(2):
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(CHAT, "flood")
        assert caught.value.retry_after == dtm.timedelta(seconds=3)
    await bot.send_message(CHAT, "calm")
    assert [m.text for m in api.chat(CHAT)] == ["calm"]
    assert [c.status for c in api.calls("sendMessage")] == [429, 429, 200]
    assert api.calls("sendMessage")[0].response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }


async def test_per_chat_burst_limit() -> None:
    with FakeBotAPI(per_chat_limit=3) as api:
        async with make_bot(api) as bot:
            for i in range(3):
                await bot.send_message(CHAT, f"m{i}")
            with pytest.raises(RetryAfter):
                await bot.send_message(CHAT, "m3")
            await bot.send_message(CHAT + 1, "other chat is fine")


async def test_flood_control_like_telegram() -> None:
    # a burst of 5 in one chat, then about one a second; other chats have their own budget,
    # and all chats together have a budget (here 8, then one a second)
    flood = Flood(chat_burst=5, chat_rate=1.0, total_burst=8, total_rate=1.0)
    with FakeBotAPI(flood=flood) as api:
        async with make_bot(api) as bot:
            sent = [await bot.send_message(CHAT, f"m{i}") for i in range(5)]
            with pytest.raises(RetryAfter):
                await bot.send_message(CHAT, "m5")
            with pytest.raises(RetryAfter):  # an edit counts as a message
                await bot.edit_message_text("edited", CHAT, sent[0].message_id)
            for i in range(3):
                await bot.send_message(CHAT + 1 + i, "other chats are fine")
            with pytest.raises(RetryAfter):  # but not over the bot's total
                await bot.send_message(CHAT + 10, "one too many in all")
            await asyncio.sleep(1.1)
            await bot.send_message(CHAT, "a second later")
    assert [c.status for c in api.calls("sendMessage")].count(429) == 2


async def test_outage_is_a_network_error_and_recovers(api: FakeBotAPI, bot: Bot) -> None:
    api.go_down()
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(CHAT, "down")
    api.come_back()
    await bot.send_message(CHAT, "up")
    assert [m.text for m in api.chat(CHAT)] == ["up"]


async def test_wrong_token_and_unknown_method(api: FakeBotAPI) -> None:
    async with make_bot(api) as bot:
        # PTB turns the 404 of an unknown method into EndPointNotFound
        with pytest.raises(EndPointNotFound, match="sendPigeon"):
            await bot.do_api_request("sendPigeon", api_kwargs={"chat_id": CHAT})
    with pytest.raises(InvalidToken, match="Unauthorized"):
        await make_bot(api, "123456:WRONG").get_me()
    assert raw_call(api, "/bot123456:WRONG/getMe") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )


def test_method_names_are_case_insensitive_over_get_and_json(api: FakeBotAPI) -> None:
    assert raw_call(api, f"/bot{api.token}/GETME")[1]["result"]["username"] == "cp_test_bot"
    status, body = raw_call(api, f"/bot{api.token}/sendmessage", {"chat_id": CHAT, "text": "hi"})
    assert (status, body["result"]["text"]) == (200, "hi")
    assert api.calls("sendMessage")[0].params == {"chat_id": CHAT, "text": "hi"}
    status, body = raw_call(api, f"/bot{api.token}/sendMessage?chat_id={CHAT}&text=")
    assert (status, body["description"]) == (400, "Bad Request: message text is empty")


# --- callbacks, documents, commands -----------------------------------------------------------


async def test_answer_callback_query_rules(api: FakeBotAPI, bot: Bot) -> None:
    sent = await bot.send_message(CHAT, "pick", reply_markup=keyboard("a", "b"))
    query = api.user_presses(CHAT, sent.message_id, "b")
    [update] = await bot.get_updates()
    assert update.callback_query is not None
    assert update.callback_query.data == "b"
    assert update.callback_query.message is not None
    assert update.callback_query.message.message_id == sent.message_id
    with pytest.raises(BadRequest, match="Message_too_long"):
        await bot.answer_callback_query(query, "x" * 201)
    await bot.answer_callback_query(query, "ok", show_alert=True)
    answer = api.answer_of(query)
    assert answer is not None and answer["text"] == "ok" and answer["show_alert"] is True
    assert answer["answered_at"] >= answer["pressed_at"]
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query)
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query("nope")
    with pytest.raises(ValueError, match="no button 'c'"):
        api.user_presses(CHAT, sent.message_id, "c")
    forged = api.user_presses(CHAT, sent.message_id, "rm|all", user_id=666, forged=True)
    [update] = await bot.get_updates(offset=update.update_id + 1)
    assert update.callback_query is not None and update.callback_query.id == forged
    assert update.callback_query.from_user.id == 666


async def test_late_callback_answer_is_too_old() -> None:
    with FakeBotAPI(callback_timeout=0.1) as api:
        async with make_bot(api) as bot:
            sent = await bot.send_message(CHAT, "pick", reply_markup=keyboard("a"))
            query = api.user_presses(CHAT, sent.message_id, "a")
            await asyncio.sleep(0.2)
            with pytest.raises(BadRequest, match="Query is too old"):
                await bot.answer_callback_query(query)


async def test_documents_both_ways(api: FakeBotAPI, bot: Bot) -> None:
    log = b"line 1\nline 2\n" * 100
    sent = await bot.send_document(
        CHAT, log, filename="build.log", caption="<b>log</b>", parse_mode="HTML"
    )
    assert sent.document is not None and sent.document.file_name == "build.log"
    assert sent.caption == "log"
    [msg] = api.chat(CHAT)
    assert msg.document == ("build.log", log) and msg.html == "<b>log</b>"
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_document(CHAT, log, filename="x.log", caption="x" * 1025)

    api.user_sends_document(CHAT, "requirements.txt", b"ptb==22\n", caption="deps")
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.document is not None
    assert update.message.caption == "deps"
    file = await update.message.document.get_file()
    assert bytes(await file.download_as_bytearray()) == b"ptb==22\n"


async def test_commands_per_scope_and_language(api: FakeBotAPI, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("deploy", "Deploy a project")])
    await bot.set_my_commands(
        [BotCommand("status", "Статус")], scope=BotCommandScopeChat(CHAT), language_code="ru"
    )
    assert [c.command for c in await bot.get_my_commands()] == ["deploy"]
    ru = await bot.get_my_commands(scope=BotCommandScopeChat(CHAT), language_code="ru")
    assert [c.command for c in ru] == ["status"]
    assert api.commands[("default", "")] == [
        {"command": "deploy", "description": "Deploy a project"}
    ]
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Deploy", "capitals are not allowed")])
    await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()


async def test_chat_action(bot: Bot) -> None:
    assert await bot.send_chat_action(CHAT, "typing") is True
    with pytest.raises(BadRequest, match="Wrong parameter action"):
        await bot.send_chat_action(CHAT, "dancing")


# --- an application polling ---------------------------------------------------------------------


async def test_application_handles_a_command_and_a_button(api: FakeBotAPI) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Offer a deploy button."""
        assert update.effective_message is not None
        await update.effective_message.reply_text(
            "<b>Deploy web?</b>", parse_mode="HTML", reply_markup=keyboard("deploy:web")
        )

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer the press, then edit the message."""
        query = update.callback_query
        assert query is not None
        await query.answer("Deploying…")
        await query.edit_message_text(f"Deploying {query.data}")

    app = (
        ApplicationBuilder()
        .token(api.token)
        .base_url(f"{api.url}/bot")
        .base_file_url(f"{api.url}/file/bot")
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed, pattern="^deploy:"))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            api.user_sends(CHAT, "/start")
            await api.until(lambda: len(api.bot_messages(CHAT)) == 1)
            offer = api.bot_messages(CHAT)[0]
            assert offer.text == "Deploy web?" and offer.parse_mode == "HTML"
            query = api.user_presses(CHAT, offer.message_id, "deploy:web")
            await api.until(lambda: api.bot_messages(CHAT)[0].edits == 1)
        finally:
            await app.updater.stop()
            await app.stop()
    answer = api.answer_of(query)
    assert answer is not None and answer["text"] == "Deploying…"
    assert api.bot_messages(CHAT)[0].text == "Deploying deploy:web"
    assert api.pending_updates() == []  # the updater confirmed what it handled


# --- the HTML parser alone --------------------------------------------------------------------


def test_html_entities_use_utf16_offsets() -> None:
    text, entities = parse_html('🚀 <b>a<i>b</i></b> <a href="https://x.io/?a=1&amp;b=2">l</a>')
    assert text == "🚀 ab l"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 2},
        {"type": "italic", "offset": 4, "length": 1},
        {"type": "text_link", "offset": 6, "length": 1, "url": "https://x.io/?a=1&b=2"},
    ]


def test_html_pre_language_spoilers_and_numeric_entities() -> None:
    text, entities = parse_html(
        '<pre><code class="language-python">x = 1</code></pre>'
        '<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>&#65;&#x42;&quot;'
    )
    assert text == 'x = 1stAB"'
    assert [e["type"] for e in entities] == ["pre", "spoiler", "spoiler"]
    assert entities[0]["language"] == "python"
    with pytest.raises(Exception, match='Tag "span" must have class "tg-spoiler"'):
        parse_html("<span>x</span>")
    with pytest.raises(Exception, match="Unclosed start tag at byte offset 0"):
        parse_html('<a href="x"')


def test_unsupported_tag_offset_counts_utf8_bytes() -> None:
    with pytest.raises(Exception, match='Unsupported start tag "div" at byte offset 6'):
        parse_html("ééx <div>")  # é is two bytes: 2 + 2 + 1 + 1
    assert parse_html("a &foo; b") == ("a &foo; b", [])  # unknown entities stay literal


def test_wait_for_dumps_the_chat_on_timeout(api: FakeBotAPI) -> None:
    api.user_sends(CHAT, "hello there")
    with pytest.raises(AssertionError, match="hello there"):
        api.wait_for(lambda: False, timeout=0.05)


async def test_conflict_class_is_raised_by_ptb(api: FakeBotAPI, bot: Bot) -> None:
    waiting = asyncio.create_task(bot.get_updates(timeout=10))
    await api.until(lambda: api._poll_generation >= 1)
    async with make_bot(api) as other:
        await other.get_updates(timeout=0)
    with pytest.raises(Conflict):
        await waiting
