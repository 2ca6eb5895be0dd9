"""The service facade (controlplane/service/facade.py): the one way in for the bot and the
CLI. Whether a project is busy is decided in the executor, so a remove pressed while an
operation runs is refused there, from the chat and from the CLI alike, with nothing removed.
Real parts: serve's stack in this process (its control socket for the CLI), a real
supervisord, the real bot against the local Bot API server, a real git origin."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from controlplane.errors import NotFound
from controlplane.service.executor import Operation
from controlplane.service.facade import ServeDown, Service
from controlplane.settings import Settings
from tests.support.botapi import Msg
from tests.support.chat import ADMIN, Chat
from tests.support.fixtures_release import ROOT, Plant


def cli(plant: Plant, *args: str) -> subprocess.Popen[str]:
    """The CLI started (not waited for), as the admin runs it on the box."""
    return subprocess.Popen(
        [sys.executable, "-m", "controlplane", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**plant.box.env, "CONTROLPLANE_ALLOW_FILE_URLS": "1"},
        cwd=ROOT,
    )


def hold(plant: Plant, name: str) -> tuple[Operation, threading.Event]:
    """An operation of the project that runs until the event is set (a build that hangs)."""
    release = threading.Event()

    def work(op: Operation) -> str:
        op.step("install requirements")
        release.wait(120)
        return "built"

    return plant.stack.executor.submit(name, "deploy", work), release


def shown(phone: Chat, message_id: int, needle: str) -> Msg:
    """The message once its text holds `needle` (an edit of it)."""
    found: list[Msg] = []

    def seen() -> bool:
        found[:] = [
            m
            for m in phone.api.bot_messages(ADMIN)
            if m.message_id == message_id and needle in m.text
        ]
        return bool(found)

    phone.api.wait_for(seen, 20)
    return found[0]


def open_remove(phone: Chat) -> Msg:
    """Projects → shop → 🗑 Remove project: the confirmation, its Yes not pressed yet."""
    seen = len(phone.api.bot_messages(ADMIN))
    phone.send("/projects")
    phone.api.wait_for(lambda: len(phone.api.bot_messages(ADMIN)) > seen)
    listing = phone.last()
    phone.press(listing, "p|shop")
    phone.press_text(shown(phone, listing.message_id, "shop · main"), "Remove project")
    return shown(phone, listing.message_id, "Remove shop?")


@pytest.mark.timeout(300)
def test_remove_while_busy_is_refused_from_the_chat_and_the_cli_at_once(phone: Chat) -> None:
    rig = phone.plant
    rig.commit("1")
    rig.add()
    project_dir = rig.settings.layout.project_dir("shop")
    confirmation = open_remove(phone)
    operation, release = hold(rig, "shop")
    try:
        # both at the same time: the CLI's request and the chat's Yes
        removing = cli(rig, "project", "remove", "shop")
        pressed = phone.press_text(confirmation, "Yes")
        out, err = removing.communicate(timeout=60)
        toast = str(phone.answered(pressed, timeout=30).get("text"))
        assert removing.returncode == 1, out + err
        assert "busy: deploy since" in err and err.strip().count("\n") == 0, err
        assert toast.startswith("busy: deploy since"), toast
        # nothing removed: the project, its mirror and numbered commits are all there
        assert rig.stack.store.get_project("shop").name == "shop"
        assert project_dir.joinpath("mirror.git").is_dir()
        assert rig.stack.store.commits("shop")
        assert rig.stack.executor.busy("shop") is operation
    finally:
        release.set()
    assert operation.wait(30) and operation.ok

    # the operation has ended: a remove works (from the chat; its old Yes was used up)
    again = phone.press_text(open_remove(phone), "Yes")
    assert phone.answered(again, timeout=60).get("text") is None
    phone.wait_text("shop removed.", timeout=60)
    with pytest.raises(NotFound):
        rig.stack.store.get_project("shop")
    assert not project_dir.exists()
    gone = cli(rig, "project", "remove", "shop")
    _, err = gone.communicate(timeout=60)
    assert gone.returncode != 0 and "shop" in err


def test_the_store_only_facade_starts_no_thread_and_hands_operations_to_serve(
    settings: Settings,
) -> None:
    before = threading.active_count()
    service = Service.open(settings)
    assert service.query.projects() == []
    assert threading.active_count() == before
    with pytest.raises(ServeDown, match="controlplane serve is not running"):
        service.cancel("shop")
