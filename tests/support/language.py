"""Is a chat in the admin's language? The checks behind tests/scenarios/test_chat_languages.py.

`said(api, chat)` gathers everything the bot showed in a chat, from the calls the local Bot
API server received (every send, every edit of a live card, every button, every toast,
every document caption), so a text that was on screen only for a moment is checked too.

Russian: what may legitimately stay in Latin letters is taken out first (see `strip`):
<code> spans and `quoted` command lines; in <pre> blocks, the lines that are output of
the apps or the tools (their log files); words that are not the product's (project
names, commit subjects, branch and user names, what the admin typed); URLs, paths and
commands, KEY=VALUE and variable names, hashes, options, host and file names, versions;
the words of `ALLOWED`, the placeholders of a command's syntax and supervisord's state
names. What is left must hold no Latin word of three letters or more and no figure
written the English way ("0.4 s", "5m", "3 MB"). <pre> blocks are not taken out whole:
the bot shows its own tables (the status overview, the load screen) in them too.

English: no Cyrillic letter anywhere (but "Русский" in the 🌐 picker), and no catalog key
shown for its text.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.botapi import FakeBotAPI

# Latin words a Russian text may hold, each with its reason (lower case; matched whole).
ALLOWED: dict[str, str] = {
    # product and tool names: written the same in a Russian text
    "controlplane": "the product's name",
    "supervisord": "the process manager's name (a program)",
    "supervisor": "the process manager's name (its project)",
    "git": "the tool's name",
    "pip": "the tool's name",
    "venv": "Python's tool for virtual environments, by its name",
    "github": "a product's name",
    "telegram": "a product's name",
    "python": "a product's name",
    # abbreviations a Russian admin reads as they are
    "url": "abbreviation, written in Latin letters in Russian too",
    "ssh": "a protocol's name",
    "https": "a protocol's name",
    "http": "a protocol's name",
    "cpu": "abbreviation, written in Latin letters in Russian too",
    "pid": "a process id, as ps and top name it",
    "pss": "a measure of memory (proportional set size), as smem and /proc name it",
    "docker": "a product's name",
    "cgroup": "the Linux kernel's name for control groups",
    "blkio": "the Linux kernel's name for its cgroup v1 block I/O controller",
    "stdout": "the name of a process's output stream",
    "stderr": "the name of a process's error stream",
    "english": "a language named in its own words (the 🌐 picker)",
}
# Languages named in their own words (the 🌐 picker): in any chat, as they are.
LANGUAGE_NAMES = ("English", "Русский")
# supervisord's names of a process's state, upper case only, as supervisorctl shows them:
# the status screens show them as they are (observe/status.py says so).
STATES = frozenset(
    {"STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED", "FATAL", "UNKNOWN"}
)
# Metavariables of a command's syntax (/rollback NAME N), upper case only, as a man page
# and the CLI's --help write them in any language.
PLACEHOLDERS = frozenset({"NAME", "KEY", "VALUE", "SECONDS", "DURATION", "SLOT"})

CYRILLIC = re.compile(r"[\u0400-\u04ff]+")
LATIN_WORD = re.compile(r"(?<![^\W\d_])[A-Za-z]{3,}(?![^\W\d_])")
TAG = re.compile(r"<[^>]*>")
CODE = re.compile(r"<code\b[^>]*>.*?</code>", re.S | re.I)
BACKTICKS = re.compile(r"`[^`\n]+`")  # a command line quoted the Markdown way
PRE = re.compile(r"<pre\b[^>]*>(.*?)</pre>", re.S | re.I)
# Things that are names, not words, in any language; replaced by a space, in this order.
NAMES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("URL", re.compile(r"\b[a-z][a-z0-9+.-]*://\S*", re.I)),
    ("ssh address or e-mail", re.compile(r"\S+@\S+")),
    ("path or command", re.compile(r"\S*/\S*")),
    ("KEY=VALUE", re.compile(r"\S+=\S*")),
    ("variable name", re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")),
    ("file name", re.compile(r"\b[\w-]+\.(?:py|txt|log|toml|json|cfg|ini|lock|md|sh)\b")),
    ("hash", re.compile(r"\b[0-9a-f]{7,40}\b")),
    ("option", re.compile(r"(?<!\w)--?[A-Za-z][\w-]*")),
    ("host name", re.compile(r"\b[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|io|dev|sock|git)\b")),
)
# A figure written the English way: a Latin unit, or a decimal point ("0.4 s", "62.0 KiB",
# "90.8%", "5m", "3 MB"); Russian writes "0,4 с", "62,0 КиБ", "90,8 %", "5 мин", "3 МБ".
FIGURE = re.compile(
    r"(?<![\w.])(?:\d+\.\d+\s?(?:[KMGT]i?B|B|ms|s|m|h|d|%)|\d+\s?(?:[KMGT]i?B|ms|s|m|h|d))"
    r"(?![\w.])"
)
# a msgid-like key shown instead of its text (lower-case words joined by dots)
KEY = re.compile(r"(?<![\w./-])[a-z]+(?:\.[a-z_]+)+(?![\w./-])")
VERSION = re.compile(r"(?<![\w.])v?\d+(?:\.\d+)+(?![\w.])")


@dataclass(frozen=True)
class Said:
    """One thing the bot showed: where (a message, its buttons, a toast) and the text."""

    where: str
    text: str
    is_html: bool = True


@dataclass
class Outside:
    """Words the product did not write, so they stay as they are in any language."""

    phrases: set[str] = field(default_factory=set)  # names, subjects, what the admin typed
    lines: set[str] = field(default_factory=set)  # output of the apps and the tools

    def add_lines_of(self, paths: Iterable[Path]) -> None:
        """Every line of these logs (an app's output, a build's tool output), but the lines
        the build writes itself ('$ argv', '== step ==', '# build …', 'FAILED: …') and the
        output of its pre-flight check, a script of ours."""
        for path in paths:
            ours = False  # under the pre-flight check, a script of ours: its words are ours
            for line in path.read_text(errors="replace").splitlines():
                line = line.strip()
                if line.startswith("$ "):
                    ours = "<pre-flight check>" in line
                elif line.startswith(("== ", "# ", "FAILED:", "skipped:")):
                    ours = False
                elif len(line) >= 4 and not ours:
                    self.lines.add(line)

    def is_output(self, line: str) -> bool:
        """A line of a <pre> block that is output (maybe cut short with '…')."""
        line = line.strip().rstrip("…").strip()
        if not line:
            return True
        return any(
            line == known
            or (len(line) >= 12 and line in known)
            or (len(known) >= 12 and known in line)
            for known in self.lines
        )


def said(api: FakeBotAPI, chat: int) -> list[Said]:
    """Everything the bot showed in `chat` (and every toast), in order, without repeats."""
    seen: dict[tuple[str, str], Said] = {}

    def note(where: str, text: str, is_html: bool = True) -> None:
        if text and (where.split(" ")[0], text) not in seen:
            seen[(where.split(" ")[0], text)] = Said(where, text, is_html)

    for call in list(api.requests):
        p = call.params
        if call.status != 200:
            continue
        if call.method == "answerCallbackQuery":
            note("toast", str(p.get("text") or ""), is_html=False)
            continue
        if call.method not in ("sendMessage", "editMessageText", "editMessageReplyMarkup"):
            if call.method == "sendDocument" and str(p.get("chat_id")) == str(chat):
                note("caption", str(p.get("caption") or ""), p.get("parse_mode") == "HTML")
            continue
        if str(p.get("chat_id")) != str(chat):
            continue
        result = (call.response or {}).get("result") or {}
        mid = result.get("message_id", "?") if isinstance(result, dict) else "?"
        if "text" in p:
            note(f"message #{mid}", str(p["text"]), p.get("parse_mode") == "HTML")
        for label in button_labels(p.get("reply_markup")):
            note(f"button on #{mid}", label, is_html=False)
    return list(seen.values())


def button_labels(markup: Any) -> list[str]:
    if isinstance(markup, str):
        markup = json.loads(markup)
    rows = (markup or {}).get("inline_keyboard", []) if isinstance(markup, dict) else []
    return [str(b.get("text", "")) for row in rows for b in row]


def commands(api: FakeBotAPI, lang: str) -> list[Said]:
    """The command menu registered for `lang` ('' is the default, English one)."""
    code = "" if lang == "en" else lang
    return [
        Said(f"command /{c['command']}", str(c["description"]), is_html=False)
        for (_scope, language), listed in api.commands.items()
        if language == code
        for c in listed
    ]


def strip(item: Said, outside: Outside) -> str:
    """The text a Russian reader reads as the product's own words, names taken out."""
    text = item.text
    if item.is_html:
        text = CODE.sub(" ", text)
        text = PRE.sub(lambda m: _pre_lines(m.group(1), outside), text)
        text = html.unescape(TAG.sub(" ", text))
    text = BACKTICKS.sub(" ", text)
    for phrase in sorted(outside.phrases, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(phrase)}(?!\w)", " ", text)
    for _what, pattern in NAMES:
        text = pattern.sub(" ", text)
    return text


