"""The store against a real file: round-trips, kills, concurrent writers, encryption."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.adapters.secrets import generate_key
from controlplane.adapters.store import AtomicJSONStorage, Store
from controlplane.domain.models import Project
from controlplane.errors import AlreadyExists, KeyringError, NotFound, StoreCorrupt
from controlplane.settings import Settings
from tests.conftest import MakeSettings

WRITER = Path(__file__).resolve().parents[1] / "support" / "store_writer.py"
ROOT = Path(__file__).resolve().parents[2]


def project(name: str = "p") -> Project:
    return Project(name=name, repo="https://example.com/o/r.git", path=f"/srv/{name}")


def writer(data_dir: Path, prefix: str, count: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(WRITER), str(data_dir), prefix, str(count)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


values = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=80
)


@given(
    env=st.dictionaries(
        st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True), values, max_size=5
    ),
    auth=st.none() | st.text(min_size=1, max_size=30),
)
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_round_trip(
    make_settings: MakeSettings, tmp_path: Path, env: dict[str, str], auth: str | None
) -> None:
    data = Path(tempfile.mkdtemp(dir=tmp_path))
    s = make_settings(CONTROLPLANE_DATA_DIR=str(data))
    store = Store.open(s)
    store.add_project(project(), repo_auth=auth)
    store.set_env("p", "test", env)
    again = Store.open(s)
    assert again.get_project("p") == project().with_(
        created=again.get_project("p").created, env_rev_test=1 if env else 0
    )
    assert again.env("p", "test") == dict(sorted(env.items()))
    assert again.repo_auth("p") == auth


def test_projects_crud_and_errors(store: Store) -> None:
    store.add_project(project("a"))
    store.add_project(project("b"))
    with pytest.raises(AlreadyExists):
        store.add_project(project("a"))
    assert [p.name for p in store.list_projects()] == ["a", "b"]
    assert store.update_project("a", branch="dev").branch == "dev"
    store.remove_project("a")
    with pytest.raises(NotFound) as info:
        store.get_project("a")
    assert "controlplane project list" in str(info.value)


def test_test_slot_sees_prod_overlaid_by_test(store: Store) -> None:
    store.add_project(project())
    store.set_env("p", "prod", {"API": "prod-key", "PROXY": "socks5://p"})
    store.set_env("p", "test", {"API": "test-key"})
    assert store.slot_env("p", "prod") == {"API": "prod-key", "PROXY": "socks5://p"}
    assert store.slot_env("p", "test") == {"API": "test-key", "PROXY": "socks5://p"}
    assert store.unset_env("p", "test", ["API", "MISSING"]) == ["MISSING"]
    assert store.env("p", "test") == {"API": "test-key"}  # all or nothing


def test_env_revision_follows_what_each_slot_sees(store: Store) -> None:
    store.add_project(project())
    revs = lambda: (store.get_project("p").env_rev_prod, store.get_project("p").env_rev_test)  # noqa: E731
    store.set_env("p", "prod", {"A": "1"})
    assert revs() == (1, 1)
    store.set_env("p", "test", {"A": "2"})
    assert revs() == (1, 2)
    store.set_env("p", "prod", {"A": "3"})  # test overrides A: test sees no change
    assert revs() == (2, 2)


def test_files_are_private_and_hold_no_plain_secret(store: Store, settings: Settings) -> None:
    secret, token = "sk-live-5f3a9b2c7d1e", "ghp_Zx81NnQ2Lp0Yt7"
    store.add_project(project(), repo_auth=f"x-token:{token}")
    store.set_env("p", "prod", {"API_KEY": secret})
    store.set_env("p", "test", {"API_KEY": secret + "-test"})
    store.update_project("p", keep=3)
    for path in settings.data_dir.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            assert secret.encode() not in raw and token.encode() not in raw, path
    for name in ("store.json", "store.json.bak", "secret.key", "store.lock"):
        assert (settings.data_dir / name).stat().st_mode & 0o777 == 0o600, name
    assert settings.data_dir.stat().st_mode & 0o777 == 0o711


def test_wrong_or_malformed_key_is_a_clear_error(make_settings: MakeSettings) -> None:
    Store.open(make_settings(CONTROLPLANE_KEY=generate_key()))
    with pytest.raises(KeyringError) as info:
        Store.open(make_settings(CONTROLPLANE_KEY=generate_key()))
    assert "does not decrypt" in str(info.value)
    assert info.value.text.render("ru").startswith(
        "ключ из CONTROLPLANE_KEY не расшифровывает хранилище"
    )
    with pytest.raises(KeyringError) as info:
        Store.open(make_settings(CONTROLPLANE_KEY="not-a-key"))
    assert "controlplane key generate" in str(info.value)


def test_rotation_with_key_file(store: Store, settings: Settings) -> None:
    store.add_project(project(), repo_auth="u:tok")
    store.set_env("p", "prod", {"A": "alpha"})
    old = settings.key_path.read_text()
    assert store.rotate_key() == 3
    assert settings.key_path.read_text() != old
    assert len(settings.key_path.read_text().split()) == 1
    again = Store.open(settings)
    assert again.env("p", "prod") == {"A": "alpha"} and again.repo_auth("p") == "u:tok"


def test_rotation_with_environment_keys(make_settings: MakeSettings) -> None:
    k1, k2 = generate_key(), generate_key()
    store = Store.open(make_settings(CONTROLPLANE_KEY=k1))
    store.add_project(project())
    store.set_env("p", "prod", {"A": "alpha"})
    rotated = Store.open(make_settings(CONTROLPLANE_KEY=f"{k2},{k1}"))
    rotated.rotate_key()
    only_new = Store.open(make_settings(CONTROLPLANE_KEY=k2))
    assert only_new.env("p", "prod") == {"A": "alpha"}


def test_corrupt_file_is_detected_and_last_good_copy_restores(
    store: Store, settings: Settings
) -> None:
    store.add_project(project())
    store.set_env("p", "prod", {"A": "1"})
    store.set_env("p", "prod", {"A": "2"})
    raw = settings.store_path.read_bytes()
    settings.store_path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(StoreCorrupt) as info:
        Store.open(settings)
    assert "store.json.bak" in str(info.value) and "controlplane store restore" in str(info.value)
    assert info.value.backup == settings.data_dir / "store.json.bak"
    assert info.value.path == settings.store_path
    russian = info.value.text.render("ru")
    assert russian.startswith(f"{settings.store_path} повреждён (")
    assert f"последняя исправная копия — {info.value.backup}" in russian
    assert "`controlplane store restore`" in russian
    Store(settings, store.keyring).restore_backup()
    restored = Store.open(settings)
    assert restored.env("p", "prod") == {"A": "1"}  # the copy before the last write
    assert (settings.data_dir / "store.json.damaged").exists()


def test_a_store_file_with_no_good_copy_says_so_in_either_language(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    path.write_text("[1, 2]")
    with pytest.raises(StoreCorrupt) as info:
        AtomicJSONStorage(str(path)).read()
    assert info.value.backup is None and info.value.path == path
    assert str(info.value) == (
        f"{path} is damaged (top level is not an object); there is no backup copy beside it"
    )
    assert info.value.text.render("ru") == (
        f"{path} повреждён (верхний уровень — не объект); резервной копии рядом нет"
    )


def test_writer_killed_at_random_moments_never_leaves_an_unreadable_store(
    store: Store, settings: Settings
) -> None:
    store.add_project(project())
    rng = random.Random(1234)
    for i in range(200):
        proc = writer(settings.data_dir, f"K{i}", 10_000)
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        # sleep between 0 and 30 ms inside the writer's loop, then kill
        try:
            proc.wait(timeout=rng.uniform(0, 0.03))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        json.loads(settings.store_path.read_bytes())  # parses, whole
        fresh = Store.open(settings)
        assert fresh.get_project("p").name == "p"
        fresh.env("p", "prod")  # every token still decrypts


def test_two_processes_writing_at_once_lose_no_update(store: Store, settings: Settings) -> None:
    store.add_project(project())
    procs = [writer(settings.data_dir, prefix, 60) for prefix in ("A", "B")]
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0 and out == "ready\n"
    env = store.env("p", "prod")
    assert {f"A_{i}" for i in range(60)} | {f"B_{i}" for i in range(60)} == set(env)
    assert env["B_59"] == "value-B-59-" + "x" * 9


def test_a_store_written_whole_by_an_older_version_is_split_on_open(
    store: Store, settings: Settings
) -> None:
    from controlplane.domain.history import CommitRow
    from controlplane.service.outbox import Outbox

    store.add_project(project())
    old = json.loads(settings.store_path.read_bytes())
    row = {"n": 1, "sha": "a" * 40, "date": 1.0, "author": "A", "subject": "s", "project": "p"}
    old["commits"] = {"1": row}
    old["releases"] = {"1": {"n": 1, "sha": "a" * 40, "state": "ready", "project": "p"}}
    old["state"] = {"1": {"prod": 1, "prod_running": True, "project": "p"}}
    event = {"seq": 7, "at": 1.0, "kind": "k", "project": "p", "text": "t", "data": {}}
    old["outbox"] = {"1": {**event, "acked": []}}
    settings.store_path.write_text(json.dumps(old))

    again = Store.open(settings)
    assert again.commits("p") == [CommitRow(1, "a" * 40, 1.0, "A", "s")]
    assert [r.state for r in again.releases("p")] == ["ready"]
    assert again.state("p").prod == 1 and again.state("p").prod_running
    assert [e.seq for e in Outbox(again).pending("bot")] == [7]
    assert set(json.loads(settings.store_path.read_bytes())) == {"meta", "projects"}
    assert (settings.data_dir / "store.d" / "projects" / "p.json").stat().st_mode & 0o777 == 0o600

    again.forget("p")
    assert again.commits("p") == [] and again.state("p").prod is None
    assert not (settings.data_dir / "store.d" / "projects" / "p.json").exists()


def test_a_state_with_fields_an_older_version_wrote_still_loads(
    store: Store, settings: Settings
) -> None:
    store.add_project(project())
    store.update_state("p", prod=1, prod_running=True)
    shard = settings.layout.project_store("p")
    doc = json.loads(shard.read_bytes())
    (row,) = doc["state"].values()
    row["fatal_retries"] = {"p-prod": {"attempt": 2}}  # a field that is gone
    row["test_run"] = {"n": 1, "verdict": {"passed": True, "reason": "ok", "at": 1.0}}
    shard.write_text(json.dumps(doc))

    again = Store.open(settings)
    state = again.state("p")
    assert (state.prod, state.prod_running) == (1, True)
    assert state.test_verdict is not None and state.test_verdict.passed
    assert again.update_state("p", prod=2).prod == 2


def test_more_projects_than_files_kept_parsed_read_and_write_right(
    store: Store, settings: Settings
) -> None:
    """Only the most recently used project and commit files stay parsed (KEEP_PARSED);
    one dropped is read again, and a change made by another process is seen."""
    from controlplane.adapters.store import KEEP_PARSED
    from controlplane.domain.history import CommitRow

    names = [f"p{i:03d}" for i in range(KEEP_PARSED + 6)]
    for i, name in enumerate(names):
        store.add_project(project(name))
        store.add_commits(name, [CommitRow(0, f"{i:040x}", 1.0, "Ada", f"first of {name}")])
        store.update_state(name, prod=1, prod_running=True)
    other = Store.open(settings)  # another process, in effect
    other.update_state(names[0], prod_running=False)
    assert [store.state(n).prod_running for n in names] == [False] + [True] * (len(names) - 1)
    assert [store.commits(n)[0].subject for n in names] == [f"first of {n}" for n in names]
    assert [p.name for p in store.list_projects()] == names
    assert store.find_commits(names[1], {1}, set())[0].sha == f"{1:040x}"
