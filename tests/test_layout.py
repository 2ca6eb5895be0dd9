"""The data directory's layout: every path is the one an existing install has on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.domain.models import Project
from controlplane.layout import Layout, ready_marker, release_in, rotated, venv_python
from controlplane.settings import Settings

DATA = Path("/data")

# (what the layout calls it, the path an existing data directory has)
FIXED = [
    ("store", "store.json"),
    ("store_shards", "store.d"),
    ("outbox_store", "store.d/outbox.json"),
    ("outbox_log", "store.d/outbox.log"),
    ("store_lock", "store.lock"),
    ("key", "secret.key"),
    ("supervisord_conf", "supervisord.conf"),
    ("supervisor_dir", "supervisor"),
    ("confd", "supervisor/conf.d"),
    ("supervisor_sock", "supervisor/supervisor.sock"),
    ("supervisor_auth", "supervisor/auth"),
    ("supervisord_pid", "supervisor/supervisord.pid"),
    ("control_sock", "controlplane.sock"),
    ("logs_dir", "logs"),
    ("supervisord_log", "logs/supervisord.log"),
    ("serve_log", "logs/controlplane.log"),
    ("events_log", "logs/events.jsonl"),
    ("events_err_log", "logs/events.err.log"),
    ("load_samples", "logs/load.json"),
    ("cache_dir", "cache"),
    ("projects_dir", "projects"),
    ("apps_dir", "apps"),
]


@pytest.mark.parametrize(("attr", "path"), FIXED)
def test_fixed_paths(attr: str, path: str) -> None:
    assert getattr(Layout(DATA), attr) == DATA / path


def test_per_project_paths() -> None:
    layout = Layout(DATA)
    assert layout.project_store("shop") == DATA / "store.d/projects/shop.json"
    assert layout.program_conf("shop-prod") == DATA / "supervisor/conf.d/shop-prod.conf"
    assert layout.program_logs("shop-test") == (
        DATA / "logs/shop-test.out.log",
        DATA / "logs/shop-test.err.log",
    )
    assert layout.build_log("shop", 7) == DATA / "logs/builds/shop-7.log"
    assert layout.app_folder("shop") == DATA / "apps/shop"
    assert layout.project_dir("shop") == DATA / "projects/shop"
    assert layout.releases_dir("shop") == DATA / "projects/shop/releases"
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert layout.release_dir("shop", 3, sha) == DATA / "projects/shop/releases/3-0123456"
    assert layout.mirror("shop") == DATA / "projects/shop/mirror.git"
    assert layout.test_link("shop") == DATA / "projects/shop/test"
    assert layout.shared_dir("shop") == DATA / "projects/shop/shared"
    assert layout.slot_data("shop", "prod") == DATA / "projects/shop/shared/prod"
    assert layout.slot_data("shop", "test") == DATA / "projects/shop/shared/test"
    assert layout.known_hosts("shop") == DATA / "projects/shop/ssh/known_hosts"


def test_slot_code_is_the_admins_folder_for_prod_and_the_test_link_for_test() -> None:
    layout = Layout(DATA)
    project = Project(name="shop", repo="https://example.com/shop.git", path="/srv/shop")
    assert layout.slot_code(project, "prod") == Path("/srv/shop")
    assert layout.slot_code(project, "test") == DATA / "projects/shop/test"


def test_names_inside_a_release_and_a_rotated_log() -> None:
    release = release_in(Path("/r/releases"), 12, "abcdef0123456789")
    assert release == Path("/r/releases/12-abcdef0")
    assert ready_marker(release) == Path("/r/releases/12-abcdef0.ready")
    assert venv_python(release) == Path("/r/releases/12-abcdef0/.venv/bin/python")
    assert rotated(DATA / "logs/events.jsonl") == DATA / "logs/events.jsonl.1"


def test_settings_paths_are_the_layouts(tmp_path: Path) -> None:
    settings = Settings.from_env({"CONTROLPLANE_DATA_DIR": str(tmp_path)})
    layout = settings.layout
    assert layout == Layout(tmp_path)
    assert (settings.store_path, settings.key_path) == (layout.store, layout.key)
    assert (settings.supervisord_conf, settings.supervisor_dir, settings.confd) == (
        layout.supervisord_conf,
        layout.supervisor_dir,
        layout.confd,
    )
    assert (settings.supervisor_sock, settings.supervisor_auth, settings.control_sock) == (
        layout.supervisor_sock,
        layout.supervisor_auth,
        layout.control_sock,
    )
    assert (settings.logs_dir, settings.projects_dir, settings.apps_dir) == (
        layout.logs_dir,
        layout.projects_dir,
        layout.apps_dir,
    )
    assert settings.project_dir("a") == layout.project_dir("a")
    assert settings.known_hosts("a") == layout.known_hosts("a")
