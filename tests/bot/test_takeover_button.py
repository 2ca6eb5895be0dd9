"""The add form's 📦: a folder with someone's files is taken over only when pressed, the
button naming how many files and how much data will move; they land in a dated backup
under $DATA/backups. The real PTB client against the local Bot API server."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.test_takeover import snapshot, theirs
from tests.support.chat import ADMIN, Chat


def test_the_add_form_takes_a_folder_over_when_its_button_is_pressed(phone: Chat) -> None:
    plant = phone.plant
    plant.commit("1")
    folder = plant.box.base / "srv" / "shop"
    before = theirs(folder)

    phone.send("/add")
    phone.wait_text("Send its name")
    phone.send("shop")
    phone.wait_text("repository URL")
    phone.send(plant.origin.url)
    phone.wait_text("project folder")
    phone.send(str(folder))
    offer = phone.wait_text("holds files the control plane did not put there: 4 files, 2.9 KiB")
    backups = plant.settings.data_dir / "backups"
    assert f"dated backup under {backups}" in offer.text
    assert "Send another project folder, or press 📦" in offer.text
    assert list(phone.buttons(offer)) == ["📦 Move 4 files (2.9 KiB) to a backup"]
    assert snapshot(folder) == before  # nothing moves before the project is added

    phone.press_text(offer, "📦 Move 4 files")
    phone.wait_text("Send the branch")
    phone.send("/skip")
    moved = phone.wait_text("📦 moved 4 files", timeout=60)
    found = re.search(r"from (\S+) to (\S+)", moved.text)
    assert found and found[1] == str(folder), moved.text
    backup = Path(found[2])
    assert backup.parent == backups and re.fullmatch(r"shop-\d{8}-\d{6}", backup.name)
    assert snapshot(backup) == before
    phone.wait_text("Added shop")
    assert folder.is_dir() and not any(folder.iterdir())
    assert plant.stack.store.get_project("shop").path == str(folder)
    assert not any("Internal error" in m.text for m in phone.api.bot_messages(ADMIN))


def test_another_folder_after_the_offer_is_taken_without_moving_anything(phone: Chat) -> None:
    plant = phone.plant
    plant.commit("1")
    folder = plant.box.base / "srv" / "shop"
    before = theirs(folder)
    phone.send("/add")
    phone.wait_text("Send its name")
    phone.send("shop")
    phone.wait_text("repository URL")
    phone.send(plant.origin.url)
    phone.wait_text("project folder")
    phone.send(str(folder))
    phone.wait_text("or press 📦")
    phone.send(str(plant.box.base / "live" / "shop"))
    phone.wait_text("Send the branch")
    phone.send("/skip")
    phone.wait_text("Added shop", timeout=60)
    assert snapshot(folder) == before
    assert not (plant.settings.data_dir / "backups").exists()
