"""The CLI speaks the locale's language: Russian under LANG=ru_RU.UTF-8, English under
LANG=C (and by default): its errors, tables, results, progress and help. Its --json
output is the same bytes in every language."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import cli_env
from tests.support.fixtures_release import Plant, add_shop
from tests.support.fixtures_repos import Origin

ROOT = Path(__file__).resolve().parents[2]
RU = {"LANG": "ru_RU.UTF-8", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": ""}
EN = {"LANG": "C", "LANGUAGE": "", "LC_ALL": "", "LC_MESSAGES": ""}
CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


def run(data_dir: Path, locale: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controlplane", *args],
        capture_output=True,
        text=True,
        env=cli_env(data_dir, **locale),
        cwd=ROOT,
        timeout=60,
        check=False,
    )


@pytest.fixture
def seeded(data_dir: Path, tmp_path: Path, origin: Callable[..., Origin]) -> Path:
    repo = origin("demo")
    repo.commits(3)
    live = str(tmp_path / "live")
    done = run(data_dir, EN, "project", "add", "demo", "--repo", repo.url, "--path", live)
    assert done.returncode == 0, done.stderr
    assert (
        run(data_dir, EN, "env", "set", "demo", "API_KEY=sk-live-0123456789abcdef").returncode == 0
    )
    assert run(data_dir, EN, "poll", "demo", "15m").returncode == 0
    return data_dir


def test_errors_are_in_the_locales_language(seeded: Path) -> None:
    unset = ("env", "unset", "demo", "API_KEY", "NOT_SET")
    ru, en = run(seeded, RU, *unset), run(seeded, EN, *unset)
    assert (ru.returncode, en.returncode) == (1, 1)
    assert ru.stderr == "controlplane: ошибка: NOT_SET не задано в demo prod; ничего не удалено\n"
    assert en.stderr == "controlplane: error: NOT_SET not set in demo prod; nothing removed\n"

    misplaced = ("deploy", "demo", "--duration", "5m")
    ru, en = run(seeded, RU, *misplaced), run(seeded, EN, *misplaced)
    assert (ru.returncode, en.returncode) == (2, 2)
    assert ru.stderr.startswith("controlplane: ошибка: ") and "только с --test" in ru.stderr
    assert en.stderr == "controlplane: error: bad --duration '5m': it goes with --test\n"

    missing = run(seeded, RU, "project", "show", "missing")
    assert missing.returncode == 1 and missing.stderr.startswith("controlplane: ошибка: ")
    assert "no project" not in missing.stderr and "missing" in missing.stderr

    unknown = run(seeded, RU, "frobnicate")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("controlplane: ошибка: ") and "(см. --help)" in unknown.stderr
    assert "недопустимое значение: 'frobnicate'" in unknown.stderr  # argparse's own words too

    short = ("project", "add", "demo2")
    ru, en = run(seeded, RU, *short), run(seeded, EN, *short)
    assert "не хватает обязательных аргументов: --repo, --path" in ru.stderr
    assert "the following arguments are required: --repo, --path" in en.stderr


def test_tables_and_results_are_in_the_locales_language(seeded: Path) -> None:
    listed = run(seeded, RU, "project", "list").stdout
    assert listed.startswith("demo ") and "опрос 15 мин" in listed and "poll" not in listed
    assert "poll 15m" in run(seeded, EN, "project", "list").stdout

    shown = run(seeded, RU, "project", "show", "demo").stdout
    labels = [line.split("  ")[0].strip() for line in shown.splitlines()]
    assert labels[:3] == ["имя", "репозиторий", "ветка"] and "вывод в чат" in labels
    english = run(seeded, EN, "project", "show", "demo").stdout
    assert english.splitlines()[1].startswith("repository      ") and "output to chat" in english

    assert run(seeded, RU, "poll", "demo", "1h").stdout == "demo: опрос 1 ч\n"
    assert run(seeded, EN, "poll", "demo", "15m").stdout == "demo: poll 15m\n"
    assert run(seeded, RU, "env", "set", "demo", "X=1").stdout == (
        "X задано для demo prod\ndemo prod не запущен: изменение вступит в силу при запуске\n"
    )
    assert run(seeded, EN, "env", "unset", "demo", "X").stdout == (
        "removed X from demo prod\ndemo prod is not running: the change applies when it starts\n"
    )

    status = run(seeded, RU, "status").stdout.splitlines()
    assert status[1].startswith("папка данных ") and status[3].split() == ["проекты", "1"]
    assert status[2].split() == ["бот", "выключен:", "TELEGRAM_TOKEN", "не", "задан"]
    english = run(seeded, EN, "status").stdout.splitlines()
    assert english[2:4] == ["bot            off: no TELEGRAM_TOKEN", "projects       1"]

    history = run(seeded, RU, "history", "demo").stdout.splitlines()
    assert [line.split()[0] for line in history] == ["#3", "#2", "#1"]


def test_adding_a_project_reports_in_the_locales_language(
    data_dir: Path, tmp_path: Path, origin: Callable[..., Origin]
) -> None:
    assert run(data_dir, RU, "project", "list").stdout.startswith("проектов пока нет: ")
    repo = origin("one")
    repo.commits(1)
    live = str(tmp_path / "one")
    added = run(data_dir, RU, "project", "add", "one", "--repo", repo.url, "--path", live)
    assert added.returncode == 0, added.stderr
    assert added.stderr.startswith("пронумерован 1 коммит; последний #1 ")
    assert added.stdout.startswith("проект one добавлен\nимя ")

    more = origin("more")
    more.commits(3)
    live = str(tmp_path / "more")
    added = run(data_dir, EN, "project", "add", "more", "--repo", more.url, "--path", live)
    assert added.stderr.startswith("numbered 3 commits; head #3 ")
    assert added.stdout.startswith("added more\nname ")
    removed = run(data_dir, RU, "project", "remove", "more").stdout
    assert removed.startswith("проект more удалён; чужие файлы в ")


def test_json_is_the_same_in_every_language(seeded: Path) -> None:
    assert run(seeded, EN, "project", "key", "demo").returncode == 0  # the key made once
    now = re.compile(r'"now": [0-9.e+]+')
    for command in (
        ("status", "--json"),
        ("status", "demo", "--json"),
        ("project", "list", "--json"),
        ("project", "show", "demo", "--json"),
        ("project", "key", "demo", "--json"),
        ("env", "list", "demo", "--json"),
        ("history", "demo", "--json"),
    ):
        ru, en = run(seeded, RU, *command), run(seeded, EN, *command)
        assert ru.returncode == en.returncode == 0, command
        json.loads(en.stdout)
        # byte for byte, but for the clock reading that each status carries
        assert now.sub('"now": 0', ru.stdout) == now.sub('"now": 0', en.stdout), command


def test_help_is_in_the_locales_language(data_dir: Path) -> None:
    ru = " ".join(run(data_dir, RU, "--help").stdout.split())  # as argparse wraps it
    assert "управляемый из бота Telegram" in ru and "добавить, перечислить" in ru
    assert ru.startswith("использование: controlplane") and "показать эту справку" in ru
    for command in ("project", "deploy", "status", "launch", "history"):
        assert command in ru
    add_ru = " ".join(run(data_dir, RU, "project", "add", "--help").stdout.split())
    assert "отслеживаемая ветка (по умолчанию main)" in add_ru
    add_en = " ".join(run(data_dir, EN, "project", "add", "--help").stdout.split())
    assert "branch to follow (default main)" in add_en


@pytest.mark.timeout(300)
def test_an_operation_followed_through_serve_speaks_the_locales_language(plant: Plant) -> None:
    plant.commit("1")
    add_shop(plant)
    plant.ok("project", "set", "shop", "health-window", "0")
    env = {**plant.box.env, "CONTROLPLANE_ALLOW_FILE_URLS": "1"}

    def cli(locale: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "controlplane", *args],
            capture_output=True,
            text=True,
            env={**env, **locale},
            cwd=ROOT,
            timeout=240,
            check=False,
        )

    deployed = cli(RU, "deploy", "shop")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    lines = deployed.stdout.splitlines()
    steps = [line for line in lines if line.startswith("• ")]
    assert steps and all(CYRILLIC.search(step) for step in steps), steps
    assert CYRILLIC.search(lines[-1]), lines[-1]  # the result

    restarted = cli(EN, "restart", "shop")
    assert restarted.returncode == 0, restarted.stderr
    assert not CYRILLIC.search(restarted.stdout) and "• restarted shop-prod" in restarted.stdout

    refused = cli(RU, "cancel", "shop")
    assert refused.returncode == 1
    assert refused.stderr == "controlplane: ошибка: для shop ничего не выполняется\n"
