"""Every word a person reads, in their language: gettext catalogs and the `Text` that
carries a message to the face that renders it.

The msgids are the English texts. The Russian catalog is
`controlplane/i18n/locale/ru/LC_MESSAGES/controlplane.po`, managed with Babel (`pybabel
extract / update / compile`, configured in pyproject.toml) and compiled to `.mo` when the
package is built or installed (`make` does it too). A checkout whose `.mo` is missing or
older than its `.po` reads the `.po` itself, so a fresh edit is never silently ignored.

Code below the faces never builds a finished sentence: it makes a `Text` with `tr()` (or
`ntr()` for a count) and the values it names; the bot renders it in each chat's language,
the CLI in the locale's, the logs in English (`str(text)`). A Text survives the store,
the outbox and the control socket as plain data (`to_dict` / `from_dict`).

Values may be other Texts and the figures below (`Duration`, `Size`, `Number`), which
each language writes its own way ("2h 10m" / "2 ч 10 мин", "1.5 GiB" / "1,5 ГБ").
Extraction keywords: `tr`, `ntr:1,2`, `N_` (a msgid kept for later), and the bot's
`t:2` and `tn:2,3`.
"""

from __future__ import annotations

import gettext as _gettext
import io
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

LANGS = ("en", "ru")
DEFAULT = "en"
DOMAIN = "controlplane"
LOCALE_DIR = Path(__file__).parent / "locale"


def N_(msgid: str) -> str:
    """Mark a msgid for extraction where it is kept (a table), translated where shown."""
    return msgid


def normalize(code: str | None) -> str | None:
    """A language code ('ru', 'ru_RU.UTF-8', 'en-GB') as one of LANGS, or None."""
    head = (code or "").strip().lower().replace("-", "_").split("_")[0].split(".")[0]
    return head if head in LANGS else None


def locale_lang(env: Mapping[str, str] | None = None) -> str:
    """The language of the POSIX locale (LANGUAGE, LC_ALL, LC_MESSAGES, LANG), English by
    default: how the CLI picks its language."""
    env = os.environ if env is None else env
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            first = value.split(":")[0]
            return normalize(first) or DEFAULT
    return DEFAULT


# ---- catalogs ------------------------------------------------------------------------


class _English(_gettext.NullTranslations):
    """English is the msgids themselves, with English plural rules."""


