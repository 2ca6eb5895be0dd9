"""Message bodies within Telegram's limits: HTML-escaped, at most 4,096 characters."""

from __future__ import annotations

import html
from collections.abc import Sequence

LIMIT = 4096


def pre(lines: Sequence[str], *, budget: int = 3000) -> str:
    """Lines as a <pre> block, escaped; the oldest lines go first when over `budget`."""
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        # a cut is marked, so a secret cut short is still found (secrets.Redactor)
        piece = html.escape(line if len(line) <= 500 else line[:499] + "…", quote=False)
        if used + len(piece) + 1 > budget:
            break
        kept.append(piece)
        used += len(piece) + 1
    if not kept:
        return ""
    return "<pre>" + "\n".join(reversed(kept)) + "</pre>"


def fit(text: str, limit: int = LIMIT) -> str:
    """Cut a message to Telegram's limit without breaking an HTML tag or entity: the tail
    of a <pre> block is kept, since the newest lines matter most."""
    if len(text) <= limit:
        return text
    head, sep, body = text.partition("<pre>")
    if sep and body.endswith("</pre>"):
        room = limit - len(head) - len("<pre>…\n</pre>")
        inner = body[: -len("</pre>")]
        cut = inner[-room:] if room > 0 else ""
        cut = cut[cut.find("\n") + 1 :] if "\n" in cut else ""
        return f"{head}<pre>…\n{cut}</pre>"[:limit]
    plain = html.escape(html.unescape(_strip_tags(text)), quote=False)
    return plain[: limit - 1] + "…"


def _strip_tags(text: str) -> str:
    out, inside = [], False
    for ch in text:
        if ch == "<":
            inside = True
        elif ch == ">" and inside:
            inside = False
        elif not inside:
            out.append(ch)
    return "".join(out)


def number(text: str) -> int | None:
    """A whole number in ASCII digits, or None ('¹' is a digit to str.isdigit, not to int)."""
    return int(text) if text.isascii() and text.isdigit() else None
