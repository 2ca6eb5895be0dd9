"""Text: a message rendered in the reader's language; plurals, figures, nesting, and its
round trip through the store's and the socket's data."""

from __future__ import annotations

import json
import string

from babel.messages.pofile import read_po

from controlplane.bot.texts import Html, pick_lang, t, tn
from controlplane.i18n import (
    LOCALE_DIR,
    Duration,
    Number,
    Size,
    Text,
    fill,
    locale_lang,
    ntr,
    tr,
    verbatim,
)

PO = LOCALE_DIR / "ru" / "LC_MESSAGES" / "controlplane.po"


def test_russian_plurals_take_their_three_forms() -> None:
    with PO.open("rb") as f:
        catalog = read_po(f, locale="ru")
    plurals = [e for e in catalog if isinstance(e.id, tuple)]
    assert plurals, "no plural msgid in the catalog"
    for entry in plurals:
        singular, plural = entry.id
        one, few, many = entry.string
        # the other placeholders ('{name}: stopped {n} …') are given as themselves
        names = {f for _, f, _, _ in string.Formatter().parse(singular + plural) if f}
        others = {f: "{" + f + "}" for f in names - {"n"}}
        for n, form in ((1, one), (21, one), (2, few), (34, few), (5, many), (11, many)):
            assert ntr(singular, plural, n, **others).render("ru") == fill(form, {"n": str(n)})
        assert ntr(singular, plural, 1, **others).render("en") == fill(singular, {"n": "1"})
        assert ntr(singular, plural, 2, **others).render("en") == fill(plural, {"n": "2"})


def test_figures_read_naturally_in_each_language() -> None:
    assert Duration(7800).render("en") == "2h 10m"
    assert Duration(7800).render("ru") == "2 ч 10 мин"
    assert Duration(300).render("ru") == "5 мин"
    assert Size(1.5 * 2**30).render("en") == "1.5 GiB"
    assert Size(1.5 * 2**30).render("ru") == "1,5 ГБ"
    assert Size(512).render("ru") == "512 Б"
    assert Number(2.25, 1).render("ru") == "2,2"


def test_nested_texts_render_in_the_readers_language_and_survive_json() -> None:
    inner = tr("cancelled")
    outer = tr("{what} in {folder}", what=inner, folder="/srv/shop")
    data = json.loads(json.dumps(outer.to_dict()))
    again = Text.from_dict(data)
    assert again == outer
    assert str(again) == "cancelled in /srv/shop"
    assert again.render("ru") != str(again)
    assert "/srv/shop" in again.render("ru")
    figures = Text.from_dict(
        json.loads(json.dumps(tr("{a} {b}", a=Size(2048), b=Duration(61)).to_dict()))
    )
    assert figures.render("en") == "2.0 KiB 1m 1s"


def test_words_from_outside_are_never_translated() -> None:
    assert verbatim("cancelled").render("ru") == "cancelled"


def test_the_bot_escapes_values_but_not_its_own_html() -> None:
    assert t("en", "⚠️ {reason}", reason="<b>") == "⚠️ &lt;b&gt;"
    assert t("en", "⚠️ {reason}", reason=Html("<b>x</b>")) == "⚠️ <b>x</b>"
    assert t("en", "⚠️ {reason}", reason=tr("{command} timed out", command="a<b")) == (
        "⚠️ a&lt;b timed out"
    )
    assert tn("en", "{n} B", "{n} B", 3) == "3 B"


def test_a_text_whose_values_do_not_fit_still_shows() -> None:
    assert Text("no such msgid {x}", {"y": 1}).render("ru") == "no such msgid {x}"
    assert Text("broken {", {}).render("en") == "broken {"


def test_languages_are_picked_in_order() -> None:
    assert pick_lang("ru", "en", "en") == "ru"
    assert pick_lang(None, "ru", "en") == "ru"
    assert pick_lang(None, None, "ru-RU") == "ru"
    assert pick_lang(None, None, "de") == "en"
    assert locale_lang({"LANG": "ru_RU.UTF-8"}) == "ru"
    assert locale_lang({"LANG": "C.UTF-8"}) == "en"
    assert locale_lang({"LC_ALL": "ru_RU.UTF-8", "LANG": "en_US.UTF-8"}) == "ru"
    assert locale_lang({}) == "en"
