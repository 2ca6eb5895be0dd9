"""The bot's texts: gettext msgids in English (HTML), rendered in each chat's language.

Handlers never write text themselves; they call `t(lang, msgid, **values)` (or
`tn(lang, singular, plural, n, **values)` for a count), and `error(lang, exc)` for a
failure to show. Values are HTML-escaped here (the
bot sends HTML), so a project name or a log line can never break Telegram's parser; a
`Text` from below is rendered in the chat's language and escaped the same way, and a value
that is HTML already (built with t()) is passed as `Html(...)`.
"""

from __future__ import annotations

import html
import re
from typing import Any

from controlplane.errors import ControlPlaneError
from controlplane.i18n import N_, Text, normalize

__all__ = ["N_", "Html", "error", "escape", "pick_lang", "plain", "t", "text", "tn"]


class Html(str):
    """A value that is HTML already (built with t()): t() fills it in as it is."""

    __slots__ = ()


def escape(value: str) -> str:
    return value if isinstance(value, Html) else html.escape(value, quote=False)


def t(lang: str, msgid: str, **values: Any) -> str:
    """The message `msgid` in `lang` with its values HTML-escaped (but Html ones)."""
    return Text(msgid, _rendered(lang, values)).render(lang, escape)


def tn(lang: str, singular: str, plural: str, n: int, **values: Any) -> str:
    """The message about `n` things in `lang`, in the plural form `n` takes there."""
    return Text(singular, _rendered(lang, values), plural=plural, n=n).render(lang, escape)


def _rendered(lang: str, values: dict[str, Any]) -> dict[str, Any]:
    """Texts from below rendered whole and escaped whole (their templates are plain text)."""
    return {k: Html(text(lang, v)) if isinstance(v, Text) else v for k, v in values.items()}


def text(lang: str, value: Text | str) -> str:
    """A Text from below (an error, an event, a step) in `lang`, HTML-escaped."""
    if isinstance(value, Text):
        return html.escape(value.render(lang), quote=False)
    return escape(value)


def error(lang: str, exc: BaseException) -> str:
    """'⚠️ reason' for an error a person is to read: a ControlPlaneError's Text in `lang`
    (never its English str()); anything else as it says itself."""
    reason = exc.text if isinstance(exc, ControlPlaneError) else str(exc)
    return t(lang, "⚠️ {reason}", reason=Html(text(lang, reason)))


def plain(value: str) -> str:
    """An HTML message as plain text, for a toast (Telegram shows a toast's tags as they
    are): tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]*>", "", value))


def pick_lang(forced: str | None, chosen: str | None, telegram_code: str | None) -> str:
    """CONTROLPLANE_LANG when set, else the language the chat chose with 🌐, else the
    admin's Telegram language (ru → ru), else English."""
    return normalize(forced) or normalize(chosen) or normalize(telegram_code) or "en"
