"""Command output in the chat (#14): each command's output on the live card, its last 30
lines with '… N lines above' and the full build log on request (📎); a step's output seen
while it runs; a failed step's headline kept above its tail; the project's switch off
shows not one line of output. The test's state line is one line of progress with human
durations. Real builds (uv, a package whose build backend waits for the test), the real
PTB client against the local Bot API server."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.bot.progress import Card, shown
from controlplane.domain.kinds import ProgressKind
from controlplane.domain.verdict import Evidence
from controlplane.engine.testrun import live_line
from controlplane.i18n import Text
from controlplane.service.executor import Progress
from tests.support.botapi import Msg
from tests.support.chat import ADMIN, Chat
from tests.support.fixtures_release import Plant

BACKEND = """\
import os, sys, time
def get_requires_for_build_wheel(config_settings=None):
    print("slowpkg: waiting for the test", flush=True)
    deadline = time.time() + 120
    while not os.path.exists({flag!r}) and time.time() < deadline:
        time.sleep(0.1)
    for i in range(45):
        print(f"compiling part {{i}}", flush=True)
    print("fatal: mysql_config not found", file=sys.stderr, flush=True)
    raise SystemExit(1)
"""
PYPROJECT = """\
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]
[project]
name = "slowpkg"
version = "1.0"
"""


def slow_commit(plant: Plant, flag: Path) -> None:
    """A commit whose install builds `slowpkg`: it prints a line, waits for `flag`, then
    prints 46 more and fails, as a package missing its system library does."""
    plant.origin.commit(
        "slow",
        {
            "main.py": "print('hi')\n",
            "requirements.txt": "./slowpkg\n",
            "slowpkg/pyproject.toml": PYPROJECT,
            "slowpkg/backend.py": BACKEND.format(flag=str(flag)),
        },
    )
    plant.origin.push()


@pytest.fixture
def flag() -> Iterator[Path]:
    """A file the package's build waits for, in a folder the build's user can read (the
    run-as user when the tests run as root)."""
    folder = Path(tempfile.mkdtemp(prefix="cp-flag-"))
    folder.chmod(0o755)
    yield folder / "go"
    shutil.rmtree(folder, ignore_errors=True)


def deploy(phone: Chat) -> None:
    phone.send("/deploy shop")
    phone.press_text(phone.wait_text("Deploy #"), "Yes")


def cards(phone: Chat) -> list[Msg]:
    """The deploy's live card ('⏳ deploy shop', then how it ended)."""
    return [m for m in phone.api.bot_messages(ADMIN) if re.match(r"\S+ deploy shop", m.text)]


def ended_card(phone: Chat) -> Msg:
    """The deploy's card once it shows that the deploy failed."""
    phone.api.wait_for(lambda: any("❌" in m.text for m in cards(phone)), 120)
    return next(m for m in cards(phone) if "❌" in m.text)


def pre_lines(msg: Msg) -> list[str]:
    """The lines of the card's output block (<pre>)."""
    found = re.search(r"<pre>(.*?)</pre>", msg.html, re.S)
    return found.group(1).split("\n") if found else []


def install_output(plant: Plant) -> list[str]:
    """The install step's lines in the build log: what its commands printed (the log's
    '$ argv' lines are the build's own, not shown on the card)."""
    log = next(plant.settings.layout.builds_dir.glob("shop-1*.log")).read_text()
    section = log.split("== install ==\n", 1)[1].split("\nFAILED:", 1)[0]
    return [row for row in section.split("\n") if not row.startswith("$ ")]  # ours


