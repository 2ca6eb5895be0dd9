"""A local Telegram Bot API server for tests: the real PTB HTTP client talks to it over loopback.

It keeps chats, messages, callback queries and the update queue the way Telegram does, and
answers with Telegram's envelopes and error texts where bots usually break: HTML that does not
parse, texts that are too long or empty, callback data over 64 bytes, keyboards of more than 100
buttons ("reply markup is too long"), toasts over 200 characters, edits that change nothing,
answering a callback twice, flood control (429 with `retry_after`: on demand, or as Telegram
limits a bot with `Flood`), a wrong token (401), an unknown method (404) and outages (502 from
the front proxy, as Telegram's nginx answers).

A test plays the person in the chat (`user_sends`, `user_presses`, ...) and looks at what the
person would see (`chat`, `bot_messages`, `answer_of`), or at every call (`requests`).
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import itertools
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

Json = dict[str, Any]

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_ANSWER_TEXT = 200
MAX_BUTTONS = 100  # an inline keyboard's buttons, all rows together
MAX_POLL_TIMEOUT = 50.0
UPDATE_TYPES = ("message", "edited_message", "channel_post", "callback_query")
DEFAULT_ALLOWED = frozenset(UPDATE_TYPES)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are"
    " exactly the same as a current content and reply markup of the message"
)
# fmt: off
CHAT_ACTIONS = frozenset((
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
))
BUTTON_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)
# fmt: on
OUTAGE_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class ApiError(Exception):
    """An error answer: HTTP status, Telegram's description, optional response parameters."""

    def __init__(self, code: int, description: str, parameters: Json | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class Msg:
    """One message as the person sees it; `html` is the text exactly as the bot sent it."""

    message_id: int
    from_bot: bool
    text: str
    html: str
    parse_mode: str | None = None
    reply_markup: Json | None = None
    deleted: bool = False
    edits: int = 0
    document: tuple[str, bytes] | None = None
    entities: list[Json] = field(default_factory=list)
    user_id: int | None = None
    date: int = 0
    edit_date: int | None = None
    file_id: str | None = None


@dataclass
class Call:
    """One HTTP call to the API: canonical method name, decoded params, and what it got."""

    method: str
    params: Json
    at: float
    status: int = 0
    response: Json | None = None


@dataclass
class _Chat:
    id: int
    type: str
    messages: dict[int, Msg] = field(default_factory=dict)
    next_id: int = 1
    blocked: bool = False

    def as_json(self) -> Json:
        if self.type == "private":
            return {"id": self.id, "first_name": "Ada", "type": "private"}
        return {"id": self.id, "title": f"Chat {self.id}", "type": self.type}


@dataclass
class _Query:
    chat_id: int
    message_id: int
    data: str
    pressed_at: float
    answer: Json | None = None


# --- HTML parse mode --------------------------------------------------------------------------

_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_ENTITY = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|(lt|gt|amp|quot));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_START = re.compile(r"<([^\s>]*)")
_ATTR = re.compile(r"""\s*([^\s=>]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?""")
_END = re.compile(r"</([^\s>]*)\s*(>?)")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _offset(html: str, pos: int) -> int:
    return len(html[:pos].encode())


def _unescape(value: str) -> str:
    return _ENTITY.sub(_decode_entity, value)


def _decode_entity(m: re.Match[str]) -> str:
    if m.group(3):
        return _NAMED[m.group(3)]
    code = int(m.group(1)) if m.group(1) else int(m.group(2), 16)
    return chr(code) if 0 < code <= 0x10FFFF else m.group(0)


def _start_tag(html: str, pos: int) -> tuple[str, dict[str, str], int]:
    """Parse `<tag attr="v">` at `pos`: (tag, attributes, position after `>`)."""
    m = _START.match(html, pos)
    assert m is not None
    tag, i = m.group(1).lower(), m.end()
    if i >= len(html):
        raise bad(f"can't parse entities: Unclosed start tag at byte offset {_offset(html, pos)}")
    if tag not in _HTML_TAGS:
        raise bad(
            f'can\'t parse entities: Unsupported start tag "{tag}" at byte offset '
            f"{_offset(html, pos)}"
        )
    attrs: dict[str, str] = {}
    while html[i] != ">":
        a = _ATTR.match(html, i)
        if a is None or a.end() >= len(html):
            raise bad(
                f"can't parse entities: Unclosed start tag at byte offset {_offset(html, pos)}"
            )
        value = a.group(2) or ""
        if value[:1] in "\"'" and value:
            value = value[1:-1]
        attrs[a.group(1).lower()] = _unescape(value)
        i = a.end()
        while i < len(html) and html[i].isspace():
            i += 1
        if i >= len(html):
            raise bad(
                f"can't parse entities: Unclosed start tag at byte offset {_offset(html, pos)}"
            )
    if tag == "span" and attrs.get("class") != "tg-spoiler":
        raise bad(
            'can\'t parse entities: Tag "span" must have class "tg-spoiler" at byte offset '
            f"{_offset(html, pos)}"
        )
    return tag, attrs, i + 1


