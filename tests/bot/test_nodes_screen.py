"""🖥 Nodes from the chat: on a plain box there is no such button; on the real two-node
swarm (tests/support/swarm.py) the screen lists both nodes, a drain asks first, then
drains (once), and a Russian chat sees it all in Russian. The real python-telegram-bot
client against the local Bot API server, the whole control plane behind it."""

from __future__ import annotations

import html

import pytest

from tests.support.botapi import Msg
from tests.support.chat import ADMIN, Chat
from tests.support.language import Outside, Said, not_russian
from tests.support.swarm import Swarm


def current(phone: Chat, msg: Msg) -> Msg:
    return next(m for m in phone.api.bot_messages(ADMIN) if m.message_id == msg.message_id)


def becomes(phone: Chat, msg: Msg, needle: str, timeout: float = 60) -> Msg:
    """The message once the bot has edited it to say `needle`."""
    phone.api.wait_for(lambda: needle in current(phone, msg).text, timeout)
    return current(phone, msg)


def menu(phone: Chat, needle: str) -> Msg:
    count = len(phone.api.bot_messages(ADMIN))
    phone.send("/start")
    phone.api.wait_for(
        lambda: any(needle in m.text for m in phone.api.bot_messages(ADMIN)[count:]), 30
    )
    return phone.api.bot_messages(ADMIN)[-1]


def test_a_plain_box_has_no_nodes_button(phone: Chat, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    shown = menu(phone, "choose what to do")
    assert "📦 Projects" in phone.buttons(shown)
    assert not [label for label in phone.buttons(shown) if "🖥" in label]


def test_the_nodes_screen_lists_the_swarm_and_drains_a_node_once(
    clean_swarm: Swarm, phone: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    swarm = clean_swarm
    monkeypatch.setenv("DOCKER_HOST", swarm.manager.docker_host)
    worker = swarm.worker.hostname
    screen = menu(phone, "choose what to do")
    phone.press_text(screen, "🖥 Nodes")
    screen = becomes(phone, screen, "Nodes of the swarm")
    shown = html.unescape(screen.text)
    print(shown)
    for node in swarm.nodes:
        assert f"{node.hostname} · " in shown
    assert "labels: cptest=worker" in shown and "labels: cptest=manager" in shown
    assert "load: CPU " in shown and "load: — (Swarm does not report" in shown
    assert f"⏸ Drain {worker}" in phone.buttons(screen)

    phone.press_text(screen, f"⏸ Drain {worker}")
    screen = becomes(phone, screen, f"Drain {worker}? Swarm moves")
    yes = phone.buttons(screen)["✅ Yes, do it"]
    phone.press(screen, yes)
    screen = becomes(phone, screen, "drained: its tasks move to the other nodes")
    assert f"{worker} · worker · ready · drained" in html.unescape(screen.text)
    assert f"▶️ Activate {worker}" in phone.buttons(screen)
    assert swarm.docker("node", "inspect", "-f", "{{.Spec.Availability}}", worker) == "drain"

    # the same Yes again (a second tap that came late) does nothing
    swarm.docker("node", "update", "--availability=active", worker)
    phone.api.user_presses(ADMIN, screen.message_id, yes, user_id=ADMIN, forged=True)
    screen = becomes(phone, screen, "used already or has expired; nothing was done")
    assert swarm.docker("node", "inspect", "-f", "{{.Spec.Availability}}", worker) == "active"

    # the chat switched to Russian with 🌐
    phone.press_text(menu(phone, "choose what to do"), "🌐 Language")
    phone.press_text(phone.wait_text("The language of this chat"), "Русский")
    phone.wait_text("что сделать")
    screen = menu(phone, "что сделать")
    phone.press_text(screen, "🖥 Узлы")
    screen = becomes(phone, screen, "Узлы роя")
    print(screen.text)
    outside = Outside()
    for node in swarm.nodes:
        outside.phrases |= {node.hostname, f"cptest={node.hostname.rsplit('-', 1)[1]}"}
        for field in (
            "ID",
            "Description.Platform.Architecture",
            "Description.Engine.EngineVersion",
            "Status.Addr",
        ):
            outside.phrases.add(
                swarm.docker("node", "inspect", "-f", "{{." + field + "}}", node.node_id)
            )
    outside.phrases.add("linux")
    said = [Said("message", screen.text)] + [
        Said("button", b, False) for b in phone.buttons(screen)
    ]
    assert [w for s in said for w in not_russian(s, outside)] == []
