"""The bot never hangs (issue #11, items 7-9), under Telegram's flood limits.

The chats run against the local Bot API server with `Flood` on (about 30 messages a second
in all, about one a second per chat with short bursts), so a bot that floods a chat gets
429 here as it would from Telegram, and PTB's rate limiter then holds every call back.
Real apps under the real supervisord, the real engine behind the bot.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest
from telegram.ext import ApplicationBuilder

from controlplane.bot import follows
from controlplane.bot.confirm import Confirmations, memory
from controlplane.bot.strangers import Stranger, StrangerReports, summary_text
from tests.support.botapi import Flood, Msg
from tests.support.chat import ADMIN, PROD_KEY, TOKEN, Chat
from tests.support.fixtures_release import Plant

# The issue's requirement: every press is answered within a second while any number of
# follows run (it measured 115 s). A generous bound for a loaded 2-core box: the bot
# answers in ~0.05 s when idle.
ANSWER_WITHIN = 1.0
# A person's pace between presses (a screen is read before the next press). Telegram's
# budget of about one message a second in a chat is shared by the screens that the presses
# open and the follows' edits (one every 3 s in a chat, all follows together).
PACE = 2.0

TICKER = """\
import itertools, os, sys, time
key = os.environ.get("API_KEY", "")
for i in itertools.count():
    print(f"tick {i} key={key}", flush=True)
    if i % 4 == 0:
        print(f"warn {i}", file=sys.stderr, flush=True)
    time.sleep(0.25)
"""

FLOOD = """\
import os, sys
key = os.environ.get("API_KEY", "")
line = f" flood key={key} " + "x" * 60 + "\\n"
i = 0
while True:
    sys.stdout.write(str(i) + line)
    i += 1
