"""run-slot's pure parts, its one-line failures, and how little it imports."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from controlplane.adapters.account import UnknownUser, lookup_account
from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.links import (
    mark_links_pending,
    mark_links_restored,
    pending_mark,
    wait_for_code,
)
from controlplane.domain.appenv import Account, app_env, base_env
from controlplane.domain.models import Project
from controlplane.runslot import slot_python
from controlplane.settings import Settings

HEAVY = ("telegram", "docker", "git", "jinja2", "supervisor", "psutil", "httpx")


def settings_at(data: Path) -> Settings:
    return Settings.from_env(
        {"CONTROLPLANE_DATA_DIR": str(data), "CONTROLPLANE_PYTHON": "/usr/bin/python3"}
    )


def test_base_env_is_minimal_and_wins_over_variables(tmp_path: Path) -> None:
    account = Account(name="app", uid=1000, gid=1000, home="/home/app")
    base = base_env(account, python="/r/.venv/bin/python", data_dir=tmp_path, slot="test")
    assert base["PATH"].split(":")[0] == "/r/.venv/bin"
    assert (base["HOME"], base["USER"], base["LOGNAME"]) == ("/home/app", "app", "app")
    assert base["APP_DATA_DIR"] == str(tmp_path) and base["CONTROLPLANE_SLOT"] == "test"
    env = app_env(base, {"TOKEN": "x", "HOME": "/root", "PATH": "/evil"})
    assert env["TOKEN"] == "x" and env["HOME"] == "/home/app" and env["PATH"] == base["PATH"]
    assert "CONTROLPLANE_DATA_DIR" not in env


def test_slot_folders_and_python(tmp_path: Path) -> None:
    settings = settings_at(tmp_path / "data")
    project = Project(name="shop", repo="https://example.com/x.git", path="/srv/shop")
    assert settings.layout.slot_code(project, "prod") == Path("/srv/shop")
    assert settings.layout.slot_code(project, "test") == tmp_path / "data/projects/shop/test"
    assert slot_python(settings, tmp_path) == "/usr/bin/python3"
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").touch()
    assert slot_python(settings, tmp_path) == str(venv / "python")


def test_unknown_run_as_user_is_refused() -> None:
    with pytest.raises(UnknownUser, match="does not exist"):
        lookup_account("no-such-user-here")


def run_cli(data: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLPLANE_")}
    env.update(CONTROLPLANE_DATA_DIR=str(data), CONTROLPLANE_PYTHON="/usr/bin/python3")
    code = (
        "import sys\n"
        "from controlplane.__main__ import main\n"
        "status = main(sys.argv[1:])\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(status)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60
    )
    return done, time.monotonic() - started


def test_failures_are_one_line_and_imports_stay_light(tmp_path: Path) -> None:
    data = tmp_path / "data"
    Store.open(settings_at(data))
    done, seconds = run_cli(data, "run-slot", "nope", "prod")
    print(f"run-slot start to failure: {seconds * 1000:.0f} ms")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "nope" in done.stderr
    assert "HEAVY []" in done.stdout


def test_a_slot_without_code_says_deploy_first(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = Store.open(settings_at(data))
    store.add_project(Project(name="shop", repo="https://example.com/x.git", path="/srv/shop"))
    done, _ = run_cli(data, "run-slot", "shop", "test")
    assert done.returncode == 1
    assert "deploy it first" in done.stderr and done.stderr.strip().count("\n") == 0


def test_while_links_are_pending_run_slot_waits_for_the_code(tmp_path: Path) -> None:
    """Right after `up`, serve has not put the links back yet: run-slot waits for the code
    while the mark is there, and answers at once without it (or at the end of its wait)."""
    code, sup = tmp_path / "srv" / "shop", tmp_path / "supervisor"
    assert wait_for_code(code, sup, timeout=30) is False  # no mark: no wait
    mark_links_pending(sup)
    threading.Timer(0.3, lambda: code.mkdir(parents=True)).start()
    assert wait_for_code(code, sup, timeout=30) is True
    assert wait_for_code(tmp_path / "none", sup, timeout=0.2) is False  # bounded


def test_a_slot_without_code_fails_once_serve_restored_the_links(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = settings_at(data)
    store = Store.open(settings)
    store.add_project(Project(name="shop", repo="https://example.com/x.git", path="/srv/shop"))
    mark_links_pending(settings.supervisor_dir)
    threading.Timer(0.5, mark_links_restored, args=(settings.supervisor_dir,)).start()
    done, _ = run_cli(data, "run-slot", "shop", "test")
    assert done.returncode == 1
    assert "deploy it first" in done.stderr
    assert not pending_mark(settings.supervisor_dir).exists()


def test_a_damaged_store_starts_the_app_from_its_last_good_copy(tmp_path: Path) -> None:
    """serve is in safe mode (store.json truncated) and the app crashed: run-slot still
    starts it, with the variables of the store's last good copy, and changes no file."""
    data, live = tmp_path / "data", tmp_path / "live"
    live.mkdir()
    (live / "main.py").write_text("import os\nprint('GREETING is', os.environ['GREETING'])\n")
    settings = settings_at(data)
    store = Store.open(settings)
    store.add_project(Project(name="shop", repo="https://example.com/x.git", path=str(live)))
    store.set_env("shop", "prod", {"GREETING": "hello there"})
    store.set_env("shop", "prod", {"OTHER": "x"})  # store.json.bak now has GREETING too
    raw = settings.store_path.read_bytes()
    settings.store_path.write_bytes(raw[: len(raw) // 2])
    before = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
    done, _ = run_cli(data, "run-slot", "shop", "prod")
    assert done.returncode == 0, done.stderr
    assert "GREETING is hello there" in done.stdout
    assert "the store is damaged; the app starts with its last good copy" in done.stderr
    assert {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()} == before


def test_a_store_and_its_copy_both_damaged_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = settings_at(data)
    store = Store.open(settings)
    store.add_project(Project(name="shop", repo="https://example.com/x.git", path="/srv/shop"))
    store.set_env("shop", "prod", {"A": "1"})
    for path in (settings.store_path, settings.store_path.with_name("store.json.bak")):
        path.write_bytes(b'{"proj')
    done, _ = run_cli(data, "run-slot", "shop", "prod")
    assert done.returncode == 1
    assert "are both damaged" in done.stderr and done.stderr.strip().count("\n") == 0
