"""A variable change from the command line (issue #14): nothing restarts unless asked;
`--restart` restarts prod under the health window, which tells a crash loop."""

from __future__ import annotations

import contextlib
import time

import pytest

from tests.support.fixtures_release import APP, Plant

# the plant's app, crashing at start while CRASH_NOW is set
CRASHER = APP.replace(
    'if pathlib.Path("CRASH").exists():',
    'if os.environ.get("CRASH_NOW") or pathlib.Path("CRASH").exists():',
)


def restarted(plant: Plant, pid: object) -> dict[str, object]:
    """The prod app's report once a process other than `pid` wrote it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            report = plant.report("prod")
            if report["pid"] != pid:
                return report
        time.sleep(0.1)
    raise AssertionError(f"prod was not restarted (pid {pid})")


@pytest.mark.timeout(400)
def test_env_set_restarts_only_when_asked_and_watches_the_health_window(plant: Plant) -> None:
    files = {"main.py": CRASHER, "VERSION": "1\n", "requirements.txt": "tinylib\n"}
    plant.origin.commit("version 1", files)
    plant.origin.push()
    plant.add()
    plant.ok("env", "set", "shop", *plant.local_index(), "API_KEY=sk-prod-0123456789")
    plant.ok("project", "set", "shop", "health-window", "8")
    plant.ok("deploy", "shop")
    pid = plant.wait_report("prod", "1")["pid"]

    out = plant.ok("env", "set", "shop", "API_KEY=sk-prod-rotated-1")
    assert out.splitlines()[1] == (
        "shop prod keeps the old values until its next restart "
        "(`controlplane restart shop`, or --restart next time)"
    )
    out = plant.ok("env", "set", "shop", "PIP_INDEX_URL=https://pypi.example/simple")
    assert "only the build reads them" in out
    assert plant.report("prod") == {**plant.report("prod"), "pid": pid, "api": "sk-prod-0123456789"}

    out = plant.ok("env", "unset", "shop", "PIP_INDEX_URL", "--restart")  # build-only: none
    assert "nothing restarted" in out and plant.report("prod")["pid"] == pid
    out = plant.ok("env", "set", "shop", "GREETING=hi", "--restart")
    assert "health window 8 s" in out
    report = restarted(plant, pid)
    assert report["api"] == "sk-prod-rotated-1"

    done = plant.cli("env", "set", "shop", "CRASH_NOW=1", "--restart")
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "prod crash-loops after the variable change (exited " in said, said
    assert "(exit status 3" in said or "(exit statuses 3" in said, said  # the real one
    assert "fix the variables and restart" in done.stdout + done.stderr
