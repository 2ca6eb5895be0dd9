"""Status: the pure builder and texts, and status/logs/load through the CLI against a really
deployed project."""

from __future__ import annotations

import json
import re
import time

from controlplane.adapters.supervisor.client import ProcessInfo
from controlplane.domain.history import CommitRow, Release, SlotState
from controlplane.domain.models import Project
from controlplane.i18n import Text
from controlplane.observe.status import (
    build_status,
    format_overview,
    format_status,
    restarts_by_program,
)
from tests.support.fixtures_release import Plant, add_shop

NOW = 1_800_000_000.0
COMMITS = [
    CommitRow(n, f"{n:x}" * 40, NOW - 86400 + n * 600, "Ada", f"change {n}") for n in (6, 7, 8)
]


def info(state: str, pid: int = 0, start: float = 0.0) -> ProcessInfo:
    return ProcessInfo(
        name="shop-prod",
        group="shop-prod",
        state=state,
        pid=pid,
        start=start,
        stop=0.0,
        now=NOW,
        exitstatus=0,
        description="",
    )


def status_of(**state: object) -> str:
    project = Project(name="shop", repo="https://h/o.git", path="/srv/shop", poll=300)
    slot_state = SlotState(
        prod=7,
        prod_running=True,
        head=COMMITS[-1].sha,
        last_poll={"at": NOW - 60, "ok": True, "head": COMMITS[-1].sha, "error": None},
        op={"op": "deploy", "since": NOW - 90},
    ).with_(**state)
    releases = [Release(7, COMMITS[1].sha, "ready", size=40 << 20), Release(6, "x", "pruned")]
    ps = build_status(
        project,
        slot_state,
        releases,
        COMMITS,
        {"shop-prod": info("RUNNING", 812, NOW - 7380)},
        {"shop-prod": 2},
        NOW,
    )
    return format_status(ps) + "\n--\n" + format_overview([ps])


def test_status_text() -> None:
    text = status_of()
    assert "prod  RUNNING  pid 812  up 2h 3m  2 restarts in the last hour" in text
    assert "#7 7777777 change 7 (committed 22h 50m ago)" in text
    assert "test  ABSENT" in text
    assert "last poll     1m ago, ok" in text
    assert "next poll     about in 4m (every 5m)" in text
    assert "newer commit  #8 8888888 change 8" in text
    assert "in progress   deploy for 1m 30s" in text
    assert "releases      1 on disk, 40.0 MiB" in text
    overview = text.split("--\n")[1]
    words = "shop prod RUNNING #7 up 2h 3m 2× restarted newer commit #8 deploy 1m 30s"
    assert overview.split() == words.split()


def test_status_text_failed_poll_and_nothing_deployed() -> None:
    text = status_of(
        prod=None,
        prod_running=False,
        op=None,
        last_poll={"at": NOW - 10, "ok": False, "error": "host unreachable"},
        poll_failures=1,
    )
    assert "nothing deployed" in text and "failed: host unreachable" in text
    assert "about in 9m 50s" in text  # backoff: 5m doubled
    assert "in progress" not in text
    # the poller keeps the error's Text beside its English: shown in the reader's language
    timed_out = Text("{command} timed out", {"command": "ls-remote"})
    failed = {"at": NOW - 10, "ok": False, "error": str(timed_out), "msg": timed_out.to_dict()}
    project = Project(name="shop", repo="https://h/o.git", path="/srv/shop")
    ps = build_status(project, SlotState(last_poll=failed), [], [], {}, {}, NOW)
    assert "10s ago, failed: ls-remote timed out" in format_status(ps)
    assert "10 с назад, ошибка: ls-remote: время вышло" in format_status(ps, "ru")


def test_status_in_russian() -> None:
    project = Project(name="shop", repo="https://h/o.git", path="/srv/shop")
    ps = build_status(project, SlotState(), [], [], {}, {}, NOW)
    text = format_status(ps, "ru")
    assert "ничего не развёрнуто" in text and "выкл." in text


def status_with(restarts: int, lang: str) -> str:
    project = Project(name="shop", repo="https://h/o.git", path="/srv/shop", poll=300)
    slot_state = SlotState(
        prod=7,
        prod_running=True,
        head=COMMITS[-1].sha,
        last_poll={"at": NOW - 60, "ok": True},
        op={"op": "deploy", "since": NOW - 90},
    )
    releases = [Release(7, COMMITS[1].sha, "ready", size=40 << 20)]
    infos = {"shop-prod": info("RUNNING", 812, NOW - 7380)}
    ps = build_status(project, slot_state, releases, COMMITS, infos, {"shop-prod": restarts}, NOW)
    return format_status(ps, lang) + "\n--\n" + format_overview([ps], lang)


