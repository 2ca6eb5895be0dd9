"""The Russian docs stay in step with the English ones.

For each pair (docs/user-guide.md and .ru.md, docs/getting-started.md and .ru.md) every
CLI command (`controlplane project key`, as the CLI's own parser knows them), every
option (`--json`), every `/slash` command, every environment variable and every button
the English page names is named by the Russian one too, in the same section (the
headings pair up in order, with the same emoji); and the Russian page names no command
the English one has dropped. Buttons are compared twice: by
the bot's own catalog (a label the English page names, such as **🔐 Config**, must appear
in the Russian page as the bot shows it in Russian, **🔐 Переменные**), and section by
section by their emoji (a section whose English labels start with 🔑 has a Russian label
starting with 🔑). README.ru.md names every command of the README's first screen. The
prose is free: only these names are compared.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "controlplane" / "i18n" / "locale" / "ru" / "LC_MESSAGES" / "controlplane.po"

PAIRS = [
    ("docs/user-guide.md", "docs/user-guide.ru.md"),
    ("docs/getting-started.md", "docs/getting-started.ru.md"),
]

# An emoji that starts a label: symbols, pictographs, dingbats (✓ ✗), with or without
# the variation selector. Letters, digits, punctuation and • · … are not emoji.
EMOJI = r"(?:[\u2100-\u2bff\U0001f000-\U0001faff]\ufe0f?)"
LABEL_START = re.compile(rf"^{EMOJI}")
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")

ENV_VAR = re.compile(
    r"\b(?:CONTROLPLANE_[A-Z0-9_]*|TELEGRAM_[A-Z0-9_]+|ADMIN_CHAT_IDS|APP_DATA_DIR)"
)
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# /start, /newbot; not a path (/srv/shop, /data/logs) nor part of a URL or a word
SLASH = re.compile(r"(?<![\w/.:$~\-\]}>)])/([a-z][a-z_]*)\b(?![/.\w-])")
MAKE = re.compile(r"\bmake ([a-z][a-z-]*)\b")


# ---- the pages ----------------------------------------------------------------------


def read(rel: str) -> str:
    return (ROOT / rel).read_text(encoding="utf-8")


@dataclass
class Section:
    level: int
    title: str
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def sections(text: str) -> list[Section]:
    """The page cut at its headings (not at `#` lines inside code blocks); the text
    before the first heading is a section of level 0."""
    out = [Section(0, "(top)", [])]
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else HEADING.match(line)
        if heading:
            out.append(Section(len(heading.group(1)), heading.group(2).strip(), [line]))
        else:
            out[-1].lines.append(line)
    return out


# ---- what a page names --------------------------------------------------------------


@cache
def cli_tree() -> dict[str, frozenset[str]]:
    """Each top-level CLI command with its sub-commands (empty for a plain command), as
    the CLI's own parser has them."""
    import argparse

    from controlplane.cli.main import build_parser

    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    return {name: frozenset(subcommands(sub)) for name, sub in subcommands(build_parser()).items()}


def cli_commands(text: str) -> set[str]:
    """`controlplane deploy`, `controlplane project key`: every CLI command the text names,
    also as `controlplane start|stop|restart` and after `docker compose exec controlplane`."""
    tree = cli_tree()
    found: set[str] = set()
    for m in re.finditer(r"(?=\bcontrolplane[ \t]+([\w|-]+)(?:[ \t]+([\w|-]+))?)", text):
        for first in m.group(1).split("|"):
            if first not in tree:
                continue
            subs = tree[first]
            seconds = [s for s in (m.group(2) or "").split("|") if s in subs]
            if subs and seconds:
                found.update(f"controlplane {first} {s}" for s in seconds)
            else:
                found.add(f"controlplane {first}")
    return found


def slash_commands(text: str) -> set[str]:
    """`/start`, `/newbot`: not a folder the page also names as one (`/data` of `/data/logs`)."""
    names = {"/" + m.group(1) for m in SLASH.finditer(text)}
    return {n for n in names if not re.search(rf"(?<![\w/]){re.escape(n)}/", text)}


def env_vars(text: str) -> set[str]:
    return set(ENV_VAR.findall(text))


def options(text: str) -> set[str]:
    return set(OPTION.findall(text))


def make_targets(text: str) -> set[str]:
    return {f"make {t}" for t in MAKE.findall(code_text(text))}


def split_code(text: str) -> tuple[str, str]:
    """The page's prose (fenced blocks left out) and the contents of its fenced blocks."""
    prose: list[str] = []
    code: list[str] = []
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        (code if fenced else prose).append(line)
    return "\n".join(prose), "\n".join(code)


def code_text(text: str) -> str:
    """What the page shows as code: its fenced blocks and its `code spans`."""
    prose, code = split_code(text)
    return code + "\n" + "\n".join(re.findall(r"`([^`]+)`", prose))