def compiled(po: Path) -> bytes:
    """A `.po` file compiled to `.mo` bytes (needs Babel, a development dependency)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as f:
        catalog = read_po(f, locale=po.parent.parent.name)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    return buf.getvalue()


def compile_stale() -> None:
    """Write each catalog's `.mo` where it is missing or older than its `.po` (what `make`
    does), for readers that need the file: the standard library's gettext (argparse)."""
    for po in LOCALE_DIR.glob("*/LC_MESSAGES/*.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            mo.write_bytes(compiled(po))


def _compile_po(po: Path) -> _gettext.GNUTranslations:
    return _gettext.GNUTranslations(io.BytesIO(compiled(po)))


@cache
def catalog(lang: str) -> _gettext.NullTranslations:
    """The translations of `lang` (English for an unknown one), loaded once."""
    if lang == DEFAULT or lang not in LANGS:
        return _English()
    base = LOCALE_DIR / lang / "LC_MESSAGES"
    po, mo = base / f"{DOMAIN}.po", base / f"{DOMAIN}.mo"
    try:
        if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
            with mo.open("rb") as f:
                return _gettext.GNUTranslations(f)
        if po.exists():
            logger.info("%s is missing or older than its .po: reading the .po", mo)
            return _compile_po(po)
    except Exception:
        logger.exception("the %s catalog cannot be read; English is used", lang)
    return _English()


def gettext(lang: str, msgid: str) -> str:
    return catalog(lang).gettext(msgid)


def ngettext(lang: str, singular: str, plural: str, n: int) -> str:
    return catalog(lang).ngettext(singular, plural, n)


# ---- figures -------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    """A number with `digits` decimals, written the language's way ('1.5' / '1,5')."""

    value: float
    digits: int = 1

    def render(self, lang: str) -> str:
        text = f"{self.value:.{self.digits}f}"
        return text.replace(".", ",") if lang == "ru" else text


@dataclass(frozen=True)
class Percent:
    """A share in percent: '45.3%' / '45,3 %'."""

    value: float
    digits: int = 1

    def render(self, lang: str) -> str:
        number = Number(self.value, self.digits).render(lang)
        return f"{number} %" if lang == "ru" else f"{number}%"


@dataclass(frozen=True)
class Duration:
    """A span of seconds in its two largest units: '1h 2m' / '1 ч 2 мин'."""

    seconds: float

    def render(self, lang: str) -> str:
        total = max(round(self.seconds), 0)
        units = (
            (86400, N_("{n}d")),
            (3600, N_("{n}h")),
            (60, N_("{n}m")),
            (1, N_("{n}s")),
        )
        parts: list[str] = []
        for size, unit in units:
            value, total = divmod(total, size)
            if value:
                parts.append(gettext(lang, unit).format(n=value))
        return " ".join(parts[:2]) or gettext(lang, "{n}s").format(n=0)


BYTE_UNITS = (N_("{n} B"), N_("{n} KiB"), N_("{n} MiB"), N_("{n} GiB"), N_("{n} TiB"))


@dataclass(frozen=True)
class Size:
    """Bytes in the largest binary unit under 1024: '512 B', '1.5 GiB' / '1,5 ГБ'."""

    bytes: float

    def render(self, lang: str) -> str:
        n = float(self.bytes)
        for i, unit in enumerate(BYTE_UNITS):
            if abs(n) < 1024 or i == len(BYTE_UNITS) - 1:
                shown = f"{n:.0f}" if i == 0 else Number(n, 1).render(lang)
                return gettext(lang, unit).format(n=shown)
            n /= 1024
        raise AssertionError("unreachable")


FIGURES: dict[str, type[Any]] = {
    "$num": Number,
    "$pct": Percent,
    "$dur": Duration,
    "$size": Size,
}


# ---- the message ---------------------------------------------------------------------


class Text:
    """A message to render later in the reader's language: a msgid (and its plural with
    the count `n`) and the values its placeholders name. `str()` is the English text."""

    __slots__ = ("msgid", "n", "plural", "values", "verbatim")

    def __init__(
        self,
        msgid: str,
        values: Mapping[str, Any] | None = None,
        *,
        plural: str | None = None,
        n: int | None = None,
        verbatim: bool = False,
    ) -> None:
        self.msgid = msgid
        self.values = dict(values or {})
        self.plural = plural
        self.n = n
        self.verbatim = verbatim  # words from outside (git, a log): shown as they are

    def __str__(self) -> str:
        return self.render(DEFAULT)

    def __repr__(self) -> str:
        return f"Text({self.msgid!r}, {self.values!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.msgid, self.plural, self.n))

    def template(self, lang: str) -> str:
        """The translated template, placeholders unfilled."""
        if self.verbatim:
            return self.msgid
        if self.plural is not None:
            return ngettext(lang, self.msgid, self.plural, self.n or 0)
        return gettext(lang, self.msgid)

    def render(self, lang: str, escape: Any = None) -> str:
        """The text in `lang`; `escape` (the bot's HTML escaping) is applied to each value."""
        if self.verbatim:
            return escape(self.msgid) if escape else self.msgid
        values = {k: render_value(v, lang, escape) for k, v in self.values.items()}
        if self.n is not None:
            values.setdefault("n", str(self.n))
        template = self.template(lang)
        try:
            return template.format(**values)
        except (KeyError, IndexError, ValueError, AttributeError):
            logger.error("translation of %r does not fit its values; English is used", self.msgid)
            english = self.msgid if self.plural is None or self.n == 1 else self.plural
            return fill(english, values)

    def redacted(self, redact: Callable[[str], str]) -> Text:
        """The same message with every word from outside (its values, a verbatim text)
        passed through `redact` (secrets hidden); our own msgids are left alone."""
        if self.verbatim:
            return verbatim(redact(self.msgid))
        values = {
            k: v.redacted(redact) if isinstance(v, Text) else redact(v) if isinstance(v, str) else v
            for k, v in self.values.items()
        }
        return Text(self.msgid, values, plural=self.plural, n=self.n)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.msgid}
        if self.values:
            data["v"] = {k: encode_value(v) for k, v in self.values.items()}
        if self.plural is not None:
            data["pl"], data["n"] = self.plural, self.n
        if self.verbatim:
            data["raw"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Text:
        values = {k: decode_value(v) for k, v in (data.get("v") or {}).items()}
        return cls(
            str(data.get("id", "")),
            values,
            plural=data.get("pl"),
            n=data.get("n"),
            verbatim=bool(data.get("raw")),
        )


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(template: str, values: Mapping[str, str]) -> str:
    """`template` with the values it names; a placeholder without a value stays as it is,
    and a template that does not parse is shown as it is (a text never fails to show)."""
    try:
        return template.format_map(_Missing(values))
    except (IndexError, ValueError, AttributeError):
        return template


def tr(msgid: str, **values: Any) -> Text:
    """A message for a person; rendered in their language where it is shown."""
    return Text(msgid, values)


def ntr(singular: str, plural: str, n: int, **values: Any) -> Text:
    """A message about `n` things ("{n} commit" / "{n} commits"); `{n}` is filled in."""
    return Text(singular, values, plural=plural, n=n)


def verbatim(text: str) -> Text:
    """Words that are not ours (git's output, a log line, a name): never translated."""
    return Text(text, verbatim=True)


def as_text(value: Text | str) -> Text:
    """A Text as it is; a plain str (from outside, or not yet translated) verbatim."""
    return value if isinstance(value, Text) else verbatim(str(value))


def join(items: Iterable[Text | str], sep: str = ", ") -> Text:
    """Several texts, each rendered, joined by `sep`."""
    parts = [as_text(i) for i in items]
    values = {f"p{i}": p for i, p in enumerate(parts)}
    template = sep.join("{" + f"p{i}" + "}" for i in range(len(parts)))
    return Text(template, values, verbatim=False) if parts else verbatim("")


def render(value: Any, lang: str) -> str:
    """Any value as the reader of `lang` sees it (Texts and figures rendered)."""
    return render_value(value, lang, None)


def render_value(value: Any, lang: str, escape: Any) -> str:
    if isinstance(value, Text):
        return value.render(lang, escape)
    if isinstance(value, Number | Percent | Duration | Size):
        shown = value.render(lang)
    else:  # a str subclass (the bot's Html) keeps its type, so `escape` can tell it
        shown = value if isinstance(value, str) else str(value)
    return escape(shown) if escape else shown


def encode_value(value: Any) -> Any:
    if isinstance(value, Text):
        return {"$t": value.to_dict()}
    for tag, cls in FIGURES.items():
        if isinstance(value, cls):
            return {tag: [getattr(value, f) for f in cls.__dataclass_fields__]}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def decode_value(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, body),) = value.items()
        if tag == "$t" and isinstance(body, dict):
            return Text.from_dict(body)
        if tag in FIGURES and isinstance(body, list):
            return FIGURES[tag](*body)
    return value


def t(lang: str, msgid: str, **values: Any) -> str:
    """The message `msgid` in `lang` with its values filled in, as plain text (the CLI,
    the status screen); the bot has its own `t` that escapes values for HTML."""
    return Text(msgid, values).render(lang)
