"""run-slot's lean way: the same plan as the full way, from store.json alone, with the
standard library's and OpenSSL's Fernet; anything unusual is left to the full way."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from controlplane.adapters import fernetlite
from controlplane.adapters import store as store_module
from controlplane.adapters.secrets import KeyRing
from controlplane.adapters.store import Store
from controlplane.domain.appenv import Account
from controlplane.domain.models import Project
from controlplane.runslot import KEY_CHECK, KEY_FILE, SCHEMA, STORE_FILE, fast_plan, full_plan
from controlplane.settings import Settings

LIGHT = ("cryptography", "tinydb", "jinja2", "supervisor", "psutil", "telegram")
OURS_NOT = (
    "controlplane.settings",
    "controlplane.i18n",
    "controlplane.errors",
    "controlplane.adapters.store",
    "controlplane.adapters.secrets",
    "controlplane.domain.models",
    "controlplane.cli",
)


def env_at(data: Path, **more: str) -> dict[str, str]:
    return {"CONTROLPLANE_DATA_DIR": str(data), "CONTROLPLANE_PYTHON": "/usr/bin/python3", **more}


def made(tmp_path: Path, **more: str) -> tuple[dict[str, str], Settings, Store, Path]:
    """A store with project shop whose prod folder has a venv interpreter and main.py."""
    env = env_at(tmp_path / "data", **more)
    settings = Settings.from_env(env)
    store = Store.open(settings)
    live = tmp_path / "live"
    (live / ".venv" / "bin").mkdir(parents=True)
    (live / ".venv" / "bin" / "python").symlink_to("/usr/bin/python3")
    (live / "main.py").write_text("import os\nprint('TOKEN is', os.environ.get('TOKEN'))\n")
    store.add_project(Project(name="shop", repo="https://example.com/x.git", path=str(live)))
    store.set_env("shop", "prod", {"TOKEN": "prod-tøken", "REGION": "eu", "EMPTY": ""})
    return env, settings, store, live


def same(a: object, b: object) -> bool:
    return all(getattr(a, f) == getattr(b, f) for f in a.__slots__)  # type: ignore[attr-defined]


def test_fernetlite_opens_what_the_keyring_seals_and_nothing_else() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    ring = KeyRing([old], "test")
    keys = [fernetlite.parse_key(k) for k in (new, old)]
    assert None not in keys
    for value in ("", "a", "x" * 15, "y" * 16, "z" * 17, "é ✓ \n tab\t", "k" * 5000):
        token = ring.encrypt(value)
        assert fernetlite.decrypt(token, keys) == value  # type: ignore[arg-type]
    token = ring.encrypt("secret")
    assert fernetlite.decrypt(token, [fernetlite.parse_key(new)]) is None  # type: ignore[list-item]
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[30] ^= 1  # one bit of the ciphertext: the HMAC no longer fits
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode()
    assert fernetlite.decrypt(tampered, keys) is None  # type: ignore[arg-type]
    assert fernetlite.decrypt("not a token", keys) is None  # type: ignore[arg-type]
    assert fernetlite.parse_key("too short") is None


def test_the_lean_plan_is_the_full_plan(tmp_path: Path) -> None:
    env, settings, store, live = made(tmp_path)
    store.set_env("shop", "test", {"TOKEN": "test-token", "ONLY_TEST": "1"})
    test_code = settings.layout.test_link("shop")
    test_code.parent.mkdir(parents=True, exist_ok=True)
    test_code.symlink_to(live)
    for slot in ("prod", "test"):
        lean = fast_plan(env, "shop", slot)
        assert lean is not None
        assert same(lean, full_plan(settings, "shop", slot))
    test = fast_plan(env, "shop", "test")
    assert test is not None and test.variables["TOKEN"] == "test-token"
    assert test.variables["REGION"] == "eu" and test.python == str(test_code / ".venv/bin/python")


def test_the_key_may_come_from_the_environment(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    env, settings, _store, _live = made(tmp_path, CONTROLPLANE_KEY=f"{key}")
    assert not settings.key_path.exists()
    lean = fast_plan(env, "shop", "prod")
    assert lean is not None and lean.variables["TOKEN"] == "prod-tøken"
    other = Fernet.generate_key().decode()
    assert fast_plan({**env, "CONTROLPLANE_KEY": other}, "shop", "prod") is None
    assert fast_plan({**env, "CONTROLPLANE_KEY": f"{other},{key}"}, "shop", "prod") is not None


def test_anything_unusual_is_left_to_the_full_way(tmp_path: Path) -> None:
    env, settings, _store, live = made(tmp_path)
    assert fast_plan(env, "nope", "prod") is None  # no such project
    assert fast_plan(env, "shop", "staging") is None
    assert fast_plan({**env, "CONTROLPLANE_DATA_DIR": "relative"}, "shop", "prod") is None
    assert fast_plan({**env, "CONTROLPLANE_RUN_AS": "no-such-user-here"}, "shop", "prod") is None
    assert fast_plan(env, "shop", "test") is None  # no test code yet: the full way waits
    data = json.loads(settings.store_path.read_text())
    for row in data["meta"].values():
        row["schema"] = SCHEMA + 1
    settings.store_path.write_text(json.dumps(data))
    assert fast_plan(env, "shop", "prod") is None  # a newer store: the full way says so
    settings.store_path.write_text("{damaged")
    assert fast_plan(env, "shop", "prod") is None  # its last good copy: the full way
    assert live.is_dir()


def test_what_it_reads_is_what_the_store_and_layout_name(tmp_path: Path) -> None:
    settings = Settings.from_env(env_at(tmp_path))
    assert settings.store_path == tmp_path / STORE_FILE
    assert settings.key_path == tmp_path / KEY_FILE
    assert (KEY_CHECK, SCHEMA) == (store_module.KEY_CHECK, store_module.SCHEMA)
    assert settings.layout.slot_data("shop", "test") == tmp_path / "projects/shop/shared/test"
    assert settings.layout.test_link("shop") == tmp_path / "projects/shop/test"


def test_the_app_starts_the_lean_way_without_the_stores_lock(tmp_path: Path) -> None:
    """run-slot execs the app with its variables, having read store.json only: the lock
    file that every store read takes is not even made."""
    env, settings, _store, live = made(tmp_path)
    settings.layout.store_lock.unlink()
    done = subprocess.run(
        [sys.executable, "-m", "controlplane", "run-slot", "shop", "prod"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CONTROLPLANE_")}, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "TOKEN is prod-tøken"
    assert not settings.layout.store_lock.exists()
    assert (settings.layout.slot_data("shop", "prod")).is_dir()
    assert live.is_dir()


def test_the_lean_way_imports_neither_the_store_nor_cryptography() -> None:
    code = "import sys, controlplane.runslot; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(done.stdout.split())
    assert not {m for m in loaded if m.split(".")[0] in LIGHT}
    assert not loaded & set(OURS_NOT)


def test_an_account_is_a_value() -> None:
    a = Account(name="app", uid=1000, gid=1000, home="/home/app")
    assert a == Account(name="app", uid=1000, gid=1000, home="/home/app")
    assert a != Account(name="app", uid=1001, gid=1000, home="/home/app")
    assert len({a, Account(name="app", uid=1000, gid=1000, home="/home/app")}) == 1
    assert "uid=1000" in repr(a)
    with pytest.raises(AttributeError):
        a.other = 1  # type: ignore[attr-defined]