def label_spans(text: str) -> Iterator[str]:
    """The places a page names a button: **bold**, `code`, table cells and headings in
    the prose, [brackets] in menus and mermaid charts; each split at ', ' and ' / '
    into single labels ("✅ Yes, do it" stays whole), a label wrapped over two lines
    joined again."""
    prose, code = split_code(text)
    spans: list[str] = []
    spans += re.findall(r"\*\*([^*]+?)\*\*", prose)
    spans += re.findall(r"`([^`]+)`", prose)
    spans += re.findall(r"\|([^|\n]+)(?=\|)", prose)
    spans += re.findall(r"^#{1,6}\s+(.*)$", prose, re.M)
    spans += re.findall(r"\[([^\[\]\n]+)\]", prose + "\n" + code)
    for span in spans:
        if "\n\n" in span:
            continue
        for part in re.split(rf",\s+(?={EMOJI})|\s+/\s+", " ".join(span.split())):
            if LABEL_START.match(part):
                yield part


def labels(text: str) -> set[str]:
    return set(label_spans(text))


def emoji_of(label: str) -> str:
    m = LABEL_START.match(label)
    assert m
    return m.group(0).replace("\ufe0f", "")


def emoji_counts(text: str) -> dict[str, int]:
    """How many different labels start with each emoji."""
    counts: dict[str, int] = {}
    for label in labels(text):
        counts[emoji_of(label)] = counts.get(emoji_of(label), 0) + 1
    return counts


# ---- the bot's own labels -----------------------------------------------------------


@cache
def buttons() -> dict[str, str]:
    """Each button of the bot (an emoji-led msgid with words after the emoji, no markup)
    with its Russian label, from the Russian catalog."""
    from babel.messages.pofile import read_po

    with CATALOG.open("rb") as f:
        catalog = read_po(f)
    out = {}
    for message in catalog:
        en, ru = message.id, message.string
        if not isinstance(en, str) or not isinstance(ru, str) or not ru or message.fuzzy:
            continue
        if not LABEL_START.match(en) or "<" in en or "\n" in en:
            continue
        words = re.sub(r"\{\w+\}", "", LABEL_START.sub("", en))
        if not re.search(r"[A-Za-z]{2}", words):
            continue  # "⚠️ {reason}", "🗑 {var}": no words of their own
        out[en] = ru
    return out


def pattern(label: str) -> re.Pattern[str]:
    """A catalog label as a regex: {placeholders} stand for any value."""
    parts = re.split(r"\{\w+\}", label)
    return re.compile(r"\S+?".join(re.escape(p) for p in parts))


# ---- the comparison -----------------------------------------------------------------


Kinds = list[tuple[str, Callable[[str], set[str]]]]

NAMES: Kinds = [
    ("CLI command", cli_commands),
    ("option", options),
    ("slash command", slash_commands),
    ("environment variable", env_vars),
    ("make target", make_targets),
]


def missing_names(en: str, ru: str, where: str, kinds: Kinds = NAMES) -> list[str]:
    """Every command, option, variable the English text names and the Russian one does not."""
    problems = []
    for kind, extract in kinds:
        for name in sorted(extract(en) - extract(ru)):
            problems.append(f"{where}: {kind} {name} is not named")
    return problems


def stale_names(en: str, ru: str, where: str) -> list[str]:
    """Every command, option, variable the Russian text names and the English one no longer
    does (renamed or removed there)."""
    problems = []
    for kind, extract in NAMES:
        for name in sorted(extract(ru) - extract(en)):
            problems.append(f"{where}: {kind} {name} is named, but not in the English page")
    return problems


def missing_buttons(en: str, ru: str, where: str) -> list[str]:
    """Every bot label of the English text (a catalog msgid) whose Russian label (its
    msgstr) the Russian text does not show."""
    problems = []
    ru_flat = " ".join(ru.split())
    for en_label in sorted(labels(en)):
        for msgid, msgstr in buttons().items():
            if pattern(msgid).fullmatch(en_label) and not pattern(msgstr).search(ru_flat):
                problems.append(
                    f"{where}: button {en_label!r} (in Russian {msgstr!r}) is not named"
                )
    return problems


def missing_emoji(en: str, ru: str, where: str) -> list[str]:
    """Fewer different labels starting with an emoji in the Russian text than in the
    English one (also labels the catalog does not know: 🌐, the notification icons)."""
    problems = []
    en_counts, ru_counts = emoji_counts(en), emoji_counts(ru)
    for emoji, n in sorted(en_counts.items()):
        if ru_counts.get(emoji, 0) < n:
            en_names = sorted(x for x in labels(en) if emoji_of(x) == emoji)
            ru_names = sorted(x for x in labels(ru) if emoji_of(x) == emoji)
            problems.append(
                f"{where}: {ru_counts.get(emoji, 0)} label(s) starting with {emoji}, "
                f"English has {n}: English {en_names}, Russian {ru_names}"
            )
    return problems


