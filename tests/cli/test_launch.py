"""`controlplane launch URL ...`: a third-party repository with its variables and settings
set before its first run, in the test slot and in prod; listed as third-party; removed;
one that fails to build. Through serve's socket, real git, a real supervisord."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.bot.test_launch import ENV_APP
from tests.support.fixtures_release import Plant

KEY = "sk-live-cli-Secret-8899"


def env_seen(plant: Plant, name: str, slot: str, timeout: float = 30) -> dict[str, str | None]:
    path = plant.settings.project_dir(name) / "shared" / slot / "env.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return dict(json.loads(path.read_text()))
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
    raise AssertionError(f"the app wrote no {path}")


@pytest.mark.timeout(400)
def test_launch_with_variables_in_test_and_prod_listed_removed_and_failing(plant: Plant) -> None:
    plant.origin.commit("the stranger's app", {"bot/run.py": ENV_APP})
    plant.origin.push()
    url = plant.origin.url

    # a refused answer: nothing is added, the reason names it
    done = plant.cli("launch", url, "--poll", "sometimes", "--env", f"API_KEY={KEY}")
    assert done.returncode == 2 and "bad poll interval 'sometimes'" in done.stderr
    assert KEY not in done.stderr + done.stdout
    done = plant.cli("launch", url, "--env", "no equals sign")
    assert done.returncode == 2 and "write KEY=VALUE" in done.stderr
    assert plant.stack.service.query.projects() == []

    # the test slot, with prod and test variables and every setting given
    launched = plant.ok(
        "launch",
        url,
        "--entry",
        "bot/run.py",
        "--env",
        f"API_KEY={KEY}",
        "--env",
        "MODE=production",
        "--test-env",
        "MODE=testing",
        "--poll",
        "5m",
        "--test-duration",
        "5s",
        "--output",
        "off",
        "--test",
    )
    assert "added shop (main, head #1" in launched and "passed" in launched
    assert env_seen(plant, "shop", "test") == {
        "API_KEY": KEY,
        "MODE": "testing",
        "GREETING": None,
        "CONTROLPLANE_SLOT": "test",
    }
    shown = plant.ok("project", "show", "shop")
    assert "shop 🌍" in shown and "third-party" in shown and "output to chat  off" in shown
    data = json.loads(plant.ok("project", "show", "shop", "--json"))
    assert data["kind"] == "launch" and data["poll"] == 300 and data["test_duration"] == 5
    assert "shop 🌍" in plant.ok("project", "list")
    listed = plant.ok("env", "list", "shop")
    assert "MODE=production" in listed and KEY not in listed  # the secret rule: masked

    # removed: nothing left running, the name free again
    plant.ok("project", "remove", "shop")
    assert plant.stack.service.query.projects() == []
    assert plant.box.client.find("shop-test") is None

    # prod
    launched = plant.ok(
        "launch", url, "--entry", "bot/run.py", "--env", f"API_KEY={KEY}", "--env", "GREETING=hi"
    )
    assert "deployed" in launched
    seen = env_seen(plant, "shop", "prod")
    assert seen["API_KEY"] == KEY and seen["GREETING"] == "hi" and seen["MODE"] is None
    assert plant.box.wait_state("shop-prod", ("RUNNING",)).pid > 0

    # a repository that fails to build: the CLI says so, exits 1, nothing of it runs
    plant.origin.commit("needs a missing package", {"requirements.txt": "nosuchpackage-q7\n"})
    plant.origin.push()
    index = [arg for line in plant.local_index() for arg in ("--env", line)]
    done = plant.cli("launch", url, "--name", "broken", "--entry", "bot/run.py", *index)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "controlplane: error: build of #2" in done.stderr and "failed" in done.stderr
    assert "nosuchpackage-q7" in done.stdout + done.stderr
    found = plant.box.client.find("broken-prod")
    assert found is None or found.state != "RUNNING"
    assert "broken 🌍" in plant.ok("project", "list")
    assert plant.box.client.find("shop-prod") is not None


@pytest.mark.timeout(300)
def test_launch_takes_over_a_folder_only_when_asked(plant: Plant) -> None:
    """A launch into a folder holding someone's files is refused, naming --take-over; with
    it, the files move to a dated backup (never deleted) and the app runs there."""
    from tests.cli.test_takeover import snapshot, theirs

    plant.origin.commit("the stranger's app", {"bot/run.py": ENV_APP})
    plant.origin.push()
    folder = plant.box.base / "srv" / "stranger"
    before = theirs(folder)
    args = ("launch", plant.origin.url, "--entry", "bot/run.py", "--path", str(folder))

    refused = plant.cli(*args)
    assert refused.returncode != 0 and "--take-over" in refused.stderr, refused.stderr
    assert plant.stack.service.query.projects() == [] and snapshot(folder) == before

    done = plant.cli(*args, "--take-over")
    assert done.returncode == 0, done.stdout + done.stderr
    moved = re.search(r"moved 4 files \([^)]*\) from (\S+) to (\S+)", done.stderr)
    assert moved and moved[1] == str(folder), done.stderr
    assert snapshot(Path(moved[2])) == before  # every file kept in the backup
    assert plant.box.wait_state("shop-prod", ("RUNNING",)).pid > 0
    assert not (folder / "notes.txt").exists() and (folder / "bot" / "run.py").is_file()
