"""Redaction of everything the bot sends, at the last point before it leaves the process.

`RedactingRequest` is the bot's HTTP client. By the time a request reaches it, PTB has
turned every argument into plain JSON values (dicts, lists, strings) plus the files to
upload, whatever the endpoint: message texts and captions, button texts (any keyboard),
callback answers, edits, command descriptions, polls, document captions, file names and
file contents. Every string in that tree is redacted, except the few fields that are not
text (identifiers, enumerations, callback data: `NOT_TEXT`), so a new endpoint or field
cannot slip through. Fields that Telegram parses as HTML are redacted tag-aware
(`Redactor.html`): a secret `code` never turns `<code>` into `<***>`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import IO, Any

from telegram import InputFile
from telegram._utils.types import ODVInput
from telegram.request import BaseRequest, HTTPXRequest, RequestData
from telegram.request._requestparameter import RequestParameter

from controlplane.service.facade import Redactor

# Fields that are not text. Identifiers (`*_id`, `*_ids`) and enumerations are chosen by
# our code, and a short secret matching inside one ("HTML", a file id) would break the
# request. callback_data is made only by render.cb from fixed keys, validated project
# names and numbers, is never shown, and redacting it would make the button do nothing.
NOT_TEXT = frozenset(
    {"callback_data", "type", "language_code", "allowed_updates", "action", "emoji"}
)
# which text fields each parse-mode field governs (Bot API: messages, media, polls,
# inline results)
MARKUP = {
    "parse_mode": ("text", "caption", "message_text"),
    "question_parse_mode": ("question",),
    "explanation_parse_mode": ("explanation",),
    "text_parse_mode": ("text",),
}
TEXT_FIELDS = frozenset(key for keys in MARKUP.values() for key in keys)


def not_text(key: str) -> bool:
    return key in NOT_TEXT or key.endswith(("_id", "_ids", "parse_mode"))


def redact_fields(fields: dict[str, Any], redact: Redactor) -> dict[str, Any]:
    """A JSON object with every text value redacted; HTML fields tag-aware."""
    html_fields = {
        key
        for mode, keys in MARKUP.items()
        if str(fields.get(mode) or "").upper() == "HTML"
        for key in keys
    }
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if not_text(key):
            out[key] = value
        elif key in html_fields and isinstance(value, str):
            out[key] = redact.html(value)
        elif key in TEXT_FIELDS and isinstance(value, str):
            out[key] = redact(value)
        else:
            out[key] = redact_value(value, redact)
    return out


def redact_value(value: Any, redact: Redactor) -> Any:
    """Any JSON value; a string holding a JSON object or array (reply_markup passed as
    text) is decoded, redacted and encoded again, so its escaped strings are seen whole."""
    if isinstance(value, dict):
        return redact_fields(value, redact)
    if isinstance(value, list | tuple):
        return [redact_value(item, redact) for item in value]
    if not isinstance(value, str) or value.startswith("attach://"):
        return value
    if value[:1] in ("{", "["):
        try:
            decoded = json.loads(value)
        except ValueError:
            pass
        else:
            if isinstance(decoded, dict | list):
                cleaned = redact_value(decoded, redact)
                return value if cleaned == decoded else json.dumps(cleaned)
    return redact(value)


def redact_file(file: InputFile, redact: Redactor) -> InputFile:
    """A copy of an upload with its name and its content redacted (bytes that are not
    UTF-8 are kept as they are around the text)."""
    content = file.input_file_content
    raw = content if isinstance(content, bytes) else _read(content)
    text = raw.decode("utf-8", "surrogateescape")
    hidden = redact(text)
    body = raw if hidden == text else hidden.encode("utf-8", "surrogateescape")
    copy = InputFile(body, filename=redact(file.filename))
    copy.attach_name = file.attach_name  # the JSON refers to it as attach://NAME
    copy.mimetype = file.mimetype
    return copy


def _read(handle: IO[bytes]) -> bytes:
    data = handle.read()
    return data if isinstance(data, bytes) else bytes(data)


def redact_request(data: RequestData, redact: Redactor) -> RequestData:
    """The same request with every parameter and file redacted."""
    # RequestData keeps each parameter with its files; the public `parameters` drops the
    # file-only ones, so the list is read directly (PTB 22, pinned below 23).
    params = data._parameters
    fields = redact_fields({p.name: p.value for p in params}, redact)
    return RequestData(
        [
            RequestParameter(
                name=p.name,
                value=fields[p.name],
                input_files=[redact_file(f, redact) for f in p.input_files]
                if p.input_files
                else None,
            )
            for p in params
        ]
    )


class RedactingRequest(HTTPXRequest):
    """The bot's HTTP client: every request but getUpdates is redacted before it is sent."""

    def __init__(self, redactor: Callable[[], Redactor], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._redactor = redactor

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if request_data is not None and not url.endswith("/getUpdates"):
            redact = self._redactor()
            if request_data.contains_files:  # a log file of megabytes: not on the event loop
                request_data = await asyncio.to_thread(redact_request, request_data, redact)
            else:
                request_data = redact_request(request_data, redact)
        return await super().do_request(
            url,
            method,
            request_data,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            connect_timeout=connect_timeout,
            pool_timeout=pool_timeout,
        )