def shape(section: Section) -> tuple[int, list[str]]:
    return section.level, [emoji_of(x) for x in re.findall(EMOJI, section.title)]


def first_difference(en: list[Section], ru: list[Section]) -> str:
    """Where two lists of headings stop pairing up (by level and emoji)."""
    for e, r in zip(en, ru, strict=False):
        if shape(e) != shape(r):
            return f"English {'#' * e.level} {e.title!r} / Russian {'#' * r.level} {r.title!r}"
    longer, which = (en, "English") if len(en) > len(ru) else (ru, "Russian")
    extra = longer[min(len(en), len(ru))]
    return f"{which} {'#' * extra.level} {extra.title!r}, the other page has no more headings"


def compare(en_rel: str, ru_rel: str) -> list[str]:
    """What the Russian page misses, section by section (the headings pair up in order);
    the whole page at once when the headings do not pair up."""
    en_text, ru_text = read(en_rel), read(ru_rel)
    en_secs, ru_secs = sections(en_text), sections(ru_text)
    if len(en_secs) != len(ru_secs):
        return [
            f"{ru_rel}: {len(ru_secs) - 1} headings, {en_rel} has {len(en_secs) - 1}; "
            f"they part at {first_difference(en_secs, ru_secs)}",
            *missing_names(en_text, ru_text, ru_rel),
            *stale_names(en_text, ru_text, ru_rel),
            *missing_buttons(en_text, ru_text, ru_rel),
        ]
    problems: list[str] = []
    for en_sec, ru_sec in zip(en_secs, ru_secs, strict=True):
        here = f"{ru_rel}, section {ru_sec.title!r} (English {en_sec.title!r})"
        if shape(en_sec) != shape(ru_sec):
            problems.append(
                f"{here}: heading (level, emoji) {shape(ru_sec)}, English {shape(en_sec)}"
            )
        problems += missing_names(en_sec.text, ru_sec.text, here)
        problems += stale_names(en_sec.text, ru_sec.text, here)
        problems += missing_buttons(en_sec.text, ru_sec.text, here)
        problems += missing_emoji(en_sec.text, ru_sec.text, here)
    return problems


def first_screen(text: str) -> str:
    """The README up to its second `## ` heading: what it is and how to run it."""
    cuts = [m.start() for m in re.finditer(r"^## ", text, re.M)]
    return text[: cuts[1]] if len(cuts) > 1 else text


# ---- the tests ----------------------------------------------------------------------


@pytest.mark.parametrize(("en", "ru"), PAIRS, ids=[ru for _, ru in PAIRS])
def test_russian_page_names_everything_the_english_one_does(en: str, ru: str) -> None:
    problems = compare(en, ru)
    assert not problems, f"{ru} is out of step with {en}:\n" + "\n".join(problems)


def test_russian_readme_names_the_commands_of_the_first_screen() -> None:
    en, ru = first_screen(read("README.md")), read("README.ru.md")
    kinds = [k for k in NAMES if k[0] != "slash command"]
    problems = missing_names(en, ru, "README.ru.md", kinds)
    if "supervisorctl" in en and "supervisorctl" not in ru:
        problems.append("README.ru.md: supervisorctl is not named")
    assert not problems, "README.ru.md is out of step with README.md's first screen:\n" + (
        "\n".join(problems)
    )


def test_readmes_link_each_other() -> None:
    en_top = read("README.md").split("\n## ", 1)[0]
    ru_top = read("README.ru.md").split("\n## ", 1)[0]
    assert "(README.ru.md)" in en_top, "README.md: no link to README.ru.md above its first section"
    assert "(README.md)" in ru_top, "README.ru.md: no link to README.md above its first section"


def test_the_extractors_see_what_they_should() -> None:
    """The check itself: it finds names where the guides put them, so a pass means something."""
    page = (
        "Press **🔐 Config** → **➕ Add KEY=VALUE**; `/status NAME`, /skip for main.\n"
        "| ▶️ Start, ⏹ Stop, 🔄 Restart | x |\n"
        "```sh\ndocker compose exec controlplane controlplane project key shop --json\n"
        "controlplane start|stop NAME --test\n```\n"
        "Paths /srv/shop and /data/logs and https://x/y are not commands. CONTROLPLANE_LANG=ru\n"
    )
    assert cli_commands(page) == {
        "controlplane project key",
        "controlplane start",
        "controlplane stop",
    }
    assert options(page) == {"--json", "--test"}
    assert slash_commands(page) == {"/status", "/skip"}
    assert env_vars(page) == {"CONTROLPLANE_LANG"}
    assert {"🔐 Config", "➕ Add KEY=VALUE", "▶️ Start", "⏹ Stop", "🔄 Restart"} <= labels(page)
    assert "🔐 Config" in buttons() and "⚠️ {reason}" not in buttons()
    assert pattern("✅ Promote #{n}").fullmatch("✅ Promote #8")