def _entity(tag: str, attrs: dict[str, str], start: int, length: int) -> Json | None:
    kind = _HTML_TAGS[tag]
    entity: Json = {"type": kind, "offset": start, "length": length}
    if kind == "text_link":
        if not attrs.get("href"):
            return None
        entity["url"] = attrs["href"]
    if kind == "pre" and attrs.get("language"):
        entity["language"] = attrs["language"]
    if kind == "custom_emoji":
        entity["custom_emoji_id"] = attrs.get("emoji-id", "")
    if kind == "blockquote" and "expandable" in attrs:
        entity["type"] = "expandable_blockquote"
    return entity


def parse_html(html: str) -> tuple[str, list[Json]]:
    """Telegram's HTML parse mode: the plain text and its entities (UTF-16 offsets).

    Raises ApiError with Telegram's wording ("can't parse entities: ...") on what Telegram
    rejects; byte offsets are UTF-8 offsets into `html`, as Telegram reports them.
    """
    out: list[str] = []
    pos16 = 0
    stack: list[tuple[str, dict[str, str], int, int]] = []  # tag, attrs, start, byte offset
    entities: list[Json] = []
    i = 0
    while i < len(html):
        c = html[i]
        if c == "&" and (m := _ENTITY.match(html, i)):
            piece, i = _decode_entity(m), m.end()
        elif c != "<":
            piece, i = c, i + 1
        elif html.startswith("</", i):
            end = _END.match(html, i)
            assert end is not None
            at = _offset(html, i)
            if not stack:
                raise bad(f"can't parse entities: Unexpected end tag at byte offset {at}")
            if not end.group(2):
                raise bad(f"can't parse entities: Unclosed end tag at byte offset {at}")
            name, open_tag = end.group(1).lower(), stack[-1][0]
            if name != open_tag:
                raise bad(
                    f"can't parse entities: Unmatched end tag at byte offset {at}, expected "
                    f'"</{open_tag}>", found "</{name}>"'
                )
            tag, attrs, start, _ = stack.pop()
            language = attrs.get("class", "").removeprefix("language-")
            if tag == "code" and stack and stack[-1][0] == "pre" and "class" in attrs:
                stack[-1][1]["language"] = language
            elif pos16 > start and (entity := _entity(tag, attrs, start, pos16 - start)):
                entities.append(entity)
            i = end.end()
            continue
        else:
            tag, attrs, after = _start_tag(html, i)
            stack.append((tag, attrs, pos16, _offset(html, i)))
            i = after
            continue
        out.append(piece)
        pos16 += utf16_len(piece)
    if stack:
        raise bad(
            "can't parse entities: Can't find end tag corresponding to start tag "
            + f'"{stack[-1][0]}"'
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


# --- parameters -------------------------------------------------------------------------------


def _int(params: Json, name: str, missing: str | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        if missing is not None:
            raise bad(missing)
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad(f"invalid {name} specified") from None


def _json_field(params: Json, name: str, error: str) -> Any:
    value = params.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise bad(error) from None
    return value


def _truthy(params: Json, name: str) -> bool:
    value = params.get(name)
    return value in (True, "true", "True", "1", 1)


def check_markup(params: Json) -> Json | None:
    """The reply_markup parameter, validated as Telegram does for inline keyboards."""
    markup = _json_field(params, "reply_markup", "can't parse reply keyboard markup JSON object")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    rows = markup.get("inline_keyboard")
    if rows is None:
        return markup
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
    buttons = list(itertools.chain.from_iterable(rows))
    if len(buttons) > MAX_BUTTONS:  # what Telegram answers for a keyboard of 101 buttons
        raise bad("reply markup is too long")
    for button in buttons:
        _check_button(button)
    return markup


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad('can\'t parse inline keyboard button: Field "text" must be of type String')
    actions = [a for a in BUTTON_ACTIONS if a in button]
    if not actions:
        raise bad(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    data = button.get("callback_data")
    if "callback_data" in button and (
        not isinstance(data, str) or not 1 <= len(data.encode()) <= 64
    ):
        raise bad("BUTTON_DATA_INVALID")
    url = button.get("url")
    if "url" in button:
        parts = urlsplit(str(url))
        local = parts.hostname in (None, "localhost") or parts.hostname.startswith("127.")
        if parts.scheme not in ("http", "https", "tg") or (parts.scheme != "tg" and local):
            raise bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
    if not button["text"].strip():
        raise bad("BUTTON_TEXT_INVALID")


def _bot_commands(text: str) -> list[Json]:
    entities = []
    for m in re.finditer(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]+)?", text):
        start = utf16_len(text[: m.start()])
        entities.append({"type": "bot_command", "offset": start, "length": utf16_len(m.group())})
    return entities


def parse_body(ctype: str, body: bytes, query: str) -> Json:
    """Request parameters from the query string and a JSON, urlencoded or multipart body."""
    params: Json = dict(parse_qsl(query, keep_blank_values=True))
    mime = ctype.split(";")[0].strip().lower()
    if mime == "application/json" and body:
        try:
            decoded = json.loads(body)
        except ValueError:
            raise bad("can't parse JSON object") from None
        if isinstance(decoded, dict):
            params.update(decoded)
    elif mime == "application/x-www-form-urlencoded":
        params.update(parse_qsl(body.decode(), keep_blank_values=True))
    elif mime == "multipart/form-data":
        head = f"Content-Type: {ctype}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in message.iter_parts():
            name = str(part.get_param("name", header="content-disposition"))
            payload = part.get_payload(decode=True)
            content = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            params[name] = (filename, content) if filename else content.decode()
    return params


# --- the server -------------------------------------------------------------------------------


@dataclass
class Flood:
    """Telegram's flood control for one bot, as token buckets: about 30 messages a second in
    all, about one a second in one chat with short bursts allowed (Telegram's guidance for
    bots). A send or an edit over either gets 429 with `retry_after`; answers to button
    presses, deletes and chat actions are not counted."""

    total_rate: float = 30.0
    total_burst: float = 30.0
    chat_rate: float = 1.0
    chat_burst: float = 10.0


@dataclass
class _Bucket:
    rate: float
    burst: float
    tokens: float = -1.0
    at: float = 0.0

    def wait(self, now: float) -> float:
        """0 when a token is there (not taken yet), else the seconds until there is one."""
        if self.tokens < 0:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class _BurstServer(ThreadingHTTPServer):
    """A listen backlog for bursts of presses (the default 5 resets connections)."""

    request_queue_size = 128


class FakeBotAPI:
    """Telegram's Bot API on 127.0.0.1 for one bot; see the module docstring."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        bot_username: str = "cp_test_bot",
        per_chat_limit: int | None = None,
        flood: Flood | None = None,
        callback_timeout: float = 15.0,
    ) -> None:
        self.token = token
        self.bot_username = bot_username
        self.bot_id = int(token.split(":")[0])
        self.per_chat_limit = per_chat_limit
        self.flood = flood
        self._buckets: dict[int | None, _Bucket] = {}  # None: the bot's total
        self.callback_timeout = callback_timeout
        self.url = ""
        self.requests: list[Call] = []
        self.commands: dict[tuple[str, str], list[Json]] = {}
        self._cond = threading.Condition()
        self._chats: dict[int, _Chat] = {}
        self._updates: list[Json] = []
        self._next_update = 100_000_001
        self._allowed: frozenset[str] = DEFAULT_ALLOWED
        self._queries: dict[str, _Query] = {}
        self._files: dict[str, tuple[str, bytes]] = {}
        self._limits: dict[int, list[int]] = {}  # chat -> [retry_after, times left]
        self._sends: dict[int, list[float]] = {}
        self._poll_generation = 0
        self._revoked_at: int | None = None  # the poll generation when the token was revoked
        self._down = False
        self._drops: dict[str, list[Any]] = {}  # method (lower case) -> [times left, handled]
        self.dropped: list[str] = []
        self._stopping = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self, port: int = 0) -> str:
        """Listen on `port` (0: any free one); a test that starts its bot against a port
        nobody listens on yet starts the server there later: Telegram unreachable, then back."""
        server = _BurstServer(("127.0.0.1", port), _Handler)
        server.daemon_threads = True
        server.api = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        return self.url

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeBotAPI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # faults

    def go_down(self) -> None:
        """Every request, waiting long polls included, gets 502 Bad Gateway (an nginx page)."""
        with self._cond:
            self._down = True
            self._cond.notify_all()

    def come_back(self) -> None:
        with self._cond:
            self._down = False

    def rate_limit(self, chat_id: int, retry_after: int = 1, times: int = 1) -> None:
        """The next `times` sends or edits to `chat_id` get 429 with `retry_after`."""
        with self._cond:
            self._limits[chat_id] = [retry_after, times]

    def revoke_token(self, new_token: str) -> None:
        """Telegram stops accepting the bot's token (revoked in BotFather): every call from
        now on, the long poll waiting now included, gets 401 Unauthorized."""
        with self._cond:
            self.token = new_token
            self._revoked_at = self._poll_generation
            self._cond.notify_all()

    def drop_connection(self, method: str, *, times: int = 1, handled: bool = True) -> None:
        """The next `times` calls of `method` (e.g. "answerCallbackQuery") lose their
        connection: closed with no answer, after the call took effect (`handled`, the answer
        lost on its way back) or before it reached the server."""
        with self._cond:
            self._drops[method.lower()] = [times, handled]

    def take_drop(self, method_path: str) -> bool | None:
        """Whether this call's connection is to be dropped: None (no), True (after it is
        handled) or False (before)."""
        name = method_path.rstrip("/").rsplit("/", 1)[-1].lower()
        with self._cond:
            drop = self._drops.get(name)
            if not drop or drop[0] <= 0:
                return None
            drop[0] -= 1
            self.dropped.append(name)
            return bool(drop[1])

    def user_blocks(self, chat_id: int) -> None:
        """The person blocks the bot: sends to the chat get 403 Forbidden."""
        with self._cond:
            self._chat(chat_id).blocked = True

    # the person

    def user_sends(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        first_name: str = "Ada",
        language_code: str = "en",
        kind: str = "message",
        forward_from: int | None = None,
        message_id: int | None = None,
    ) -> int:
        """A person sends (or edits, or posts in a channel) a text; returns its message_id."""
        if kind not in ("message", "edited_message", "channel_post"):
            raise ValueError(f"kind {kind!r} is not message, edited_message or channel_post")
        with self._cond:
            chat = self._chat(chat_id, "channel" if kind == "channel_post" else None)
            user = self._user(chat_id, user_id, first_name, language_code)
            entities = _bot_commands(text)
            if kind == "edited_message":
                msg = self._user_message(chat, message_id)
                msg.text = msg.html = text
                msg.entities, msg.edits, msg.edit_date = entities, msg.edits + 1, int(time.time())
            else:
                msg = self._add(chat, Msg(0, False, text, text, entities=entities))
                msg.user_id = None if kind == "channel_post" else user["id"]
            payload = self._message_json(chat, msg, user)
            if forward_from is not None:
                origin = {"id": forward_from, "is_bot": False, "first_name": "Forwarded"}
                payload["forward_origin"] = {
                    "type": "user",
                    "date": msg.date,
                    "sender_user": origin,
                }
            self._push(kind, payload)
            return msg.message_id

    def user_sends_document(
        self,
        chat_id: int,
        filename: str,
        content: bytes,
        caption: str = "",
        *,
        user_id: int | None = None,
    ) -> int:
        """A person sends a file; returns its message_id (its file can be fetched by getFile)."""
        with self._cond:
            chat = self._chat(chat_id)
            sender = self._user(chat_id, user_id, "Ada", "en")
            msg = self._add(chat, Msg(0, False, caption, caption, document=(filename, content)))
            msg.user_id = sender["id"]
            msg.file_id = self._store_file(filename, content)
            self._push("message", self._message_json(chat, msg, sender))
            return msg.message_id

    def user_presses(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int | None = None,
        forged: bool = False,
    ) -> str:
        """A person presses the inline button carrying `data`; returns the callback query id.

        Pressing a button the message does not have is a mistake in the test (ValueError),
        unless `forged`: a modified client sending made-up callback data.
        """
        with self._cond:
            chat = self._chat(chat_id)
            msg = chat.messages.get(message_id)
            if msg is None or msg.deleted or not msg.from_bot:
                raise ValueError(f"no bot message {message_id} in chat {chat_id} to press on")
            rows = (msg.reply_markup or {}).get("inline_keyboard", [])
            datas = [b.get("callback_data") for b in itertools.chain.from_iterable(rows)]
            if data not in datas and not forged:
                raise ValueError(f"message {message_id} has no button {data!r}; it has {datas}")
            query_id = str(4_000_000_000_000 + len(self._queries) + 1)
            self._queries[query_id] = _Query(chat_id, message_id, data, time.monotonic())
            self._push(
                "callback_query",
                {
                    "id": query_id,
                    "from": self._user(chat_id, user_id, "Ada", "en"),
                    "message": self._message_json(chat, msg, None),
                    "chat_instance": str(abs(chat_id) * 7919),
                    "data": data,
                },
            )
            return query_id

    # what the person sees

    def chat(self, chat_id: int) -> list[Msg]:
        with self._cond:
            chat = self._chats.get(chat_id)
            return [replace(m) for m in chat.messages.values()] if chat else []

    def bot_messages(self, chat_id: int) -> list[Msg]:
        return [m for m in self.chat(chat_id) if m.from_bot]

    def answer_of(self, callback_id: str) -> Json | None:
        with self._cond:
            query = self._queries.get(callback_id)
            if query is None or query.answer is None:
                return None
            return {**query.answer, "pressed_at": query.pressed_at}

    def pending_updates(self) -> list[Json]:
        """Updates not yet confirmed by an offset."""
        with self._cond:
            return list(self._updates)

    def calls(self, method: str) -> list[Call]:
        return [c for c in list(self.requests) if c.method.lower() == method.lower()]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in {timeout} s\n{self.dump()}")
            time.sleep(0.01)

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """wait_for for async tests: sleeps on the event loop, so the bot keeps running."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in {timeout} s\n{self.dump()}")
            await asyncio.sleep(0.01)

    def dump(self) -> str:
        lines = []
        with self._cond:
            for chat in self._chats.values():
                lines.append(f"chat {chat.id} ({chat.type}):")
                for m in chat.messages.values():
                    who = "bot" if m.from_bot else "user"
                    flags = (" [deleted]" if m.deleted else "") + (
                        f" [edited x{m.edits}]" if m.edits else ""
                    )
                    keys = f" buttons={m.reply_markup}" if m.reply_markup else ""
                    lines.append(f"  #{m.message_id} {who}{flags}: {m.html!r}{keys}")
        lines.append("last calls:")
        lines += [f"  {c.method} {c.status} {c.params}" for c in self.requests[-10:]]
        return "\n".join(lines)

    # internals (under self._cond)

    def _chat(self, chat_id: int, kind: str | None = None) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            if kind is None:
                kind = "private" if chat_id > 0 else "group"
                kind = "supergroup" if chat_id <= -1_000_000_000_000 else kind
            if kind == "channel" and chat_id > -1_000_000_000_000:
                raise ValueError(f"channel id {chat_id} must look like -100xxxxxxxxxx")
            chat = self._chats[chat_id] = _Chat(chat_id, kind)
        return chat

    def _user(self, chat_id: int, user_id: int | None, first_name: str, lang: str) -> Json:
        uid = user_id if user_id is not None else (chat_id if chat_id > 0 else 1001)
        return {"id": uid, "is_bot": False, "first_name": first_name, "language_code": lang}

    def _bot_user(self) -> Json:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Controlplane Test",
            "username": self.bot_username,
        }

    def _add(self, chat: _Chat, msg: Msg) -> Msg:
        msg.message_id, msg.date = chat.next_id, int(time.time())
        chat.next_id += 1
        chat.messages[msg.message_id] = msg
        return msg

    def _user_message(self, chat: _Chat, message_id: int | None) -> Msg:
        msg = chat.messages.get(message_id or 0)
        if msg is None or msg.from_bot:
            raise ValueError(f"no user message {message_id} in chat {chat.id} to edit")
        return msg

    def _message_json(self, chat: _Chat, msg: Msg, user: Json | None) -> Json:
        out: Json = {"message_id": msg.message_id, "date": msg.date, "chat": chat.as_json()}
        if chat.type == "channel":
            out["sender_chat"] = chat.as_json()
        elif msg.from_bot:
            out["from"] = self._bot_user()
        else:
            out["from"] = user or self._user(chat.id, msg.user_id, "Ada", "en")
        if msg.edit_date:
            out["edit_date"] = msg.edit_date
        if msg.document:
            name, content = msg.document
            out["document"] = {
                "file_id": msg.file_id,
                "file_unique_id": f"u{msg.file_id}",
                "file_name": name,
                "file_size": len(content),
            }
        key = "caption" if msg.document else "text"
        if msg.text:
            out[key] = msg.text
        if msg.entities:
            out[f"{key}_entities" if msg.document else "entities"] = msg.entities
        if msg.reply_markup is not None:
            out["reply_markup"] = msg.reply_markup
        return out

    def _push(self, kind: str, payload: Json) -> None:
        # allowed_updates filters when an update is made, so a changed filter leaves queued ones
        if kind in self._allowed:
            self._updates.append({"update_id": self._next_update, kind: payload})
            self._next_update += 1
            self._cond.notify_all()

    def _store_file(self, filename: str, content: bytes) -> str:
        file_id = f"BQACAgIAAx0C{len(self._files) + 1:06d}"
        self._files[file_id] = (filename, content)
        return file_id

    # request handling

    def handle(self, method_path: str, params: Json) -> tuple[int, Json | bytes]:
        """Answer one call: (HTTP status, JSON envelope, or raw bytes for a file download)."""
        call = Call(method_path.rstrip("/").rsplit("/", 1)[-1], params, time.monotonic())
        try:
            status, body = self._dispatch(call, method_path, params)
        except ApiError as e:
            status, body = e.code, {"ok": False, "error_code": e.code, "description": e.description}
            if e.code == 502:
                body = OUTAGE_PAGE
            elif e.parameters:
                body["parameters"] = e.parameters
        call.status = status
        call.response = body if isinstance(body, dict) else None
        if not method_path.startswith("/file/"):
            self.requests.append(call)

        return status, body

    def _dispatch(self, call: Call, path: str, params: Json) -> tuple[int, Json | bytes]:
        if self._down:
            return 502, OUTAGE_PAGE
        if path.startswith("/file/"):
            return self._download(path)
        m = re.fullmatch(r"/bot([^/]*)/([^/]*)/?", path)
        if m is None:
            raise ApiError(404, "Not Found")
        if m.group(1) != self.token:
            raise ApiError(401, "Unauthorized")
        name = _METHODS.get(m.group(2).lower())
        if name is None:
            raise ApiError(404, "Not Found")
        call.method = name
        if name == "getUpdates":
            return 200, {"ok": True, "result": self._get_updates(params)}
        with self._cond:
            result = getattr(self, f"_m_{name}")(params)
        return 200, {"ok": True, "result": result}

    def _download(self, path: str) -> tuple[int, bytes]:
        prefix = f"/file/bot{self.token}/"
        if not path.startswith(prefix):
            raise ApiError(401, "Unauthorized")
        with self._cond:
            entry = self._files.get(path.removeprefix(prefix).removeprefix("documents/"))
        if entry is None:
            raise ApiError(404, "Not Found")
        return 200, entry[1]

    def _get_updates(self, params: Json) -> list[Json]:
        offset = _int(params, "offset")
        limit = min(max(_int(params, "limit") or 100, 1), 100)
        timeout = min(float(params.get("timeout") or 0), MAX_POLL_TIMEOUT)
        allowed = _json_field(params, "allowed_updates", "can't parse allowed_updates")
        deadline = time.monotonic() + timeout
        with self._cond:
            if allowed is not None:
                self._allowed = frozenset(allowed) or DEFAULT_ALLOWED
            if offset is not None and offset < 0:
                self._updates = self._updates[offset:]
            elif offset is not None:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            self._poll_generation += 1
            generation = self._poll_generation
            self._cond.notify_all()
            while not self._updates and not self._stopping:
                if self._down:
                    raise ApiError(502, "Bad Gateway")
                if self._revoked_at is not None and generation <= self._revoked_at:
                    raise ApiError(401, "Unauthorized")
                if generation != self._poll_generation:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that only"
                        " one bot instance is running",
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return [json.loads(json.dumps(u)) for u in self._updates[:limit]]

    def _check_flood(self, chat_id: int) -> None:
        limit = self._limits.get(chat_id)
        if limit and limit[1] > 0:
            limit[1] -= 1
            raise ApiError(
                429,
                f"Too Many Requests: retry after {limit[0]}",
                {"retry_after": limit[0]},
            )
        if self.flood is not None:
            self._check_buckets(chat_id, self.flood)
        if self.per_chat_limit is None:
            return
        now = time.monotonic()
        recent = [t for t in self._sends.get(chat_id, []) if now - t < 1.0]
        if len(recent) >= self.per_chat_limit:
            raise ApiError(429, "Too Many Requests: retry after 1", {"retry_after": 1})
        self._sends[chat_id] = [*recent, now]

    def _check_buckets(self, chat_id: int, flood: Flood) -> None:
        now = time.monotonic()
        total = self._buckets.setdefault(None, _Bucket(flood.total_rate, flood.total_burst))
        chat = self._buckets.setdefault(chat_id, _Bucket(flood.chat_rate, flood.chat_burst))
        wait = max(total.wait(now), chat.wait(now))
        if wait > 0:
            retry = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        total.tokens -= 1
        chat.tokens -= 1

    def _target(self, params: Json, *, sending: bool = True) -> _Chat:
        if params.get("chat_id") in (None, ""):
            raise bad("chat_id is empty")
        try:
            chat_id = int(params["chat_id"])
        except (TypeError, ValueError):
            raise bad("chat not found") from None
        chat = self._chat(chat_id)
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if sending:
            self._check_flood(chat_id)
        return chat

    def _text(self, params: Json, name: str, limit: int, too_long: str) -> tuple[str, list[Json]]:
        raw = params.get(name)
        raw = "" if raw is None else str(raw)
        mode = str(params.get("parse_mode") or "")
        if mode.lower() == "html":
            text, entities = parse_html(raw)
        elif mode and mode.lower() not in ("markdown", "markdownv2"):
            raise bad(f"unsupported parse_mode {mode}")
        else:
            text, entities = raw, []
        if len(text) > limit:
            raise bad(too_long)
        return text, entities

    def _edited(self, params: Json) -> tuple[_Chat, Msg]:
        chat = self._target(params)
        message_id = _int(params, "message_id", "message identifier is not specified")
        msg = chat.messages.get(message_id or 0)
        if msg is None or msg.deleted:
            raise bad("message to edit not found")
        if not msg.from_bot:
            raise bad("message can't be edited")
        return chat, msg

    # methods, named m_<canonical name>, called under self._cond

    def _m_getMe(self, params: Json) -> Json:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _m_deleteWebhook(self, params: Json) -> bool:
        if _truthy(params, "drop_pending_updates"):
            self._updates.clear()
        return True

    def _m_getWebhookInfo(self, params: Json) -> Json:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    def _m_sendMessage(self, params: Json) -> Json:
        chat = self._target(params)
        text, entities = self._text(params, "text", MAX_TEXT, "message is too long")
        if not text.strip():
            raise bad("message text is empty")
        markup = check_markup(params)
        self._check_reply(chat, params)
        msg = Msg(0, True, text, str(params["text"]), params.get("parse_mode"), markup)
        msg.entities = entities
        return self._message_json(chat, self._add(chat, msg), None)

    def _check_reply(self, chat: _Chat, params: Json) -> None:
        reply = _json_field(params, "reply_parameters", "can't parse reply parameters JSON object")
        target = reply.get("message_id") if isinstance(reply, dict) else None
        target = target or _int(params, "reply_to_message_id")
        lenient = isinstance(reply, dict) and reply.get("allow_sending_without_reply")
        replied = chat.messages.get(int(target)) if target else None
        if target and (replied is None or replied.deleted) and not lenient:
            raise bad("message to be replied not found")

    def _m_editMessageText(self, params: Json) -> Json:
        chat, msg = self._edited(params)
        if msg.document:
            raise bad("there is no text in the message to edit")
        text, entities = self._text(params, "text", MAX_TEXT, "MESSAGE_TOO_LONG")
        if not text.strip():
            raise bad("message text is empty")
        markup = check_markup(params)
        if (text, entities, markup) == (msg.text, msg.entities, msg.reply_markup):
            raise bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        msg.text, msg.html, msg.entities = text, str(params["text"]), entities
        msg.parse_mode, msg.reply_markup = params.get("parse_mode"), markup
        return self._touch(chat, msg)

    def _m_editMessageReplyMarkup(self, params: Json) -> Json:
        chat, msg = self._edited(params)
        markup = check_markup(params)
        if markup == msg.reply_markup:
            raise bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        msg.reply_markup = markup
        return self._touch(chat, msg)

    def _touch(self, chat: _Chat, msg: Msg) -> Json:
        msg.edits += 1
        msg.edit_date = int(time.time())
        return self._message_json(chat, msg, None)

    def _m_deleteMessage(self, params: Json) -> bool:
        chat = self._target(params, sending=False)
        message_id = _int(params, "message_id", "message identifier is not specified")
        msg = chat.messages.get(message_id or 0)
        if msg is None or msg.deleted:
            raise bad("message to delete not found")
        msg.deleted = True
        return True

    def _m_answerCallbackQuery(self, params: Json) -> bool:
        query = self._queries.get(str(params.get("callback_query_id") or ""))
        now = time.monotonic()
        if query is None or query.answer is not None:
            raise bad(QUERY_TOO_OLD.removeprefix("Bad Request: "))
        if now - query.pressed_at > self.callback_timeout:
            raise bad(QUERY_TOO_OLD.removeprefix("Bad Request: "))
        if len(str(params.get("text") or "")) > MAX_ANSWER_TEXT:
            raise bad("MESSAGE_TOO_LONG")
        query.answer = {**params, "show_alert": _truthy(params, "show_alert"), "answered_at": now}
        return True

    def _m_sendDocument(self, params: Json) -> Json:
        chat = self._target(params)
        caption, entities = self._text(
            params, "caption", MAX_CAPTION, "message caption is too long"
        )
        markup = check_markup(params)
        document = params.get("document")
        if isinstance(document, tuple):
            filename, content = document
            if not content:
                raise bad("file must be non-empty")
            file_id = self._store_file(filename, content)
        elif isinstance(document, str) and document in self._files:
            file_id, (filename, content) = document, self._files[document]
        elif document:
            raise bad("wrong file identifier/HTTP URL specified")
        else:
            raise bad("there is no document in the request")
        html = str(params.get("caption") or "")
        msg = Msg(0, True, caption, html, params.get("parse_mode"), markup)
        msg.entities, msg.document, msg.file_id = entities, (filename, content), file_id
        return self._message_json(chat, self._add(chat, msg), None)

    def _m_getFile(self, params: Json) -> Json:
        file_id = str(params.get("file_id") or "")
        if file_id not in self._files:
            raise bad("invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": len(self._files[file_id][1]),
            "file_path": f"documents/{file_id}",
        }

    def _m_sendChatAction(self, params: Json) -> bool:
        self._target(params, sending=False)
        if params.get("action") not in CHAT_ACTIONS:
            raise bad("wrong parameter action in request")
        return True

    def _scope_key(self, params: Json) -> tuple[str, str]:
        scope = _json_field(params, "scope", "can't parse BotCommandScope JSON object") or {}
        kind = str(scope.get("type", "default"))
        if "chat_id" in scope:
            kind += f":{scope['chat_id']}" + (f":{scope['user_id']}" if "user_id" in scope else "")
        return kind, str(params.get("language_code") or "")

    def _m_setMyCommands(self, params: Json) -> bool:
        commands = _json_field(params, "commands", "can't parse commands JSON object")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad("BOT_COMMANDS_TOO_MUCH" if commands else "commands is empty")
        for c in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(c.get("command", ""))):
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(c.get("description", "")).strip()) <= 256:
                raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._scope_key(params)] = commands
        return True

    def _m_getMyCommands(self, params: Json) -> list[Json]:
        return self.commands.get(self._scope_key(params), [])

    def _m_deleteMyCommands(self, params: Json) -> bool:
        self.commands.pop(self._scope_key(params), None)
        return True


