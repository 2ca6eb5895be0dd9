"""🚀 Run a third-party repository from the chat: the form (each answer checked, /skip for
the defaults, nothing written before ▶️ Launch), the app run with its variables in the
test slot and in prod, the project then listed as third-party with the normal menu, a
repository that fails to build, removal. The real PTB client against the local Bot API
server, real git over a local origin, a real supervisord."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.botapi import Msg
from tests.support.chat import ADMIN, PROD_KEY, TEST_KEY, TOKEN, Chat
from tests.support.fixtures_release import Plant

# A stranger's app: writes the variables it sees to its data folder, then stays up.
ENV_APP = """\
import json, os, pathlib, time
data = pathlib.Path(os.environ["APP_DATA_DIR"])
keys = ("API_KEY", "MODE", "GREETING", "CONTROLPLANE_SLOT")
(data / "env.json.tmp").write_text(json.dumps({k: os.environ.get(k) for k in keys}))
os.replace(data / "env.json.tmp", data / "env.json")
print("started with MODE=" + os.environ.get("MODE", ""), flush=True)
while True:
    time.sleep(3600)
"""


def stranger_repo(plant: Plant, *, requirements: str | None = None) -> None:
    """The origin holds the env app as bot/run.py (not main.py: the entry is asked)."""
    files = {"bot/run.py": ENV_APP}
    if requirements is not None:
        files["requirements.txt"] = requirements
    plant.origin.commit("the stranger's app", files)
    plant.origin.push()


def env_seen(plant: Plant, slot: str, timeout: float = 30) -> dict[str, str | None]:
    """What the app wrote of its variables in its data folder, once it has."""
    path = plant.settings.project_dir("shop") / "shared" / slot / "env.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return dict(json.loads(path.read_text()))
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
    raise AssertionError(f"the app wrote no {path}")


def open_form(phone: Chat) -> None:
    phone.send("/start")
    phone.press_text(phone.wait_text("choose what to do"), "third-party")
    phone.wait_text("to run.")


def answer(phone: Chat, text: str, expect: str) -> Msg:
    """Send an answer, wait for the next question (or the refusal) holding `expect`."""
    before = phone.last().message_id
    phone.send(text)
    found: list[Msg] = []

    def seen() -> bool:
        found[:] = [
            m for m in phone.api.bot_messages(ADMIN) if m.message_id > before and expect in m.text
        ]
        return bool(found)

    phone.api.wait_for(seen, 30)
    return found[-1]


def press_for(phone: Chat, msg: Msg, label: str, expect: str) -> Msg:
    """Press a button, wait for a newer message holding `expect`."""
    before = phone.last().message_id
    phone.press_text(msg, label)
    found: list[Msg] = []

    def seen() -> bool:
        found[:] = [
            m for m in phone.api.bot_messages(ADMIN) if m.message_id > before and expect in m.text
        ]
        return bool(found)

    phone.api.wait_for(seen, 30)
    return found[-1]


def leaks(phone: Chat, *secrets: str) -> list[str]:
    sent = [c for c in phone.api.requests if c.method != "getUpdates"]
    blobs = [(c.method, json.dumps(c.params, default=str)) for c in sent]
    return [f"{method}: {s}" for method, blob in blobs for s in secrets if s in blob]


@pytest.mark.timeout(300)
def test_a_launch_in_the_test_slot_with_its_variables(phone: Chat) -> None:
    plant, api = phone.plant, phone.api
    stranger_repo(plant)
    plant.add("other")  # a project of our own, to take its folder and list beside

    open_form(phone)
    answer(phone, "javascript:alert(1)", "bad repository URL")
    answer(phone, plant.origin.url, "or /skip for shop")
    answer(phone, "Bad Name", "bad project name")
    answer(phone, "other", "A project named other exists already")
    answer(phone, "/skip", "prod variables")
    prod_msg = phone.last().message_id + 1
    answer(phone, f"API_KEY={PROD_KEY}\nMODE=production\nGREETING=hello", "test variables")
    assert next(m for m in api.chat(ADMIN) if m.message_id == prod_msg).deleted
    answer(phone, "no equals sign", "write KEY=VALUE")
    answer(phone, f"API_KEY={TEST_KEY}\nMODE=testing", "entry file")
    answer(phone, "run.sh", "bad entry")
    answer(phone, "bot/run.py", "folder")
    answer(phone, str(plant.box.base / "live" / "other"), "project other uses it already")
    answer(phone, "/skip", "new commits")
    answer(phone, "every so often", "bad poll interval")
    answer(phone, "5m", "test run lasts")
    answer(phone, "8d", "from 5s to 7d")
    answer(phone, "5s", "Command output")
    mode = answer(phone, "/skip", "test slot, or straight in prod")
    assert [p.name for p in plant.stack.service.query.projects()] == ["other"]  # nothing yet

    phone.press_text(mode, "Test")
    summary = phone.wait_text("Launch shop?")
    assert "MODE=production, GREETING=hello" not in summary.text  # sorted by name
    assert "GREETING=hello, MODE=production" in summary.text
    assert "API_KEY=sk-…0123" in summary.text and PROD_KEY not in summary.text
    assert "API_KEY=sk-…4567, MODE=testing" in summary.text
    apps = plant.settings.layout.app_folder("shop")
    assert f"Folder: {apps}" in summary.text and "Entry: bot/run.py" in summary.text
    assert "Poll: 5m" in summary.text and "output to chat: on" in summary.text
    assert "First run: 🧪 the test slot" in summary.text
    assert [p.name for p in plant.stack.service.query.projects()] == ["other"]

    phone.press_text(summary, "Launch")
    phone.wait_text("Launched shop: numbered 1 commit", timeout=60)
    phone.wait_text("Test of shop #1 passed", timeout=120)
    assert env_seen(plant, "test") == {
        "API_KEY": TEST_KEY,
        "MODE": "testing",
        "GREETING": "hello",
        "CONTROLPLANE_SLOT": "test",
    }
    project = plant.stack.service.query.project("shop")
    assert project.third_party and project.poll == 300 and project.test_duration == 5
    assert project.entry == "bot/run.py" and project.path == str(apps)
    # ▶️ Launch acts once: its buttons are gone, a press of it again launches nothing
    now = next(m for m in api.bot_messages(ADMIN) if m.message_id == summary.message_id)
    assert not phone.buttons(now)
    again = api.user_presses(
        ADMIN, summary.message_id, phone.buttons(summary)["▶️ Launch"], user_id=ADMIN, forged=True
    )
    phone.answered(again)
    assert [p.name for p in plant.stack.service.query.projects()] == ["other", "shop"]

    # listed as third-party, with the menu of any project
    phone.send("/projects")
    listing = phone.wait_text("Projects: 1–2 of 2")
    labels = list(phone.buttons(listing))
    assert any(label.endswith("shop 🌍") for label in labels), labels
    assert any(label.endswith("other") for label in labels), labels
    phone.press(listing, "p|shop")
    menu = phone.wait_text("A third-party repository")
    for label in ("Status", "Logs", "Deploy to prod", "Rollback", "Config", "Remove project"):
        assert any(label in k for k in phone.buttons(menu)), label
    assert leaks(phone, PROD_KEY, TEST_KEY, TOKEN) == []


@pytest.mark.timeout(300)
def test_a_launch_in_prod_then_removed_and_one_that_fails_to_build(phone: Chat) -> None:
    plant = phone.plant
    stranger_repo(plant)

    # the name taken between the summary and ▶️ Launch: asked again, then the summary
    # again; ✖️ Cancel there writes nothing
    open_form(phone)
    answer(phone, plant.origin.url, "or /skip for shop")
    for reply in ("/skip", "/skip", "/skip", "bot/run.py", "/skip", "/skip", "/skip"):
        phone.send(reply)
    mode = answer(phone, "off", "straight in prod")
    summary = press_for(phone, mode, "Prod", "Launch shop?")
    plant.add("shop")  # our own project takes the name meanwhile
    again = press_for(phone, summary, "Launch", "A project named shop exists already")
    assert "or /skip for shop" in again.text
    mode = answer(phone, "other", "straight in prod")  # the other answers were kept
    summary = press_for(phone, mode, "Prod", "Launch other?")
    assert "Entry: bot/run.py" in summary.text and "output to chat: off" in summary.text
    phone.press_text(summary, "Cancel")
    phone.wait_text("Cancelled: nothing was launched.")
    assert [p.name for p in plant.stack.service.query.projects()] == ["shop"]
    plant.ok("project", "remove", "shop")
    assert plant.stack.service.query.projects() == []

    # prod: the app sees its prod variables; output off was kept
    open_form(phone)
    answer(phone, plant.origin.url, "or /skip for shop")
    answer(phone, "/skip", "prod variables")
    answer(phone, f"API_KEY={PROD_KEY}\nMODE=production", "test variables")
    for reply in ("/skip", "bot/run.py", "/skip", "/skip", "/skip"):
        phone.send(reply)
    mode = answer(phone, "off", "straight in prod")
    summary = press_for(phone, mode, "Prod", "Launch shop?")
    assert "First run: 🚢 prod" in summary.text and "output to chat: off" in summary.text
    phone.press_text(summary, "Launch")
    phone.wait_text("deployed to #1", timeout=120)
    assert env_seen(plant, "prod")["API_KEY"] == PROD_KEY
    assert env_seen(plant, "prod")["MODE"] == "production"
    assert plant.box.wait_state("shop-prod", ("RUNNING",)).pid > 0
    assert plant.stack.service.query.project("shop").output is False

    # removed from its menu: nothing left running, the name free again
    phone.send("/projects")
    phone.press(phone.wait_text("Projects: 1–1 of 1"), "p|shop")
    menu = phone.wait_text("A third-party repository")
    phone.press_text(menu, "Remove project")
    phone.press_text(phone.wait_text("Remove shop?"), "Yes")
    phone.wait_text("shop removed.", timeout=60)
    assert plant.stack.service.query.projects() == []
    assert plant.box.client.find("shop-prod") is None

    # a repository whose build fails: the chat says so, nothing runs
    plant.origin.commit("needs a missing package", {"requirements.txt": "nosuchpackage-q7\n"})
    plant.origin.push()
    open_form(phone)
    answer(phone, plant.origin.url, "or /skip for shop")
    answer(phone, "/skip", "prod variables")
    answer(phone, "\n".join(plant.local_index()), "test variables")
    for reply in ("/skip", "bot/run.py", "/skip", "/skip", "/skip"):
        phone.send(reply)
    mode = answer(phone, "/skip", "straight in prod")
    phone.press_text(press_for(phone, mode, "Prod", "Launch shop?"), "Launch")
    phone.wait_text("shop: build of #2 failed", timeout=120)
    card = phone.wait_text("nosuchpackage-q7")  # the live card shows why
    assert "Deploy" in card.text or "deploy" in card.text
    state = plant.box.client.find("shop-prod")
    assert state is None or state.state != "RUNNING"
    assert not Path(plant.settings.layout.app_folder("shop"), "bot").exists()
    assert leaks(phone, PROD_KEY, TOKEN) == []