@pytest.mark.timeout(300)
def test_output_on_streams_each_command_keeps_the_headline_and_gives_the_log(
    phone: Chat, flag: Path
) -> None:
    api, plant = phone.api, phone.plant
    slow_commit(plant, flag)
    plant.add()
    plant.ok("env", "set", "shop", *plant.local_index())
    deploy(phone)

    # the install's output reaches the card while the install still runs
    api.wait_for(lambda: any("slowpkg" in m.text and "⏳" in m.text for m in cards(phone)), 90)
    live = next(m for m in cards(phone) if "slowpkg" in m.text)
    assert "install: running…" in live.text, live.text
    assert "<pre>" in live.html
    flag.write_text("go")

    card = ended_card(phone)
    lines = pre_lines(card)
    shown = install_output(plant)
    assert 0 < len(lines) <= 30
    assert lines == shown[-30:], (lines, shown)
    hidden = len(shown) - len(lines)
    assert hidden > 0, "\n".join([*shown, "=====", card.text])
    assert f"install: … {hidden} lines above" in card.text, card.text
    # the line naming the package, dropped from the tail, is kept above it
    assert "what failed: error: Failed to build `slowpkg" in card.text, card.text
    assert "compiling part 44" in card.text and "compiling part 0\n" not in card.text
    assert "• install: FAILED" in card.text
    assert "running…" not in card.text  # each running step replaced by its summary

    # the full log on request
    phone.press_text(card, "📎")
    api.wait_for(lambda: any(m.document for m in api.bot_messages(ADMIN)), 20)
    name, data = next(m.document for m in api.bot_messages(ADMIN) if m.document)  # type: ignore[misc]
    assert name == "shop-build-1.log"
    assert b"compiling part 0\n" in data and b"slowpkg" in data


@pytest.mark.timeout(300)
def test_output_off_sends_not_one_line_of_output(phone: Chat, flag: Path) -> None:
    api, plant = phone.api, phone.plant
    flag.write_text("go")
    slow_commit(plant, flag)
    plant.add()
    plant.ok("env", "set", "shop", *plant.local_index())
    plant.ok("project", "set", "shop", "output", "off")
    phone.send("/projects")
    phone.press(phone.wait_text("Projects"), "p|shop")
    menu = phone.wait_text("shop · main")
    assert any("Output to chat: off" in label for label in phone.buttons(menu)), menu.reply_markup
    before = len(api.bot_messages(ADMIN))
    deploy(phone)
    card = ended_card(phone)
    assert "install: FAILED" in card.text, card.text
    time.sleep(2)  # anything sent after the card would be output
    after = api.bot_messages(ADMIN)[before:]
    everything = [m.html for m in after] + [
        json.dumps(c.params) for c in api.calls("editMessageText")
    ]
    for text in everything:
        assert "<pre>" not in text and "compiling part" not in text and "slowpkg" not in text
        assert "lines above" not in text and "what failed" not in text
    assert not any(m.document for m in after)
    assert "📎" not in json.dumps(card.reply_markup)


def state_lines(lang: str) -> list[str]:
    """A test run's card after three of its state lines (5 s, 120 s, then 125 s of 3
    days), each with a line of the app's output between them."""
    card = Card(op=None, output=True)  # type: ignore[arg-type]
    events = []
    for seq, elapsed in enumerate((5, 120, 125)):
        line: Text = live_line(Evidence("shop-test", elapsed=elapsed, state="RUNNING"), 259200)
        events.append(Progress(2 * seq + 1, 0.0, str(line), ProgressKind.STEP, line.to_dict()))
        events.append(Progress(2 * seq + 2, 0.0, f"app line {seq}", ProgressKind.LOG))
    card.take(events)
    assert list(card.lines) == ["app line 0", "app line 1", "app line 2"]
    return [shown(lang, s) for s in card.steps]


def test_the_test_state_is_one_line_of_progress_with_human_durations() -> None:
    assert state_lines("en") == ["RUNNING 2m 5s of 3d · restarts 0 · 0 B PSS · errors 0"], (
        state_lines("en")
    )
    assert state_lines("ru") == [
        "RUNNING 2 мин 5 с из 3 д · перезапусков: 0 · 0 Б PSS · ошибок: 0"
    ], state_lines("ru")