"""


@pytest.fixture
def bot_api_options() -> dict[str, object]:
    return {"flood": Flood()}


def deploy_apps(rig: Plant, main: str, names: list[str]) -> None:
    """Each name a project of the same origin running `main` in prod."""
    rig.origin.commit("app", {"main.py": main, "requirements.txt": "tinylib\n"})
    rig.origin.push()
    for name in names:
        rig.add(name)
        rig.ok("env", "set", name, f"UV_CONFIG_FILE={rig.uv_config}", f"API_KEY={PROD_KEY}")
        rig.ok("project", "set", name, "health-window", "0")
        rig.ok("deploy", name)
        rig.box.wait_state(f"{name}-prod", ("RUNNING",))


def too_many(phone: Chat) -> list[str]:
    return [f"{c.method} {c.response}" for c in phone.api.requests if c.status == 429]


def answer_seconds(phone: Chat, query: str) -> float:
    answer = phone.answered(query)
    return float(answer["answered_at"]) - float(answer["pressed_at"])  # type: ignore[arg-type]


def command_seconds(phone: Chat, text: str, needle: str) -> float:
    """Send a command; seconds until a new bot message holding `needle` is there."""
    before = len(phone.api.bot_messages(ADMIN))
    started = time.monotonic()
    phone.send(text)
    phone.api.wait_for(
        lambda: any(needle in m.text for m in phone.api.bot_messages(ADMIN)[before:]), 30
    )
    return time.monotonic() - started


def edited_to(phone: Chat, message_id: int, needle: str, *, present: bool = True) -> Msg:
    """The message once its text holds `needle` (or, with present=False, no longer does)."""
    found: list[Msg] = []

    def seen() -> bool:
        found[:] = [
            m
            for m in phone.api.bot_messages(ADMIN)
            if m.message_id == message_id and (needle in m.text) == present
        ]
        return bool(found)

    phone.api.wait_for(seen, 10)
    return found[0]


def follow_messages(phone: Chat) -> list[Msg]:
    return [m for m in phone.api.bot_messages(ADMIN) if m.text.startswith("👁")]


# -- item 7: follows -------------------------------------------------------------------------


@pytest.mark.timeout(400)
def test_twelve_follows_then_every_press_answered_within_a_second(phone: Chat) -> None:
    rig = phone.plant
    names = [f"app{i}" for i in range(12)]
    deploy_apps(rig, TICKER, names)

    # twelve follows, each opened from its own logs screen, as a person would
    for name in names:
        phone.send(f"/logs {name}")
        logs = phone.wait_text(f"{name} prod: last")
        time.sleep(PACE)
        query = phone.press_text(logs, "Follow")
        assert answer_seconds(phone, query) < ANSWER_WITHIN
        phone.wait_text(f"{name} prod: new lines for 120 s")
        time.sleep(PACE)
    assert len(follow_messages(phone)) == 12

    # a second press on a followed slot extends it: a toast, no second message
    logs = phone.wait_text("app0 prod: last")
    again = phone.press_text(logs, "Follow")
    assert "Already following app0 prod" in str(phone.answered(again).get("text"))

    # every other command and button, answered within a second while the twelve run
    timings: dict[str, float] = {}
    for command, needle in (
        ("/status", "RUNNING"),
        ("/status app3", "app3"),
        ("/projects", "Projects"),
        ("/help", "Commands"),
    ):
        timings[command] = command_seconds(phone, command, needle)
        time.sleep(PACE)
    phone.send("/start")
    start = phone.wait_text("choose what to do")
    time.sleep(PACE)
    timings["System load"] = answer_seconds(phone, phone.press_text(start, "System load"))
    edited_to(phone, start.message_id, "CPU")
    phone.send("/projects")
    listing = phone.wait_text("Projects")
    time.sleep(PACE)
    timings["p|app5"] = answer_seconds(phone, phone.press(listing, "p|app5"))
    menu = edited_to(phone, listing.message_id, "app5 · main")
    for label in ("Status", "Logs", "Config", "Poll interval", "On new commit", "Test deploy"):
        time.sleep(PACE)
        timings[label] = answer_seconds(phone, phone.press_text(menu, label))
        screen = edited_to(phone, menu.message_id, "app5 · main", present=False)
        time.sleep(PACE)
        timings[f"{label}, back"] = answer_seconds(phone, phone.press_text(screen, "Back"))
        menu = edited_to(phone, menu.message_id, "app5 · main")
    slow = {k: round(v, 2) for k, v in timings.items() if v >= ANSWER_WITHIN}
    assert slow == {}, timings
    print("answered in (s):", {k: round(v, 3) for k, v in timings.items()})

    # the follows ran all along: each message was edited with its app's new lines,
    # stderr marked, the secret the apps print removed
    phone.api.wait_for(lambda: all("tick" in m.text for m in follow_messages(phone)), 60)
    views = follow_messages(phone)
    assert len(views) == 12 and all(m.edits >= 1 for m in views)
    assert any("[err] warn" in m.text for m in views)
    assert not any(PROD_KEY in m.html for m in phone.api.bot_messages(ADMIN))
    assert too_many(phone) == []


@pytest.mark.timeout(300)
def test_follow_a_flooding_app(phone: Chat) -> None:
    rig = phone.plant
    deploy_apps(rig, FLOOD, ["flood"])
    phone.send("/logs flood")
    logs = phone.wait_text("flood prod: last")
    follow = phone.press(logs, "fl|flood|prod|120")
    phone.answered(follow)
    view = phone.wait_text("flood prod: new lines")

    def edited(times: int) -> Callable[[], bool]:
        return lambda: any(
            m.message_id == view.message_id and m.edits >= times and "flood key" in m.text
            for m in phone.api.bot_messages(ADMIN)
        )

    phone.api.wait_for(edited(3), 30)
    shown = next(m for m in phone.api.bot_messages(ADMIN) if m.message_id == view.message_id)
    assert PROD_KEY not in shown.html and "flood key=" in shown.text
    assert len(shown.html) <= 4096 and shown.text.count("\n") <= 31
    # the bot still answers at once (no thread held, no crash)
    query = phone.press(logs, "p|flood")
    assert answer_seconds(phone, query) < ANSWER_WITHIN  # the issue's bound, see ANSWER_WITHIN
    assert not any("Internal error" in m.text for m in phone.api.bot_messages(ADMIN))
    assert too_many(phone) == []
    size = rig.settings.logs_dir.joinpath("flood-prod.out.log").stat().st_size
    rig.box.client.stop("flood-prod")
    print(
        f"flooding app (log at {size / 2**20:.1f} MB): follow edited {shown.edits} times, "
        f"{len(shown.html)} characters, {shown.text.count(chr(10))} lines, no secret"
    )


async def test_follows_end_when_the_bot_stops(phone: Chat) -> None:
    """A view of 10 minutes does not hold a stopping application back (PTB's stop() waits
    for every task it started)."""
    app = ApplicationBuilder().token(TOKEN).base_url(f"{phone.api.url}/bot").build()
    views = follows.Follows()
    async with app:
        await app.start()
        assert views.start(app, phone.runner.deps, ADMIN, "shop", "prod", 600)
        await phone.api.until(lambda: len(follow_messages(phone)) == 1)
        # a view still running would hold stop() back for its 600 s
        await asyncio.wait_for(app.stop(), timeout=30)
    assert views.views == {}
    edits = follow_messages(phone)[0].edits
    await asyncio.sleep(2.5)
    assert follow_messages(phone)[0].edits == edits


# -- item 8: strangers -----------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_flood_of_strangers_is_summed_up_within_telegrams_limits(phone: Chat) -> None:
    api = phone.api
    # the summary window, 10 minutes in the product, shortened for the test
    phone.runner.app.bot_data["stranger_reports"] = StrangerReports(every=4.0)
    phone.send("/start")
    phone.wait_text("choose what to do")
    strangers = list(range(5001, 5041))
    for stranger in strangers:
        api.user_sends(stranger, "/start", user_id=stranger)
    for stranger in strangers[:10]:  # some write more than once
        api.user_sends(stranger, "hello?", user_id=stranger)
        api.user_sends(stranger, "/deploy shop", user_id=stranger)
    # the admin is answered at once while the strangers' updates are being dropped
    assert command_seconds(phone, "/help", "Commands") < ANSWER_WITHIN  # the issue's bound

    first = phone.wait_text("not an admin wrote to the bot: chat 5001")
    summary = phone.wait_text("39 more people who are not admins", timeout=20)
    assert "(57 updates)" in summary.text  # 39 strangers, 9 of them wrote 3 times
    assert "and 29 more" in summary.text and len(summary.html) < 4096
    time.sleep(1.0)
    reports = [
        m for m in api.bot_messages(ADMIN) if "not admins" in m.text or "not an admin" in m.text
    ]
    assert [m.message_id for m in reports] == [first.message_id, summary.message_id]
    assert all(api.bot_messages(s) == [] for s in strangers)
    assert api.pending_updates() == []
    assert too_many(phone) == []
    print(f"{len(strangers)} strangers: {len(reports)} reports, no 429")


def test_stranger_reports_are_bounded() -> None:
    reports = StrangerReports(every=600, person_every=3600)
    assert reports.note(1, "@one", 1, now=0.0) == Stranger("@one", 1)  # quiet: at once
    assert reports.note(1, "@one", 1, now=1.0) is None  # the same person: counted once
    for key in range(2, 200):
        assert reports.note(key, f"@p{key}", key, now=2.0) is None
    reports.note(2, "@p2", 2, now=3.0)
    assert reports.due() == 600.0
    taken = reports.take(now=600.0)
    assert len(taken) == 198 and taken[0] == Stranger("@p2", 2, count=2)
    assert reports.due() is None
    # after a summary, the next stranger waits for the next one; an hour later the first
    # person counts again
    assert reports.note(500, "@late", 500, now=700.0) is None
    assert reports.due() == 1200.0
    assert reports.note(1, "@one", 1, now=3700.0) is None and 1 in reports.pending
    text = summary_text("en", taken)
    assert text.startswith("⚠️ 198 more people") and "and 188 more" in text
    assert "@p2 in chat 2 (×2)" in text
    ru = summary_text("ru", [Stranger("<b>x</b>", 7)])
    assert "&lt;b&gt;x&lt;/b&gt; в чате 7" in ru


# -- item 9: single-use confirmations -------------------------------------------------------


@pytest.mark.timeout(300)
def test_yes_pressed_fifteen_times_deploys_once(phone: Chat) -> None:
    api, rig = phone.api, phone.plant
    rig.commit("1")
    rig.add()
    rig.ok("env", "set", "shop", f"UV_CONFIG_FILE={rig.uv_config}", f"API_KEY={PROD_KEY}")
    rig.ok("project", "set", "shop", "health-window", "1")
    rig.ok("deploy", "shop")
    rig.wait_report("prod", "1")
    rig.commit("2")

    phone.send("/deploy shop")
    ask = phone.wait_text("Deploy #2 ")
    yes = next(v for k, v in phone.buttons(ask).items() if "Yes" in k)
    presses = [phone.press(ask, yes) for _ in range(15)]  # fast: no wait between them
    answers = [str(phone.answered(q).get("text")) for q in presses]
    assert answers.count("Started") == 1, answers
    assert (
        answers.count("Already done: this confirmation was used. Open the menu again to repeat it.")
        == 14
    ), answers
    phone.wait_text("deployed to #2", timeout=90)
    rig.wait_report("prod", "2")
    # the buttons are gone from the confirmation
    api.wait_for(
        lambda: (
            not phone.buttons(next(m for m in api.chat(ADMIN) if m.message_id == ask.message_id))
        )
    )
    time.sleep(2.0)  # a second deploy, if any, would have started by now

    # what changed on the box: one deploy operation, prod restarted once
    cards = [m for m in api.bot_messages(ADMIN) if "deploy</b> shop" in m.html]
    assert len(cards) == 1, [m.text for m in cards]
    out_log = rig.settings.logs_dir / "shop-prod.out.log"
    starts = [line for line in out_log.read_text().splitlines() if "running commit" in line]
    assert starts == ["running commit 1", "running commit 2"]
    assert rig.stack.store.state("shop").prod == 2

    # a stale press later (an old client still showing the button) is refused the same way
    stale = api.user_presses(ADMIN, ask.message_id, yes, user_id=ADMIN, forged=True)
    assert "this confirmation was used" in str(phone.answered(stale).get("text"))
    # a confirmation this bot never issued (from before a restart) is refused as expired
    old = api.user_presses(ADMIN, ask.message_id, "rb!|shop|1|Zz9_old0", user_id=ADMIN, forged=True)
    assert phone.answered(old).get("text") == "This confirmation has expired; open it again."
    time.sleep(1.0)
    assert rig.stack.store.state("shop").prod == 2
    assert len([m for m in api.bot_messages(ADMIN) if "deploy</b> shop" in m.html]) == 1
    assert too_many(phone) == []
    print(f"15 presses of Yes: {answers.count('Started')} deploy, {len(starts) - 1} prod restart")


def test_confirmations_are_single_use() -> None:
    now = [1000.0]
    keeper = memory()
    confirmations = Confirmations(keeper, ttl=3600, clock=lambda: now[0])
    yes = confirmations.issue(111, ("rb!", "shop", 3))
    data = "|".join(str(p) for p in yes)
    first = confirmations.claim(111, data)
    assert first.ok and first.parts == ["rb!", "shop", "3"] and first.clear
    again = confirmations.claim(111, data)
    assert (again.ok, again.reason, again.clear) == (False, "used", False)
    # another chat, other data with this token, a made-up token: refused, buttons off once
    other = "|".join(str(p) for p in confirmations.issue(111, ("dp!", "shop", 2)))
    assert confirmations.claim(222, other).reason == "expired"
    assert confirmations.claim(111, other).reason == "expired"  # the token was spent
    forged = confirmations.claim(111, "rb!|shop|9|" + other.rsplit("|", 1)[1])
    assert (forged.ok, forged.reason) == (False, "expired")
    unknown = confirmations.claim(111, "dp!|shop|nope")
    assert (unknown.reason, unknown.clear) == ("expired", True)
    assert confirmations.claim(111, "dp!|shop|nope").clear is False
    # older than the ttl
    late = "|".join(str(p) for p in confirmations.issue(111, ("sp!", "shop")))
    now[0] += 3601
    assert confirmations.claim(111, late).reason == "expired"
    # a newer screen of the same action on the same project (any chat) supersedes
    old = "|".join(str(p) for p in confirmations.issue(111, ("dp!", "shop", 2)))
    kept = "|".join(str(p) for p in confirmations.issue(111, ("dp!", "cafe", 1)))
    new = "|".join(str(p) for p in confirmations.issue(222, ("dp!", "shop", 3)))
    assert confirmations.claim(111, old).reason == "superseded"
    assert confirmations.claim(222, new).ok and confirmations.claim(111, kept).ok
    # a screen shown before the bot restarted (the same records, a new run) expires
    before = "|".join(str(p) for p in confirmations.issue(111, ("rm!", "shop")))
    restarted = Confirmations(keeper, ttl=3600, clock=lambda: now[0])
    assert restarted.claim(111, before).reason == "expired"
    assert json.dumps(keeper(dict))  # plain data
