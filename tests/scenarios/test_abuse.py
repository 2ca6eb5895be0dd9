"""Abuse: strangers writing to the bot in every way Telegram allows, every typed field
fuzzed through the service layer, and the Telegram API gone for a while.

Each ends with: nothing happened, nothing was written (store bytes unchanged), no answer
leaked. What tests/test_bot.py already proves for a stranger's message, command and
forged button press is not repeated; the validators' own fuzzing is tests/test_models.py.
"""

from __future__ import annotations

import json
import os
import re
import string
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.client import render_program
from controlplane.domain.models import Project, parse_assignments
from controlplane.errors import ControlPlaneError
from controlplane.service.facade import Service
from controlplane.settings import Settings
from tests.support.chat import ADMIN, PROD_KEY, Chat

STRANGER = 777
CHANNEL = -1001234567890
GROUP = -4242


def add_shop(phone: Chat) -> None:
    rig = phone.plant
    rig.commit("1")
    live = str(rig.box.base / "live" / "shop")
    rig.ok("project", "add", "shop", "--repo", rig.origin.url, "--path", live)
    rig.ok("env", "set", "shop", f"API_KEY={PROD_KEY}")


def test_strangers_of_every_kind_get_nothing(phone: Chat) -> None:
    api, rig = phone.api, phone.plant
    add_shop(phone)
    phone.send("/start")
    menu = phone.wait_text("choose what to do")
    before = rig.stack.store.path.read_bytes()
    admin_msgs = len(api.bot_messages(ADMIN))

    sent = api.user_sends(STRANGER, "hello", user_id=STRANGER)
    api.user_sends(STRANGER, "/env shop", user_id=STRANGER, kind="edited_message", message_id=sent)
    api.user_sends(STRANGER, "/rm shop", user_id=STRANGER, forward_from=ADMIN)
    api.user_sends(CHANNEL, "/deploy shop", kind="channel_post")
    api.user_sends(GROUP, "/start", user_id=STRANGER)
    # an admin's own menu buttons, replayed by a stranger on the admin's message and in
    # the stranger's chat (forged data: the stranger has no such message)
    datas = list(phone.buttons(menu).values())
    forged = [
        api.user_presses(ADMIN, menu.message_id, data, user_id=STRANGER, forged=True)
        for data in [*datas, "rm!|shop", "cf|shop|prod"]
    ]
    # the admin's id as a forward origin, from a stranger, changes nothing either
    api.user_sends(STRANGER, f"API_KEY={PROD_KEY}", user_id=STRANGER, forward_from=ADMIN)
    # the admin pressing still works afterwards: every update was consumed in order
    mine = phone.press(menu, datas[0])
    phone.answered(mine)
    time.sleep(1.0)

    for chat in (STRANGER, CHANNEL, GROUP):
        assert api.bot_messages(chat) == [], (chat, api.dump())
    assert all(api.answer_of(q) is None for q in forged)
    assert rig.stack.store.path.read_bytes() == before
    reports = [m for m in api.bot_messages(ADMIN)[admin_msgs:] if "not an admin" in m.text]
    assert len(reports) <= 3, [m.text for m in reports]  # once per chat, at most
    assert api.pending_updates() == [], "an update was left unread"
    leaked = [c for c in api.requests if PROD_KEY in json.dumps(c.params, default=str)]
    assert leaked == []
    print(f"strangers: {len(forged)} forged presses unanswered, {len(reports)} admin reports")


@pytest.mark.timeout(200)
def test_telegram_down_then_back(phone: Chat) -> None:
    api, stack = phone.api, phone.plant.stack
    phone.send("/start")
    phone.wait_text("choose what to do")
    api.go_down()
    down_for = float(os.environ.get("CONTROLPLANE_TELEGRAM_DOWN", "15"))
    texts = [f"event {i} while Telegram is down" for i in range(5)]
    started = time.monotonic()
    for text in texts:
        stack.outbox.publish("error", None, text)
        time.sleep(down_for / len(texts))
    failed = [c for c in api.requests if c.status >= 500]
    assert failed, "the bot did not even try while the API was down"
    api.come_back()
    back = time.monotonic()

    def delivered() -> bool:
        seen = [m.text for m in api.bot_messages(ADMIN)]
        return all(any(t in s for s in seen) for t in texts)

    api.wait_for(delivered, timeout=120)
    took = time.monotonic() - back
    time.sleep(2.0)
    seen = [m.text for m in api.bot_messages(ADMIN)]
    counts = {t: sum(t in s for s in seen) for t in texts}
    assert set(counts.values()) == {1}, counts
    phone.send("/start")
    api.wait_for(lambda: sum("choose what to do" in m.text for m in api.bot_messages(ADMIN)) == 2)
    print(
        f"Telegram down {back - started:.0f} s, {len(failed)} failed calls; "
        f"{len(texts)} events delivered once each {took:.1f} s after it came back"
    )


# -- every typed field, through the service layer ------------------------------------------

