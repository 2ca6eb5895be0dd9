"""A new commit with unchanged requirements, end to end: the CLI's build output says the
venv was reused, the app runs the new commit, and pruning the release it came from
leaves the new one running; changed requirements build anew."""

from __future__ import annotations

import time

from tests.support.fixtures_release import Plant, add_shop


def test_a_new_commit_with_the_same_requirements_reuses_the_venv(plant: Plant) -> None:
    plant.commit("1")
    add_shop(plant)  # two releases kept
    first = plant.ok("deploy", "shop")
    assert "install (requirements.txt): ok" in first and "reused" not in first

    plant.commit("2")
    out = plant.ok("deploy", "shop")
    assert "venv (reused from #1, same requirements): ok" in out
    assert "install: not needed: the venv of #1 was reused" in out
    assert plant.wait_report("prod", "2")["lib"] == "1.0"

    plant.commit("3")
    out = plant.ok("deploy", "shop")
    assert "venv (reused from #2, same requirements): ok" in out
    assert plant.wait_report("prod", "3")["lib"] == "1.0"
    releases = plant.settings.project_dir("shop") / "releases"
    assert not list(releases.glob("1-*")), "#1 is pruned (two kept)"
    pid = plant.report("prod")["pid"]
    plant.ok("restart", "shop")  # #3 starts again without the release it came from
    for _ in range(400):
        if plant.report("prod")["pid"] != pid:
            break
        time.sleep(0.05)
    assert plant.report("prod")["pid"] != pid and plant.report("prod")["lib"] == "1.0"

    plant.commit("4", requirements="tinylib>=1.0\n")
    out = plant.ok("deploy", "shop")
    assert "reused" not in out and "install (requirements.txt): ok" in out
    assert plant.wait_report("prod", "4")["lib"] == "1.0"
