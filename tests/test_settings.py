"""Settings: the environment parsed once, with clear errors for malformed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from controlplane.errors import SettingsError
from controlplane.settings import Platform, Settings, default_data_dir, detect_platform

LINUX = Platform(os="linux", arch="amd64", in_container=False)


def test_defaults_and_values() -> None:
    s = Settings.from_env(
        {
            "CONTROLPLANE_DATA_DIR": "/srv/cp",
            "ADMIN_CHAT_IDS": "123, -1001234567890",
            "TELEGRAM_TOKEN": "1:abc",
            "TELEGRAM_API_URL": "http://127.0.0.1:8081/",
            "CONTROLPLANE_LANG": "RU",
            "CONTROLPLANE_KEY": "k1, k2",
            "CONTROLPLANE_ALLOW_FILE_URLS": "yes",
        },
        LINUX,
    )
    assert s.data_dir == Path("/srv/cp")
    assert s.admin_chat_ids == frozenset({123, -1001234567890})
    assert s.telegram_api_url == "http://127.0.0.1:8081"
    assert s.lang == "ru"
    assert s.keys == ("k1", "k2")
    assert s.allow_file_urls is True
    assert s.store_path == Path("/srv/cp/store.json")
    assert s.confd == Path("/srv/cp/supervisor/conf.d")
    with pytest.raises(AttributeError):
        s.lang = "en"  # type: ignore[misc]


def test_unset_environment_gives_documented_defaults() -> None:
    s = Settings.from_env({"HOME": "/home/u"}, LINUX)
    assert s.telegram_token is None
    assert s.admin_chat_ids == frozenset()
    assert s.telegram_api_url == "https://api.telegram.org"
    assert s.data_dir == Path("/home/u/.local/share/controlplane")
    assert s.run_as is None
    assert s.allow_file_urls is False


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"ADMIN_CHAT_IDS": "123,abc"}, "ADMIN_CHAT_IDS: 'abc' is not a chat id"),
        ({"CONTROLPLANE_LANG": "de"}, "use en or ru"),
        ({"TELEGRAM_API_URL": "api.telegram.org"}, "TELEGRAM_API_URL"),
        ({"TELEGRAM_PROXY": "ftp://x"}, "TELEGRAM_PROXY"),
        ({"CONTROLPLANE_DATA_DIR": "relative/dir"}, "absolute"),
        ({"CONTROLPLANE_ALLOW_FILE_URLS": "maybe"}, "use 1 or 0"),
    ],
)
def test_malformed_values_are_refused_with_a_reason(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"HOME": "/root", **env}, LINUX)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_a_settings_error_names_its_variable_in_either_language() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"HOME": "/root", "TELEGRAM_PROXY": "ftp://x"}, LINUX)
    error = info.value
    assert (error.variable, error.value) == ("TELEGRAM_PROXY", "ftp://x")
    assert (
        str(error) == "TELEGRAM_PROXY: 'ftp://x' is not a URL; use http or https or socks5://host"
    )
    assert error.text.render("en") == str(error)
    assert error.text.render("ru") == (
        "TELEGRAM_PROXY: 'ftp://x' — не URL; укажите http или https или socks5://host"
    )
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"HOME": "/root", "ADMIN_CHAT_IDS": "12,me"}, LINUX)
    assert info.value.variable == "ADMIN_CHAT_IDS" and info.value.value == "me"
    assert info.value.text.render("ru").startswith("ADMIN_CHAT_IDS: 'me' — не id чата; укажите")


def test_default_data_dir_per_platform() -> None:
    env = {"HOME": "/home/u", "LOCALAPPDATA": r"C:\Users\u\AppData\Local"}
    win = Platform(os="windows", arch="amd64", in_container=False)
    mac = Platform(os="macos", arch="arm64", in_container=False)
    assert str(default_data_dir(win, env)).endswith("controlplane")
    assert r"C:\Users\u\AppData\Local" in str(default_data_dir(win, env))
    assert default_data_dir(mac, env) == Path("/home/u/Library/Application Support/controlplane")
    assert default_data_dir(LINUX, {**env, "XDG_DATA_HOME": "/x"}) == Path("/x/controlplane")


def test_container_detection_from_markers(tmp_path: Path) -> None:
    assert detect_platform(tmp_path).in_container is False
    (tmp_path / ".dockerenv").touch()
    assert detect_platform(tmp_path).in_container is True
    other = tmp_path / "other"
    (other / "proc/1").mkdir(parents=True)
    (other / "proc/1/cgroup").write_text("0::/system.slice/docker-abc.scope\n")
    assert detect_platform(other).in_container is True
    assert str(detect_platform(other).describe()).endswith("in a container")
    assert detect_platform(other).describe().render("ru").endswith("в контейнере")


def test_running_apps_as_root_is_said_at_start() -> None:
    as_root = Settings.from_env({"CONTROLPLANE_DATA_DIR": "/d"}, LINUX)
    warnings = as_root.trust_warnings(0)
    assert warnings and "CONTROLPLANE_RUN_AS" in str(warnings[0])
    assert "CONTROLPLANE_RUN_AS не задан" in warnings[0].render("ru")
    assert as_root.trust_warnings(1000) == []  # not root: nothing has more rights than us
    split = Settings.from_env({"CONTROLPLANE_DATA_DIR": "/d", "CONTROLPLANE_RUN_AS": "app"}, LINUX)
    assert split.trust_warnings(0) == []


def test_a_token_without_admins_is_said_at_start() -> None:
    env = {"CONTROLPLANE_DATA_DIR": "/d", "CONTROLPLANE_RUN_AS": "app", "TELEGRAM_TOKEN": "1:x"}
    alone = Settings.from_env(env, LINUX)
    [warning] = alone.trust_warnings(1000)
    assert "ADMIN_CHAT_IDS is empty" in str(warning)
    assert "ADMIN_CHAT_IDS" in warning.render("ru") and "пуст" in warning.render("ru")
    admins = Settings.from_env({**env, "ADMIN_CHAT_IDS": "42"}, LINUX)
    assert admins.trust_warnings(1000) == []