HOSTILE_TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "/",
            "..",
            "/etc",
            "/usr/bin",
            "../../etc/passwd",
            "--upload-pack=touch /tmp/pwned",
            "ext::sh -c touch% /tmp/pwned",
            "file:///etc",
            "https://user:pa%ss@host/x.git",
            "-main",
            "--orphan",
            "a\nb",
            "a\x00b",
            "%(ENV_HOME)s",
            "'\"; rm -rf / #",
            "$(touch /tmp/pwned)",
            "x" * 2**20,
        ]
    ),
)


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Store, Path]:
    base = tmp_path_factory.mktemp("fuzz")
    data = base / "data"
    data.mkdir()
    taken = base / "someones"
    taken.mkdir()
    (taken / "thesis.tex").write_text("years of work")
    (base / "etc-link").symlink_to("/etc")
    settings_ = Settings.from_env({"CONTROLPLANE_DATA_DIR": str(data)})
    store = Store.open(settings_)
    store.add_project(Project(name="shop", repo="https://example.com/x.git", path=str(base / "l")))
    return settings_, store, base


def refused_or_round_trips(store: Store, action, check) -> None:  # type: ignore[no-untyped-def]
    before = store.path.read_bytes()
    try:
        result = action()
    except (ControlPlaneError, ValueError):
        assert store.path.read_bytes() == before, "a refused value was written"
        return
    check(result)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    name=HOSTILE_TEXT,
    repo=HOSTILE_TEXT,
    folder=st.one_of(HOSTILE_TEXT, st.sampled_from(["DATA", "TAKEN", "ETCLINK"])),
    branch=HOSTILE_TEXT,
)
def test_project_fields_fuzzed(
    fuzz_env: tuple[Settings, Store, Path], name: str, repo: str, folder: str, branch: str
) -> None:
    settings_, store, base = fuzz_env
    folder = {
        "DATA": str(settings_.data_dir),
        "TAKEN": str(base / "someones"),
        "ETCLINK": str(base / "etc-link"),
    }.get(folder, folder)

    config = Service(settings_, store).config

    def check(added: Project) -> None:
        project = store.get_project(added.name)
        assert project.branch == branch and not branch.startswith("-")
        assert not project.repo.startswith(("-", "ext::", "file:")) and "://" in project.repo
        assert ":" not in project.repo.split("://", 1)[1].split("/", 1)[0].split("@")[0] or (
            "@" not in project.repo
        ), "a credential was kept in the URL"
        assert Path(project.path).is_absolute() and project.path != str(settings_.data_dir)
        config.remove_files(project.name)

    def add() -> Project:
        new = config.check_new(name=name, repo=repo, path=folder, branch=branch)
        return config.write_new(new, check_remote=False)

    refused_or_round_trips(store, add, check)
    assert (base / "someones" / "thesis.tex").read_text() == "years of work"


VAR_NAMES = st.one_of(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True), HOSTILE_TEXT)
VAR_VALUES = st.one_of(st.text(alphabet=string.printable + "%'\"\x00é", max_size=200), HOSTILE_TEXT)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=VAR_NAMES, value=VAR_VALUES)
def test_variables_fuzzed_never_reach_a_program_file(
    fuzz_env: tuple[Settings, Store, Path], key: str, value: str
) -> None:
    settings_, store, _ = fuzz_env
    config = Service(settings_, store).config

    def program_text() -> str:
        # the program names a revision of the variables (a hash), never a value: drop the
        # hash, so that a value which is part of the file's own words is not mistaken
        text = render_program(settings_, store.get_project("shop"), "prod")
        return re.sub(r"[0-9a-f]{8,}", "", text)

    before = program_text()

    def check(_: object) -> None:
        expected = parse_assignments([f"{key}={value}"])  # KEY=a=b is KEY → "a=b"
        stored = store.env("shop", "prod")
        program = program_text()
        for name, text in expected.items():
            assert stored[name] == text
            reached = text in program and text not in before  # 'stdo' is in stdout_logfile=
            assert len(text) < 4 or not reached, "a value reached the program file"
        config.env_unset("shop", "prod", list(expected))

    refused_or_round_trips(store, lambda: config.env_set("shop", "prod", [f"{key}={value}"]), check)
    assert store.path.read_bytes().count(b"=") < 10**6


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(key=st.sampled_from(["branch", "entry", "policy", "output", "keep", "check",
                            "health-window", "poll", "test-duration", "nope"]),
       value=HOSTILE_TEXT)  # fmt: skip
def test_settings_fuzzed(fuzz_env: tuple[Settings, Store, Path], key: str, value: str) -> None:
    settings_, store, _ = fuzz_env
    config = Service(settings_, store).config
    before = store.get_project("shop")

    def check(project: Project) -> None:
        assert store.get_project("shop") == project
        store.update_project("shop", **{k: getattr(before, k) for k in ("branch", "entry")})

    refused_or_round_trips(store, lambda: config.set_setting("shop", key, value), check)