def not_russian(item: Said, outside: Outside) -> list[str]:
    """English in a text meant to be Russian: figures written the English way, then the
    Latin words of 3+ letters that are neither names nor in ALLOWED."""
    text = strip(item, outside)
    figures = [m.group(0).strip() for m in FIGURE.finditer(text)]
    text = VERSION.sub(" ", FIGURE.sub(" ", text))
    words = LATIN_WORD.findall(text)
    return figures + [
        w for w in words if w.lower() not in ALLOWED and w not in PLACEHOLDERS | STATES
    ]


def _pre_lines(body: str, outside: Outside) -> str:
    lines = html.unescape(TAG.sub("", body)).splitlines()
    kept = [line for line in lines if not outside.is_output(line)]
    return "\n" + html.escape("\n".join(kept), quote=False) + "\n"


def not_english(item: Said) -> list[str]:
    """What is not English in a text meant to be English: Cyrillic, or a catalog key
    shown instead of its text ('policy.notify', 'cmd.status')."""
    text = item.text
    for name in LANGUAGE_NAMES:
        text = text.replace(name, " ")
    return CYRILLIC.findall(text) + catalog_keys(item)


def catalog_keys(item: Said) -> list[str]:
    text = html.unescape(TAG.sub(" ", CODE.sub(" ", item.text))) if item.is_html else item.text
    for _what, pattern in NAMES:
        text = pattern.sub(" ", text)
    return KEY.findall(text)


def report(problems: list[tuple[Said, list[str]]], lang: str) -> str:
    """A readable list, one entry per message (its versions' words together, its last
    text shown): where, the offending words, the text."""
    what = "English in the Russian chat" if lang == "ru" else "not English in the English chat"
    merged: dict[str, tuple[Said, set[str], int]] = {}
    for item, words in problems:
        _last, seen, versions = merged.get(item.where, (item, set(), 0))
        merged[item.where] = (item, seen | set(words), versions + 1)
    out = [f"{len(merged)} messages, buttons or toasts with {what}:"]
    for where, (item, found, versions) in merged.items():
        shown = item.text if len(item.text) <= 700 else item.text[:700] + "…"
        more = f" ({versions} versions)" if versions > 1 else ""
        out.append(f"- {where}{more}: {sorted(found)}\n    {shown!r}")
    return "\n".join(out)
