"""The one catalog: the bot's texts and the status screen's, in both languages."""

from __future__ import annotations

import string

from controlplane.bot.texts import t as bot_t
from controlplane.domain.texts import CATALOG, EN, LANGS, RU, t


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_both_languages_have_every_key_with_the_same_placeholders() -> None:
    assert set(CATALOG) == set(LANGS)
    assert set(EN) == set(RU)
    assert [k for k in EN if fields(EN[k]) != fields(RU[k])] == []


def test_status_texts_are_plain_and_the_bot_escapes_what_it_fills_in() -> None:
    assert t("en", "status.since", op="deploy", duration="3s") == "deploy for 3s"
    assert t("ru", "status.up", duration="2h 3m") == "работает 2h 3m"
    assert t("fr", "status.due") == "due now"  # an unknown language reads English
    assert t("en", "status.failed", error="<b>") == "failed: <b>"
    assert bot_t("en", "status.failed", error="<b>") == "failed: &lt;b&gt;"
    assert bot_t("ru", "logs.title", name="a<b", slot="prod", n=3) == (
        "<b>a&lt;b</b> prod: последние 3 строк"
    )