def test_status_screen_in_russian_every_label_unit_and_count() -> None:
    text = status_with(3, "ru")
    assert "прод  RUNNING  pid 812  работает 2 ч 3 мин  3 перезапуска за час" in text
    assert "тест  ОТСУТСТВУЕТ" in text
    assert "#7 7777777 change 7 (коммит 22 ч 50 мин назад)" in text
    assert "прошлая проверка    1 мин назад, успешно" in text
    assert "следующая проверка  примерно через 4 мин (интервал 5 мин)" in text
    assert "новый коммит        #8 8888888 change 8" in text
    assert "выполняется         деплой уже 1 мин 30 с" in text
    assert "релизы              1 на диске, 40,0 МБ" in text
    overview = text.split("--\n")[1]
    words = (
        "shop прод RUNNING #7 работает 2 ч 3 мин 3 перезапуска новый коммит #8 деплой 1 мин 30 с"
    )
    assert overview.split() == words.split()
    # the three Russian plural forms, and English's two
    for n, ru, en in (
        (1, "1 перезапуск за час", "1 restart in the last hour"),
        (5, "5 перезапусков за час", "5 restarts in the last hour"),
        (11, "11 перезапусков за час", "11 restarts in the last hour"),
        (21, "21 перезапуск за час", "21 restarts in the last hour"),
        (22, "22 перезапуска за час", "22 restarts in the last hour"),
    ):
        assert ru in status_with(n, "ru") and en in status_with(n, "en"), n
    assert "1 перезапуск новый" in " ".join(status_with(1, "ru").split("--\n")[1].split())
    # nothing English is left in the Russian screen but names, states and commits
    words_left = set(re.findall(r"[A-Za-z]+", text)) - {"shop", "main", "change", "pid"}
    assert words_left == {"RUNNING"}, words_left


def test_restarts_count_exits_and_failed_starts_in_the_hour() -> None:
    records = [
        {"time": NOW - 4000, "state": "EXITED", "program": "shop-prod"},
        {"time": NOW - 100, "state": "EXITED", "program": "shop-prod"},
        {"time": NOW - 90, "state": "BACKOFF", "program": "shop-prod"},
        {"time": NOW - 80, "state": "STOPPED", "program": "shop-prod"},
        {"time": NOW - 70, "state": "EXITED", "program": "shop-test"},
    ]
    assert restarts_by_program(records, NOW - 3600) == {"shop-prod": 2, "shop-test": 1}


def test_status_and_logs_through_the_cli(plant: Plant) -> None:
    plant.commit("1")
    add_shop(plant)
    plant.ok("deploy", "shop")
    pid = int(str(plant.wait_report("prod", "1")["pid"]))
    plant.commit("2")  # a newer commit, seen by a poll: waiting
    plant.ok("poll", "shop", "5m")
    plant.stack.poller.poll_once(now=time.time() + 3600)

    started = time.monotonic()
    text = plant.ok("status", "shop")
    took = time.monotonic() - started
    print(text, f"\n(status took {took:.2f}s)")
    assert f"prod  RUNNING  pid {pid}" in text
    assert "#1 " in text and "version 1" in text
    assert "newer commit  #2" in text and "version 2" in text
    data = json.loads(plant.ok("status", "shop", "--json"))
    assert data["prod"]["state"] == "RUNNING" and data["prod"]["pid"] == pid
    assert data["prod"]["release"]["n"] == 1 and data["waiting"]["n"] == 2
    assert data["last_poll"]["ok"] is True and data["releases_on_disk"] == 1
    assert data["releases_bytes"] > 0
    overview = plant.ok("status")
    assert "projects       1" in overview and "shop" in overview and "RUNNING #1" in overview
    all_json = json.loads(plant.ok("status", "--json"))
    assert [p["name"] for p in all_json["projects"]] == ["shop"]

    logs = plant.ok("logs", "shop", "-n", "5")
    assert "shop-prod stdout" in logs and "running commit 1" in logs
    assert "shop-prod stderr" in logs
    shown = json.loads(plant.ok("logs", "shop", "--json"))
    assert shown["stdout"][-1] == "running commit 1" and shown["stdout_path"].endswith(".out.log")
    followed = plant.cli("logs", "shop", "--stdout", "--follow", "--for", "2")
    assert followed.returncode == 0 and "running commit 1" in followed.stdout
    assert plant.cli("logs", "shop", "--for", "2").returncode == 2
    assert plant.cli("logs", "nosuch").returncode == 1

    load = json.loads(plant.ok("load", "--json"))
    (slot,) = [s for s in load["slots"] if s["program"] == "shop-prod"]
    assert slot["pid"] == pid and slot["memory"] > 1 << 20 and slot["memory_kind"] == "PSS"
    assert "shop-prod" in plant.ok("load")