_METHODS = {
    name.removeprefix("_m_").lower(): name.removeprefix("_m_")
    for name in dir(FakeBotAPI)
    if name.startswith("_m_")
}
_METHODS["getupdates"] = "getUpdates"


class _Handler(BaseHTTPRequestHandler):
    """Decodes the request, lets FakeBotAPI answer, writes the answer."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        api: FakeBotAPI = self.server.api  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        try:
            params = parse_body(self.headers.get("Content-Type", ""), body, parts.query)
        except ApiError as e:
            self._write(e.code, {"ok": False, "error_code": e.code, "description": e.description})
            return
        path = unquote(parts.path)
        drop = api.take_drop(path)
        if drop is None:
            self._write(*api.handle(path, params))
            return
        if drop:
            api.handle(path, params)
        self.close_connection = True  # no answer: the client sees the connection drop

    def _write(self, status: int, body: Json | bytes) -> None:
        if isinstance(body, bytes):
            ctype = "text/html" if status == 502 else "application/octet-stream"
            data = body
        else:
            ctype, data = "application/json", json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a cancelled long poll)


@contextmanager
def running(**kwargs: Any) -> Iterator[FakeBotAPI]:
    """A started FakeBotAPI, stopped on exit."""
    api = FakeBotAPI(**kwargs)
    api.start()
    try:
        yield api
    finally:
        api.stop()
