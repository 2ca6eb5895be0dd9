"""Validation of every field a person types: examples, and arbitrary text (hypothesis)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.domain.models import (
    Project,
    convert_setting,
    format_interval,
    parse_assignments,
    parse_duration,
    parse_interval,
    parse_test_duration,
    validate_branch,
    validate_entry,
    validate_folder,
    validate_name,
    validate_repo_url,
    validate_var_name,
    validate_var_value,
)
from controlplane.errors import ValidationError

DATA = Path("/var/lib/cp-data-for-tests")
NASTY = st.one_of(
    st.text(),
    st.text(alphabet="/.-~^:?*[\\ @{}\x00\n\r\t%'\"$`;|&<>abc", max_size=40),
    st.sampled_from(["..", "/", "-x", "--upload-pack=touch /tmp/x", "ext::sh -c id", "a/../b"]),
)


def accepts(fn: object, raw: str) -> bool:
    try:
        fn(raw)  # type: ignore[operator]
    except ValidationError as exc:
        assert str(exc).startswith("bad ")
        assert "\n" not in str(exc)
        return False
    return True


@given(NASTY)
def test_name_fuzz(raw: str) -> None:
    if accepts(validate_name, raw):
        assert raw[0] not in "-_." and "/" not in raw and ".." not in raw
        assert raw.isascii() and raw == raw.lower() and len(raw) <= 32


@given(NASTY)
def test_branch_fuzz_agrees_with_git(raw: str) -> None:
    ok = accepts(validate_branch, raw)
    if ok:
        assert not raw.startswith("-") and ".." not in raw and not any(ord(c) < 32 for c in raw)
        # whatever we accept, git accepts too
        if "\x00" not in raw:
            done = subprocess.run(
                ["git", "check-ref-format", "--branch", raw], capture_output=True, check=False
            )
            assert done.returncode == 0, raw


@given(NASTY)
def test_var_name_fuzz(raw: str) -> None:
    if accepts(validate_var_name, raw):
        assert raw.isidentifier() and raw.isascii()


@given(NASTY)
def test_entry_fuzz(raw: str) -> None:
    if accepts(validate_entry, raw):
        assert ".." not in raw.split("/") and not raw.startswith(("/", "-"))
        assert not any(ord(c) < 32 for c in raw)


@given(NASTY)
def test_folder_fuzz(raw: str) -> None:
    if accepts(lambda r: validate_folder(r, data_dir=DATA), raw):
        assert raw.startswith("/") and raw.rstrip("/") != ""
        assert ".." not in raw.split("/") and not any(ord(c) < 32 for c in raw)
        assert not any(p.startswith("-") for p in raw.split("/"))


@given(NASTY)
@settings(max_examples=300)
def test_repo_url_fuzz(raw: str) -> None:
    for allow in (False, True):
        try:
            url = validate_repo_url(raw, allow_file=allow)
        except ValidationError:
            continue
        assert not raw.startswith("-") and "ext::" not in raw
        assert not any(ord(c) < 32 for c in raw) and " " not in raw
        assert "@" not in url.url.split("//", 1)[-1].split("/")[0] or not url.url.startswith("http")


@given(st.text(max_size=200))
def test_duration_and_interval_fuzz(raw: str) -> None:
    for fn in (parse_duration, parse_interval):
        try:
            seconds = fn(raw)
        except ValidationError:
            continue
        assert 0 <= seconds <= 7 * 86400


@pytest.mark.parametrize(
    "raw",
    [
        "/",
        "/etc",
        "/etc/app",
        "/usr/local/bin",
        "/proc/1",
        "relative/x",
        "/srv/../etc",
        "/srv/./x",
        "/srv/-rf",
        "",
        "/home",
        "/tmp",
        "/srv/a\nb",
    ],
)
def test_folders_refused(raw: str) -> None:
    with pytest.raises(ValidationError):
        validate_folder(raw, data_dir=DATA)


def test_folder_rules_for_data_dir_symlinks_and_windows(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for bad in (str(data), str(data / "projects" / "x"), str(tmp_path)):
        with pytest.raises(ValidationError):
            validate_folder(bad, data_dir=data)
    assert (
        validate_folder(str(data / "apps" / "x"), data_dir=data, allowed_inside=(data / "apps",))
        == data / "apps" / "x"
    )
    link = tmp_path / "sneaky"
    link.symlink_to("/etc")
    with pytest.raises(ValidationError):
        validate_folder(str(link), data_dir=data)
    with pytest.raises(ValidationError) as info:
        validate_folder(r"C:\bots\app", data_dir=data)
    assert "Windows path" in str(info.value) and "/data/apps/NAME" in str(info.value)
    with pytest.raises(ValidationError):
        validate_folder(r"\\server\share\app", data_dir=data)
    assert validate_folder("/srv/bots/app/", data_dir=data) == Path("/srv/bots/app")


@pytest.mark.parametrize(
    ("raw", "url", "auth", "warned"),
    [
        ("https://github.com/o/r.git", "https://github.com/o/r.git", None, False),
        (
            "https://x-token:ghp_abc@github.com/o/r.git",
            "https://github.com/o/r.git",
            "x-token:ghp_abc",
            False,
        ),
        ("http://git.local/o/r", "http://git.local/o/r", None, True),
        ("ssh://git@github.com/o/r.git", "ssh://git@github.com/o/r.git", None, False),
        ("git@github.com:o/r.git", "git@github.com:o/r.git", None, False),
    ],
)
def test_repo_urls_accepted(raw: str, url: str, auth: str | None, warned: bool) -> None:
    got = validate_repo_url(raw)
    assert (got.url, got.auth, got.warning is not None) == (url, auth, warned)


@pytest.mark.parametrize(
    "raw",
    [
        "--upload-pack=touch /tmp/pwned",
        "ext::sh -c touch% /tmp/pwned",
        "file:///srv/r.git",
        "/srv/r.git",
        "ftp://h/r",
        "https://",
        "https://h",
        "git@h:-oProxyCommand=x",
        "javascript:alert(1)",
        "localhost:repo",
        "https://h/../x",
        "https://h/a b",
        "https://h:99999/x",
    ],
)
def test_repo_urls_refused(raw: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_repo_url(raw)
    assert "use https://" in str(info.value)


def test_a_pasted_page_is_no_repository_url() -> None:
    with pytest.raises(ValidationError) as info:
        validate_repo_url("https://h/" + "x" * 4000)
    assert "at most 2048 characters" in str(info.value) and len(str(info.value)) < 200


def test_one_test_duration_range_wherever_it_is_given() -> None:
    assert parse_test_duration("7d") == 7 * 86400 == convert_setting("test-duration", "7d")[1]
    for bad in ("4", "8d"):
        with pytest.raises(ValidationError):
            parse_test_duration(bad)
        with pytest.raises(ValidationError):
            convert_setting("test-duration", bad)


def test_file_urls_only_when_allowed() -> None:
    assert validate_repo_url("/srv/r.git", allow_file=True).url == "/srv/r.git"
    assert validate_repo_url("file:///srv/r.git", allow_file=True).url == "file:///srv/r.git"
    with pytest.raises(ValidationError):
        validate_repo_url("file://evil.host/r.git", allow_file=True)


def test_assignments_and_values() -> None:
    assert parse_assignments(["A=1", "B_2=x=y", "C="]) == {"A": "1", "B_2": "x=y", "C": ""}
    assert parse_assignments(['P=100%\n"q"']) == {"P": '100%\n"q"'}
    for bad in (["NOEQUALS"], ["1A=x"], ["A-B=x"], ["HOME=/x"], ["APP_DATA_DIR=x"]):
        with pytest.raises(ValidationError):
            parse_assignments(bad)
    with pytest.raises(ValidationError):
        validate_var_value("K", "a\x00b")
    with pytest.raises(ValidationError) as info:
        validate_var_value("K", "x" * (1024 * 1024))
    assert "64 KiB" in str(info.value)


def test_durations_and_settings() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("5m") == 300
    assert parse_interval("off") == 0
    assert parse_interval("1h") == 3600
    assert format_interval(21600) == "6h"
    with pytest.raises(ValidationError):
        parse_interval("30s")
    assert convert_setting("keep", "7") == ("keep", 7)
    assert convert_setting("output", "off") == ("output", False)
    assert convert_setting("health-window", "1m") == ("health_window", 60)
    assert convert_setting("check", "pytest -q") == ("check", "pytest -q")
    for key, value in (
        ("keep", "0"),
        ("keep", "x"),
        ("policy", "yolo"),
        ("nope", "1"),
        ("check", "pytest 'unclosed"),
        ("entry", "../x.py"),
    ):
        with pytest.raises(ValidationError):
            convert_setting(key, value)


@given(
    st.builds(
        Project,
        name=st.from_regex(r"[a-z0-9][a-z0-9_-]{0,31}", fullmatch=True),
        repo=st.text(max_size=50),
        path=st.text(max_size=50),
        poll=st.integers(0, 604800),
        output=st.booleans(),
        check=st.none() | st.text(max_size=30),
    )
)
def test_project_round_trip(project: Project) -> None:
    assert Project.from_dict(project.to_dict()) == project


@pytest.mark.parametrize("raw", ["¹", "٣", "²m", "12³"])
def test_non_ascii_digits_are_refused(raw: str) -> None:
    for fn in (parse_duration, parse_interval):
        with pytest.raises(ValidationError):
            fn(raw)
    with pytest.raises(ValidationError):
        convert_setting("keep", raw)


def refusal(call: Callable[[], object]) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        call()
    return info.value


def test_refusals_read_in_each_language(tmp_path: Path) -> None:
    link = tmp_path / "sneaky"
    link.symlink_to("/etc")
    folder = refusal(lambda: validate_folder(str(link), data_dir=DATA))
    assert str(folder).startswith("bad folder '") and str(folder).endswith(
        ": it leads to /etc: /etc is a system folder; give one such as /srv/bots/NAME"
    )
    assert folder.text.render("ru").startswith("не подходит папка '")
    assert folder.text.render("ru").endswith(
        ": она ведёт в /etc: /etc — системная папка; укажите другую, например /srv/bots/NAME"
    )
    duration = refusal(lambda: convert_setting("test-duration", "2s"))
    assert str(duration) == (
        "bad test duration '2s': use a number of seconds or 30s, 5m, 1h, 1d (from 5s to 7d)"
    )
    assert duration.text.render("ru") == (
        "не подходит длительность теста '2s': укажите число секунд или 30s, 5m, 1h, 1d "
        "(от 5s до 7d)"
    )
    setting = refusal(lambda: convert_setting("colour", "red"))
    assert setting.text.render("ru").startswith("не подходит настройка 'colour': укажите одно из: ")
    name = refusal(lambda: validate_name("Shop!"))
    assert name.text.render("ru") == (
        "не подходит имя проекта 'Shop!': используйте от 1 до 32 символов a-z, 0-9, '-' и '_'; "
        "первый — буква или цифра"
    )
    warned = validate_repo_url("http://git.local/o/r")
    assert warned.warning is not None and warned.warning.render("ru").startswith(
        "http:// не шифруется"
    )
