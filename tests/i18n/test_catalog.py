"""The catalog check: every msgid the code uses is in the Russian catalog, translated (no
missing, empty or fuzzy entry), with the same placeholders and HTML tags, plural entries
with all three Russian forms; the template in git is the code's; and extraction finds no
msgid written in a way gettext cannot translate (an f-string)."""

from __future__ import annotations

import contextlib
import io
import re
import string
import tomllib
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from controlplane.i18n import LOCALE_DIR

REPO = Path(__file__).resolve().parents[2]
PO = LOCALE_DIR / "ru" / "LC_MESSAGES" / "controlplane.po"
POT = LOCALE_DIR / "controlplane.pot"
TAG = re.compile(r"</?[a-z]+[^>]*>")


def keywords() -> dict[str, tuple[int, ...] | None]:
    """The extraction keywords, as pyproject.toml gives them to pybabel."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    spec = config["tool"]["babel"]["extract_messages"]["keywords"].split()
    found: dict[str, tuple[int, ...] | None] = {}
    for item in spec:
        name, _, args = item.partition(":")
        found[name] = tuple(int(a) for a in args.split(",")) if args else None
    return found


def extracted() -> tuple[dict[str, Message | tuple[str, str]], str]:
    """msgid (the singular for a plural) → (singular, plural) or the msgid; and Babel's
    warnings."""
    found: dict[str, object] = {}
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        for _file, _line, message, _comments, _ctx in extract_from_dir(
            str(REPO / "controlplane"), keywords=keywords()
        ):
            key = message[0] if isinstance(message, tuple) else message
            found[key] = message
    return found, err.getvalue()  # type: ignore[return-value]


@pytest.fixture(scope="module")
def code() -> tuple[dict[str, object], str]:
    return extracted()  # type: ignore[return-value]


@pytest.fixture(scope="module")
def russian() -> Catalog:
    with PO.open("rb") as f:
        return read_po(f, locale="ru")


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def tags(text: str) -> list[str]:
    return sorted(TAG.findall(text))


def test_no_msgid_is_an_f_string_or_otherwise_untranslatable(code: tuple[object, str]) -> None:
    _found, warnings = code
    assert warnings == "", warnings


def test_every_msgid_in_the_code_is_translated_in_russian(
    code: tuple[dict[str, object], str], russian: Catalog
) -> None:
    found, _ = code
    missing, empty, fuzzy = [], [], []
    for key, message in found.items():
        entry = russian.get(key)
        if entry is None:
            missing.append(key)
            continue
        if "fuzzy" in entry.flags:
            fuzzy.append(key)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if not all(strings):
            empty.append(key)
        assert isinstance(entry.id, tuple) == isinstance(message, tuple), key
    assert missing == [], f"not in the Russian catalog (run pybabel extract/update): {missing}"
    assert empty == [], f"untranslated in Russian: {empty}"
    assert fuzzy == [], f"fuzzy in Russian (check the translation, then drop the flag): {fuzzy}"


def test_translations_keep_placeholders_and_tags(russian: Catalog) -> None:
    wrong = []
    for entry in russian:
        if not entry.id:
            continue
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        want_fields = set().union(*(fields(i) for i in ids))
        for text in strings:
            if text and (fields(text) != want_fields or tags(text) != tags(ids[-1])):
                wrong.append((ids[0], text))
    assert wrong == []


def test_plural_entries_have_the_three_russian_forms(russian: Catalog) -> None:
    assert russian.num_plurals == 3
    short = [e.id for e in russian if isinstance(e.id, tuple) and len(e.string) != 3]
    assert short == []


def test_the_template_in_git_is_the_codes(code: tuple[dict[str, object], str]) -> None:
    found, _ = code
    with POT.open("rb") as f:
        template = read_po(f)
    in_template = {e.id[0] if isinstance(e.id, tuple) else e.id for e in template if e.id}
    assert set(found) - in_template == set(), "run `make catalogs` (pybabel extract)"
    assert in_template - set(found) == set(), "run `make catalogs` (pybabel extract)"


def test_babel_finds_nothing_wrong_in_the_russian_catalog(russian: Catalog) -> None:
    """What `pybabel compile` checks (python-format placeholders, plural counts)."""
    problems = [
        f"{message.id!r}: {'; '.join(str(e) for e in errors)}"
        for message, errors in russian.check()
    ]
    assert problems == []
