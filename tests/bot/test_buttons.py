"""Every button pressed as a user would (issue #14 "every button proven"): the new-commit
notice's Test, Deploy and History, the test duration buttons, Extend, Discard, the load
button, start/stop/restart and removing a project; each test asserts what the user then
sees and what changed on the box.

The real python-telegram-bot client against the local Bot API server, the real engine,
git, venvs and supervisord behind it. Pressed elsewhere already: /load's screen
(test_load_screen.py), the Yes of every confirmation pressed twice (test_confirmations.py),
Cancel (test_verdict_card.py).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import pytest

from tests.support.botapi import Msg
from tests.support.chat import ADMIN, Chat
from tests.support.fixtures_release import APP, Plant, add_shop

PROD_SECRET = "sk-prod-0123456789"  # add_shop's prod API_KEY
DAYS = itertools.count(1)  # each poll a day later than the one before


def commit(rig: Plant, version: str, subject: str) -> str:
    """A commit of the sample app with its own subject."""
    files = {"main.py": APP, "VERSION": version + "\n", "requirements.txt": "tinylib\n"}
    sha = rig.origin.commit(subject, files)
    rig.origin.push()
    return sha


def current(phone: Chat, msg: Msg) -> Msg:
    """The message as the chat shows it now (after the bot's edits)."""
    return next(m for m in phone.api.bot_messages(ADMIN) if m.message_id == msg.message_id)


def arrives(phone: Chat, after: int, seen: Callable[[Msg], bool], timeout: float = 60) -> Msg:
    """The first message after the first `after` ones that `seen` accepts, once it comes."""
    found: list[Msg] = []

    def look() -> bool:
        found[:] = [m for m in phone.api.bot_messages(ADMIN)[after:] if seen(m)]
        return bool(found)

    phone.api.wait_for(look, timeout)
    return found[0]


def becomes(phone: Chat, msg: Msg, needle: str, timeout: float = 30) -> Msg:
    """The message once the bot has edited it to say `needle`."""
    phone.api.wait_for(lambda: needle in current(phone, msg).text, timeout)
    return current(phone, msg)


def toast(phone: Chat, msg: Msg, data: str) -> str:
    """Press a button of `msg`; the toast it answers with."""
    return str(phone.answered(phone.press(msg, data), timeout=30).get("text", ""))


def project_menu(phone: Chat) -> Msg:
    """shop's menu, opened from a fresh /projects listing."""
    count = len(phone.api.bot_messages(ADMIN))
    phone.send("/projects")
    listing = arrives(phone, count, lambda m: "Projects" in m.text, 20)
    phone.press(listing, "p|shop")
    return becomes(phone, listing, "shop · main")


def settled(rig: Plant, timeout: float = 240) -> None:
    """The project's operation (if any) has ended well."""
    op = rig.stack.executor.busy("shop")
    if op is not None:
        assert op.wait(timeout=timeout) and op.state == "ok", op.result


def poll(rig: Plant, phone: Chat) -> Msg:
    """The poller checks the branch now; the 🆕 notice it leads to."""
    count = len(phone.api.bot_messages(ADMIN))
    rig.stack.poller.poll_once(now=time.time() + 86400 * next(DAYS))  # due by then
    return arrives(phone, count, lambda m: m.text.startswith("🆕"))


@pytest.mark.timeout(600)
def test_the_new_commit_notice_names_each_commit_and_its_buttons_act(phone: Chat) -> None:
    rig, store = phone.plant, phone.plant.stack.store
    rig.commit("1")
    add_shop(rig)
    rig.ok("project", "set", "shop", "test-duration", "5")
    rig.ok("poll", "shop", "1m")
    rig.ok("deploy", "shop")
    rig.wait_report("prod", "1", timeout=60)

    # two commits in one push: both named, newest first, the subject escaped and redacted
    two = commit(rig, "2", "version 2")
    three = commit(rig, "3", f"version 3 <i>&</i> {PROD_SECRET}")
    notice = poll(rig, phone)  # the subject shown as typed: escaped, not italics
    assert notice.text.splitlines() == [
        "🆕 shop: 2 new commits on main:",
        f"#3 {three[:7]} version 3 <i>&</i> ***",
        f"#2 {two[:7]} version 2",
    ], notice.text
    assert phone.buttons(notice) == {
        "🧪 Test #3": "tr|shop||3",
        "🚀 Deploy #3": "dp|shop|3|+",
        "📜 History": "rb|shop|0|+",
    }
    settled(rig)

    # 🧪 Test #3: the test slot runs #3 for the project's test duration
    assert toast(phone, notice, "tr|shop||3") == "Started"
    assert rig.wait_report("test", "3", timeout=120)["slot"] == "test"
    settled(rig)
    assert store.state("shop").test == 3

    # the next notice names only what came since: #4; its 📜 History is the commit list
    four = commit(rig, "4", "version 4")
    single = poll(rig, phone)
    assert single.text == f"🆕 shop: new commit #4 {four[:7]} on main: version 4", single.text
    settled(rig)
    phone.press(single, "rb|shop|0|+")
    # a new message: the notice keeps its list of commits
    picker = phone.wait_text("Roll back shop prod to which commit?")
    assert picker.message_id != single.message_id
    listed = [d for d in phone.buttons(picker).values() if d.startswith("rc|shop|")]
    assert listed[:4] == ["rc|shop|4", "rc|shop|3", "rc|shop|2", "rc|shop|1"], listed

    # 🚀 Deploy #3 on the first notice: its confirmation names #3 (not the head, #4)
    phone.press(notice, "dp|shop|3|+")
    ask = phone.wait_text("Deploy #3 ")
    assert ask.message_id != notice.message_id
    now = {m.message_id: m.text for m in phone.api.bot_messages(ADMIN)}
    assert now[notice.message_id] == notice.text and now[single.message_id] == single.text
    yes = next(v for k, v in phone.buttons(ask).items() if "Yes" in k)
    assert yes.startswith("dp!|shop|3|")
    assert toast(phone, ask, yes) == "Started"
    rig.wait_report("prod", "3", timeout=120)
    settled(rig)
    assert store.state("shop").prod == 3

    # policy test: the notice says the test runs, and offers no 🧪 of its own
    rig.ok("project", "set", "shop", "policy", "test")
    five = commit(rig, "5", "version 5")
    auto = poll(rig, phone)
    assert auto.text.splitlines() == [
        f"🆕 shop: new commit #5 {five[:7]} on main: version 5",
        "Testing #5 now (policy: test).",
    ], auto.text
    assert list(phone.buttons(auto).values()) == ["dp|shop|5|+", "rb|shop|0|+"]
    settled(rig)
    assert store.state("shop").test == 5

    # a Deploy of a number the project does not have (a forged or very old button)
    phone.api.user_presses(ADMIN, auto.message_id, "dp|shop|99", user_id=ADMIN, forged=True)
    becomes(phone, auto, "That button is out of date; open the menu again.")
    assert store.state("shop").prod == 3


@pytest.mark.timeout(400)
def test_duration_buttons_extend_and_discard(phone: Chat) -> None:
    rig, store = phone.plant, phone.plant.stack.store
    rig.commit("1")
    add_shop(rig)

    # 🧪 Test deploy → the durations; 30 s starts a test of the head with a live card
    menu = project_menu(phone)
    phone.press(menu, "td|shop")
    durations = becomes(phone, menu, "How long should the test of shop run?")
    assert {"tr|shop|30", "tr|shop|60", "tr|shop|300", "tr|shop|900"} <= set(
        phone.buttons(durations).values()
    )
    count = len(phone.api.bot_messages(ADMIN))
    assert toast(phone, durations, "tr|shop|30") == "Started"
    card = arrives(phone, count, lambda m: "ex|shop|60" in phone.buttons(m).values(), 120)
    rig.box.wait_state("shop-test", ("RUNNING",), timeout=120)

    # ⏳ Extend +60s: the test has 60 s more than its 30 s (at most 90 s left)
    said = toast(phone, card, "ex|shop|60")
    assert said.startswith("shop: test extended by 60 s ("), said
    left = int(said.split("(")[1].split(" ")[0])
    assert 60 < left <= 90, said

    phone.press_text(card, "Cancel")
    phone.api.wait_for(lambda: "ds|shop" in phone.buttons(current(phone, card)).values(), 60)
    verdict = current(phone, card)
    settled(rig)
    assert store.state("shop").test == 1

    # 🗑 Discard on the verdict: the test slot's program is gone, its state cleared
    assert toast(phone, verdict, "ds|shop") == "Started"
    phone.wait_text("test of #1 discarded", timeout=60)
    settled(rig)
    assert rig.box.client.find("shop-test") is None
    assert store.state("shop").test is None
    assert rig.box.client.find("shop-prod") is None  # prod untouched: never deployed


@pytest.mark.timeout(400)
def test_start_stop_restart_and_remove(phone: Chat) -> None:
    rig, client = phone.plant, phone.plant.box.client
    rig.commit("1")
    add_shop(rig)
    rig.ok("deploy", "shop")
    first = int(str(rig.wait_report("prod", "1", timeout=60)["pid"]))
    assert client.info("shop-prod").pid == first

    # 🔄 Restart: a new process, running
    menu = project_menu(phone)
    assert toast(phone, menu, "ss|shop|prod|restart") == "Started"
    settled(rig)
    rig.box.wait_state("shop-prod", ("RUNNING",), timeout=60)
    second = client.info("shop-prod").pid
    assert second not in (0, first)

    # ⏹ Stop asks first; its Yes stops prod
    phone.press(menu, "ss|shop|prod|stop")
    ask = becomes(phone, menu, "Stop shop prod?")
    assert toast(phone, ask, next(v for k, v in phone.buttons(ask).items() if "Yes" in k)) == (
        "Started"
    )
    settled(rig)
    assert client.info("shop-prod").state == "STOPPED"
    assert client.info("shop-prod").pid == 0

    # ▶️ Start: running again, as a new process
    menu = project_menu(phone)
    assert toast(phone, menu, "ss|shop|prod|start") == "Started"
    settled(rig)
    rig.box.wait_state("shop-prod", ("RUNNING",), timeout=60)
    assert client.info("shop-prod").pid not in (0, first, second)

    # 🗑 Remove project asks first; its Yes removes the project, its programs and its data
    phone.press(menu, "rm|shop")
    ask = becomes(phone, menu, "Remove shop?")
    phone.press(ask, next(v for k, v in phone.buttons(ask).items() if "Yes" in k))
    gone = becomes(phone, ask, "shop removed.")
    assert list(phone.buttons(gone).values()) == ["pl"]
    assert client.find("shop-prod") is None and client.find("shop-test") is None
    assert rig.stack.store.list_projects() == []
    assert not rig.settings.project_dir("shop").exists()


def test_the_load_button_shows_the_load_and_goes_back(phone: Chat) -> None:
    count = len(phone.api.bot_messages(ADMIN))
    phone.send("/menu")
    menu = arrives(phone, count, lambda m: "choose what to do" in m.text, 20)
    phone.press(menu, "ld")
    load = becomes(phone, menu, "CPU")
    assert "memory" in load.text and "disk" in load.text, load.text
    assert list(phone.buttons(load).values()) == ["m"]
    phone.press(load, "m")
    back = becomes(phone, load, "choose what to do")
    assert "ld" in phone.buttons(back).values()
