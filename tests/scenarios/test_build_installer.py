"""The project's `installer` setting, end to end: set from the CLI, shown, and obeyed by the
next build (the classic pip steps), then back to uv."""

from __future__ import annotations

import json

from tests.support.fixtures_release import Plant, add_shop


def test_the_installer_setting_picks_the_build_steps(plant: Plant) -> None:
    plant.commit("1")
    add_shop(plant)
    assert "installer       uv" in plant.ok("project", "show", "shop")
    refused = plant.cli("project", "set", "shop", "installer", "conda")
    assert refused.returncode == 2 and "use uv or pip" in refused.stderr
    shown = plant.ok("project", "set", "shop", "installer", "pip")
    assert "installer       pip" in shown
    assert json.loads(plant.ok("project", "show", "shop", "--json"))["installer"] == "pip"

    out = plant.ok("deploy", "shop", "--test", "--duration", "5")
    assert "installer: venv + pip" in out
    assert "install (requirements.txt): ok" in out and "pip upgrade (pip " in out
    release = next(plant.settings.project_dir("shop").glob("releases/1-*.ready"))
    assert json.loads(release.read_text())["installer"] == "pip"
    assert (release.with_suffix("") / ".venv" / "bin" / "pip").is_file()
    assert plant.wait_report("test", "1")["lib"] == "1.0"

    plant.ok("project", "set", "shop", "installer", "uv")
    plant.commit("2")
    out = plant.ok("deploy", "shop", "--test", "--duration", "5")
    assert "installer: uv (" in out and "install (requirements.txt): ok" in out
    release = next(plant.settings.project_dir("shop").glob("releases/2-*.ready"))
    assert json.loads(release.read_text())["installer"] == "uv"
    assert (release.with_suffix("") / ".venv" / "bin" / "pip").is_file()
