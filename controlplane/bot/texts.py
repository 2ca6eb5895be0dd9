"""The bot's texts: gettext msgids in English (HTML), rendered in each chat's language.

Handlers never write text themselves; they call `t(lang, msgid, **values)` (or
`tn(lang, singular, plural, n, **values)` for a count). Values are HTML-escaped here (the
bot sends HTML), so a project name or a log line can never break Telegram's parser; a
`Text` from below is rendered in the chat's language and escaped the same way, and a value
that is HTML already (built with t()) is passed as `Html(...)`.
"""

from __future__ import annotations

import html
from typing import Any

from controlplane.i18n import N_, Text, normalize

__all__ = ["N_", "Html", "escape", "pick_lang", "t", "text", "tn"]


class Html(str):
    """A value that is HTML already (built with t()): t() fills it in as it is."""

    __slots__ = ()


def escape(value: str) -> str:
    return value if isinstance(value, Html) else html.escape(value, quote=False)


def t(lang: str, msgid: str, **values: Any) -> str:
    """The message `msgid` in `lang` with its values HTML-escaped (but Html ones)."""
    return Text(msgid, values).render(lang, escape)


def tn(lang: str, singular: str, plural: str, n: int, **values: Any) -> str:
    """The message about `n` things in `lang`, in the plural form `n` takes there."""
    return Text(singular, values, plural=plural, n=n).render(lang, escape)


def text(lang: str, value: Text | str) -> str:
    """A Text from below (an error, an event, a step) in `lang`, HTML-escaped."""
    if isinstance(value, Text):
        return html.escape(value.render(lang), quote=False)
    return escape(value)


def pick_lang(forced: str | None, chosen: str | None, telegram_code: str | None) -> str:
    """CONTROLPLANE_LANG when set, else the language the chat chose with 🌐, else the
    admin's Telegram language (ru → ru), else English."""
    return normalize(forced) or normalize(chosen) or normalize(telegram_code) or "en"
