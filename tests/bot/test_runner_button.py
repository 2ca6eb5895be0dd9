"""The project menu's 🖥 Runner button (#17): it names where the project runs, asks before
a move, and its Yes starts the move; with no swarm reachable the project stays on this
box and the chat says why and where to read how to set one up. The real PTB client
against the local Bot API server."""

from __future__ import annotations

import pytest

from tests.bot.test_buttons import becomes, project_menu
from tests.support.chat import ADMIN, Chat


def test_the_runner_button_asks_then_says_no_swarm_is_reachable(
    phone: Chat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{phone.plant.box.base}/no-docker.sock")
    plant = phone.plant
    plant.commit("1")
    plant.add()
    menu = project_menu(phone)
    assert phone.buttons(menu)["🖥 Runner: this box"] == "rn|shop"

    phone.press(menu, "rn|shop")
    ask = becomes(phone, menu, "Move shop to the swarm?")
    assert "it stays here if that fails" in ask.text
    yes = next(v for k, v in phone.buttons(ask).items() if "Yes" in k)
    assert yes.startswith("rn!|shop|swarm|")
    phone.press(ask, yes)
    said = phone.wait_text("no swarm is reachable", timeout=30)
    assert "docs/multihost.md" in said.text
    assert plant.stack.store.get_project("shop").runner == "local"
    assert not any("Internal error" in m.text for m in phone.api.bot_messages(ADMIN))
