"""Every text the bot sends, in English and Russian, from the one catalog
(controlplane.domain.texts, which the status screen shares).

Handlers never write text themselves; they call `t(lang, key, **values)`. Values are
HTML-escaped here (the bot sends HTML), so a project name or a log line can never break
Telegram's parser; a value built with t() itself is passed as `Html(...)`.
"""

from __future__ import annotations

import html
from typing import Any

from controlplane.domain.texts import LANGS, template


class Html(str):
    """A value that is HTML already (built with t()): t() fills it in as it is."""


def t(lang: str, key: str, **values: Any) -> str:
    """The text `key` in `lang` with its values HTML-escaped (but Html ones) and filled in."""
    safe = {
        k: v if isinstance(v, Html) else html.escape(str(v), quote=False) for k, v in values.items()
    }
    return template(lang, key).format(**safe)


def pick_lang(forced: str | None, telegram_code: str | None) -> str:
    """CONTROLPLANE_LANG when set, else the admin's Telegram language (ru → ru)."""
    if forced in LANGS:
        return forced
    return "ru" if (telegram_code or "").lower().startswith("ru") else "en"
