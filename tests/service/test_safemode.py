"""Safe mode (issue #15): a store that cannot be opened (a truncated file, a store from a
newer version, a missing key, a wrong key) is diagnosed without writing anything;
`controlplane store check` and every CLI command that needs the store say what is wrong
and the way out; serve under a real supervisord does not exit: the app keeps its pid, the
admin gets the way out in the chat (the real PTB client against tests/support/botapi.py),
nothing is overwritten, and once fixed serve goes on into normal operation by itself,
the app still the same process."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from controlplane.adapters.secrets import generate_key
from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.client import write_program
from controlplane.domain.models import Project
from controlplane.errors import KeyMissing, KeyringError, StoreCorrupt, StoreTooNew
from controlplane.service.safemode import read_state
from controlplane.service.serve import serve
from controlplane.service.storecheck import check
from controlplane.settings import Settings
from tests.conftest import cli_env
from tests.support.botapi import FakeBotAPI
from tests.support.fixtures_supervisor import Box, BoxFactory

ADMIN = 111
STRANGER = 999
TOKEN = "424242:SECRET-BOT-TOKEN-abcdef"
RU = {"LANG": "ru_RU.UTF-8", "LC_ALL": "ru_RU.UTF-8"}


def snapshot(settings: Settings) -> dict[str, bytes]:
    """Every file of the store and the key, as bytes (the lock file aside)."""
    data = settings.data_dir
    paths = [*data.glob("store.json*"), *data.glob("secret.key*"), *data.rglob("store.d/**/*")]
    return {str(p): p.read_bytes() for p in paths if p.is_file()}


def cli(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controlplane", *args],
        env=cli_env(settings.data_dir, **env),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


# -- the faults, each with its fix ----------------------------------------------------------


def truncate(settings: Settings) -> Callable[[], None]:
    raw = settings.store_path.read_bytes()
    settings.store_path.write_bytes(raw[: len(raw) // 2])

    def fix() -> None:
        done = cli(settings, "store", "restore")
        assert done.returncode == 0, done.stderr

    return fix


def newer(settings: Settings) -> Callable[[], None]:
    raw = settings.store_path.read_bytes()
    data = json.loads(raw)
    for row in data["meta"].values():
        row["schema"] = 99
    settings.store_path.write_text(json.dumps(data))

    def fix() -> None:  # a backup made by this version put back
        settings.store_path.write_bytes(raw)

    return fix


def lose_key(settings: Settings) -> Callable[[], None]:
    key = settings.key_path.read_bytes()
    settings.key_path.unlink()
    return lambda: put_back(settings.key_path, key)


def wrong_key(settings: Settings) -> Callable[[], None]:
    key = settings.key_path.read_bytes()
    settings.key_path.write_text(generate_key() + "\n")
    return lambda: put_back(settings.key_path, key)


def put_back(path: Path, raw: bytes) -> None:
    path.write_bytes(raw)
    path.chmod(0o600)


FAULTS = {"truncated": truncate, "newer": newer, "key_missing": lose_key, "key_wrong": wrong_key}
KINDS = {"truncated": "damaged", "newer": "too_new", "key_missing": "key_missing"}
WAY_OUT = {
    "truncated": "controlplane store restore",
    "newer": "run the newer controlplane again",
    "key_missing": "put the store's key back in",
    "key_wrong": "put back the key the store was written with",
}


def filled(store: Store) -> None:
    store.add_project(Project(name="shop", repo="https://example.com/x.git", path="/srv/shop"))
    store.set_env("shop", "prod", {"API_KEY": "sk-keep-me-0123"})
    store.set_env("shop", "prod", {"API_KEY": "sk-keep-me-0123", "B": "2"})  # .bak is good


# -- diagnosis and the CLI -------------------------------------------------------------------


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_diagnosis_names_the_way_out_and_opening_writes_nothing(
    fault: str, store: Store, settings: Settings
) -> None:
    filled(store)
    fix = FAULTS[fault](settings)
    before = snapshot(settings)
    [problem] = check(settings).problems
    assert problem.kind == KINDS.get(fault, fault), problem
    assert WAY_OUT[fault] in str(problem.way_out) and "store check" in str(problem.way_out)
    with pytest.raises((StoreCorrupt, StoreTooNew, KeyMissing, KeyringError)):
        Store.open(settings)
    assert snapshot(settings) == before, "opening a store it cannot read changed a file"
    assert not (settings.data_dir / "secret.key").exists() or fault != "key_missing"
    fix()
    assert check(settings).problems == []
    assert Store.open(settings).env("shop", "prod")["API_KEY"] == "sk-keep-me-0123"


def test_a_damaged_project_file_is_found_and_restored_alone(
    store: Store, settings: Settings
) -> None:
    filled(store)
    store.update_state("shop", prod=1)
    store.update_state("shop", prod=2)
    shard = settings.layout.project_store("shop")
    shard.write_bytes(shard.read_bytes()[:10])
    main = settings.store_path.read_bytes()
    [problem] = check(settings).problems
    assert problem.kind == "damaged" and str(shard) in str(problem.what)
    done = cli(settings, "store", "restore")
    assert done.returncode == 0, done.stderr
    assert settings.store_path.read_bytes() == main, "a store.json that reads was rolled back"
    assert Store.open(settings).state("shop").prod == 1
    again = cli(settings, "store", "restore")
    assert again.returncode == 1 and "nothing to restore" in again.stderr


def test_store_check_says_ok_or_the_problem_and_the_way_out(
    store: Store, settings: Settings
) -> None:
    filled(store)
    ok = cli(settings, "store", "check")
    assert ok.returncode == 0 and "the store is readable: 1 file" in ok.stdout, ok
    assert f"the key in {settings.key_path} opens it" in ok.stdout
    lose_key(settings)
    missing = cli(settings, "store", "check")
    assert missing.returncode == 1, missing
    assert "the store's key is missing" in missing.stdout
    assert "way out: put the store's key back in" in missing.stdout
    assert not settings.key_path.exists(), "store check made a key"
    russian = cli(settings, "store", "check", **RU)
    assert "ключ хранилища" in russian.stdout.lower() and "выход" in russian.stdout, russian
    listing = cli(settings, "project", "list")
    assert listing.returncode == 1 and "way out: put the store's key back" in listing.stderr
    assert not settings.key_path.exists()
    print("\n" + missing.stdout + russian.stdout + listing.stderr)


def test_store_check_on_a_new_data_dir(settings: Settings) -> None:
    done = cli(settings, "store", "check")
    assert done.returncode == 0 and "there is no store yet" in done.stdout, done
    assert not settings.store_path.exists() and not settings.key_path.exists()


# -- serve in safe mode under a real supervisord, with the bot --------------------------------


@contextmanager
def serving(settings: Settings) -> Iterator[threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(settings, stop), kwargs={"interval": 0.1})
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive(), "serve did not stop when asked"


def until(what: str, test: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def safe_texts(api: FakeBotAPI, chat: int = ADMIN) -> list[str]:
    return [m.text for m in api.bot_messages(chat) if "Safe mode" in m.text or "🛟" in m.text]


def running_app(box: Box) -> int:
    filled(box.store)
    project = box.add_project("blog")
    box.store.set_chat_lang(ADMIN, "en")  # so the last good copy (.bak) holds blog too
    write_program(box.settings, project, "prod")
    box.client.apply()
    pid = box.wait_state("blog-prod", ("RUNNING",)).pid
    box.wait_report("blog", "prod", pid)  # the app itself runs (run-slot read the store)
    return pid


@pytest.mark.timeout(300)
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_serve_waits_in_safe_mode_and_comes_back_without_restarting_the_app(
    fault: str, box_factory: BoxFactory
) -> None:
    box = box_factory()
    pid = running_app(box)
    fix = FAULTS[fault](box.settings)
    before = snapshot(box.settings)
    api = FakeBotAPI(token=TOKEN)
    settings = dataclasses.replace(
        box.settings,
        telegram_token=TOKEN,
        admin_chat_ids=frozenset({ADMIN}),
        telegram_api_url=api.start(),
    )
    try:
        with serving(settings):
            until("the admin to be told", lambda: bool(safe_texts(api)))
            [told] = safe_texts(api)
            assert WAY_OUT[fault] in told and "store check" in told, told
            assert "Your apps keep running" in told
            api.user_sends(ADMIN, "/projects", user_id=ADMIN, language_code="ru")
            until("an answer in Russian", lambda: len(api.bot_messages(ADMIN)) >= 2)
            answer = api.bot_messages(ADMIN)[-1].text
            assert "Безопасный режим" in answer and "store check" in answer, answer
            api.user_sends(STRANGER, "/projects", user_id=STRANGER)
            press = api.user_presses(
                ADMIN, api.bot_messages(ADMIN)[0].message_id, "d:x", forged=True
            )
            until("the press answered", lambda: api.answer_of(press) is not None)
            until("the press's message", lambda: len(api.bot_messages(ADMIN)) >= 3)
            assert api.bot_messages(STRANGER) == []
            state = read_state(box.settings)
            assert state is not None and state.problems, "safe mode is not in its state file"
            health = cli(box.settings, "health")
            assert health.returncode == 1 and "safe mode" in health.stdout, health
            assert box.client.info("blog-prod").pid == pid, "an app was restarted in safe mode"
            assert snapshot(box.settings) == before, "safe mode changed the store or the key"
            assert not box.settings.control_sock.exists()
            fix()
            until("serve to leave safe mode", lambda: box.settings.control_sock.exists())
            until("the state file to go", lambda: read_state(box.settings) is None)
            seen = len(api.bot_messages(ADMIN))
            api.user_sends(ADMIN, "/help", user_id=ADMIN)
            until("the normal bot's answer", lambda: len(api.bot_messages(ADMIN)) > seen)
            after = [m.text for m in api.bot_messages(ADMIN)[seen:]]
            assert not any("🛟" in text for text in after), f"still in safe mode: {after}"
            assert box.client.info("blog-prod").pid == pid, "leaving safe mode restarted an app"
        print(f"\n{fault}: {told}")
    finally:
        api.stop()
