"""A project's whole life from the chat, in Russian and in English: every message, live
card, button, toast and command description the bot shows is in the chat's language.

The admin's phone is the real python-telegram-bot client against the local Bot API server
with the whole control plane behind it (tests/support/chat.py); the admin's Telegram
language decides the chat's language (`lang=None`). The scenario waits on what does not
depend on the language (buttons' callback data, icons, the apps' reports), then checks
everything the bot showed with tests/support/language.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.support.botapi import Msg
from tests.support.chat import ADMIN, PROD_KEY, STRANGER, TEST_KEY, Chat
from tests.support.language import (
    CYRILLIC,
    Outside,
    Said,
    commands,
    not_english,
    not_russian,
    report,
    said,
)


class Scene:
    """The admin, writing in one language, and what the bot answers."""

    def __init__(self, phone: Chat, lang: str) -> None:
        self.phone, self.api, self.plant, self.lang = phone, phone.api, phone.plant, lang
        self.typed: list[str] = []

    def last_id(self) -> int:
        return max((m.message_id for m in self.api.chat(ADMIN)), default=0)

    def say(self, text: str) -> int:
        self.typed.append(text)
        return self.api.user_sends(ADMIN, text, user_id=ADMIN, language_code=self.lang)

    def find(
        self,
        ok: Callable[[Msg], bool],
        after: int = 0,
        timeout: float = 20,
        what: str = "",
        first: bool = False,
    ) -> Msg:
        found: list[Msg] = []

        def seen() -> bool:
            found[:] = [m for m in self.api.bot_messages(ADMIN) if m.message_id > after and ok(m)]
            return bool(found)

        try:
            self.api.wait_for(seen, timeout)
        except AssertionError as exc:
            raise AssertionError(f"no message {what}\n{self.api.dump()}") from exc
        return found[0] if first else found[-1]

    def reply(self, text: str, timeout: float = 20) -> Msg:
        """Send a text; the bot's first message after it."""
        sent = self.say(text)
        return self.find(
            lambda m: True, after=sent, timeout=timeout, what=f"after {text!r}", first=True
        )

    def with_button(self, prefix: str, after: int = 0, timeout: float = 20) -> Msg:
        """The newest message (sent or edited) with a button whose data starts with prefix."""
        return self.find(
            lambda m: any(d.startswith(prefix) for d in self.phone.buttons(m).values()),
            after=after,
            timeout=timeout,
            what=f"with a button {prefix!r}",
        )

    def buttons(self, msg: Msg) -> list[str]:
        return list(self.phone.buttons(msg).values())

    def press(self, msg: Msg, prefix: str) -> None:
        data = next(d for d in self.phone.buttons(msg).values() if d.startswith(prefix))
        self.phone.press(msg, data)

    def project_menu(self) -> Msg:
        """/projects, then the project: its menu."""
        listing = self.with_button("p|shop", after=self.say("/projects"))
        self.press(listing, "p|shop")
        return self.find(
            lambda m: m.message_id == listing.message_id and "pi|shop" in self.buttons(m),
            what="the project's menu",
        )

    def step(self, answer: str, *, bad: bool = False) -> Msg:
        """One answer in a conversation: a bad one gets a ⚠️ and the question stays."""
        got = self.reply(answer)
        assert got.text.startswith("⚠️") == bad, (answer, got.text)
        return got

    def idle(self, timeout: float = 120) -> None:
        """No operation runs for the project and every event reached the chat."""
        service = self.plant.stack.service
        self.api.wait_for(
            lambda: (
                self.plant.stack.executor.busy("shop") is None
                and not service.pending_events(f"bot:{ADMIN}")
            ),
            timeout,
        )

    def settle(self, quiet: float = 2.0, timeout: float = 30) -> None:
        """No call to the Bot API but getUpdates for `quiet` seconds (cards' last edits;
        a button's handler has returned, so the conversation it opened has its state:
        presses run concurrently, bot/app.py ChatOrder)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = max((c.at for c in self.api.requests if c.method != "getUpdates"), default=0)
            if time.monotonic() - last >= quiet:
                return
            time.sleep(0.2)


def life_of_a_project(s: Scene) -> None:
    """🌐 → add → variables → poll → new commit → poll outage → test card → verdict →
    promote → rollback → status, logs, load → a failing build → a failing test and a
    revert → a stranger → help."""
    plant = s.plant
    plant.commit("1")

    menu = s.reply("/start")
    assert "ad" in s.buttons(menu), menu.text
    assert bool(CYRILLIC.search(menu.text)) == (s.lang == "ru"), menu.text
    # the 🌐 picker: the chat keeps its language, now as its own choice
    s.press(menu, "ln")
    s.press(s.with_button(f"ln|{s.lang}"), f"ln|{s.lang}")
    s.api.wait_for(lambda: plant.stack.service.query.chat_langs().get(ADMIN) == s.lang)
    menu = s.with_button("ad")
    s.step("/status nosuch", bad=True)

    # add a project, one bad answer at each step
    mark = s.last_id()
    s.press(menu, "ad")
    s.find(lambda m: True, after=mark, what="asking the name")
    s.settle(quiet=0.5)  # the press's handler has returned: the conversation waits for a name
    s.step("Bad Name", bad=True)
    s.step("shop")
    s.step("--upload-pack=touch /tmp/x", bad=True)
    s.step(plant.origin.url)
    s.step("relative/folder", bad=True)
    s.step(str(plant.box.base / "live" / "shop"))
    s.step("bad..branch", bad=True)
    mark = s.say("/skip")
    added = s.with_button("cf|shop|prod", after=mark, timeout=60)
    assert "#1" in added.text

    # prod variables from the chat, one bad line first; the test key through the CLI
    s.press(added, "cf|shop|prod")
    config = s.with_button("ca|shop|prod")
    mark = s.last_id()
    s.press(config, "ca|shop|prod")
    s.find(lambda m: True, after=mark, what="asking for KEY=VALUE")
    s.settle(quiet=0.5)
    s.step("not a pair", bad=True)
    s.step(f"UV_CONFIG_FILE={plant.uv_config}\nAPI_KEY={PROD_KEY}\nPIP_FIND_LINKS={plant.wheels}")
    plant.ok("env", "set", "shop", "--test", f"API_KEY={TEST_KEY}")
    plant.ok("project", "set", "shop", "health-window", "2")

    # the poll interval and the policy from the project's menu
    s.press(s.project_menu(), "pi|shop")
    s.press(s.with_button("ps|shop|300"), "ps|shop|300")
    s.press(s.project_menu(), "po|shop")
    s.press(s.with_button("pp|shop|notify"), "pp|shop|notify")
    assert plant.stack.store.get_project("shop").poll == 300

    # a new commit: the poller finds it, the chat is told
    plant.commit("2")
    mark = s.last_id()
    results = plant.stack.poller.poll_once(now=time.time() + 86400)
    assert [(r.project, r.new) for r in results] == [("shop", True)]
    s.find(lambda m: m.text.startswith("🆕"), after=mark, timeout=60, what="🆕")
    s.idle()

    # the repository is gone for a while: one outage report, then one recovery
    gone = plant.origin.bare.with_name("gone.git")
    plant.origin.bare.rename(gone)
    mark = s.last_id()
    assert not plant.stack.poller.poll_once(now=time.time() + 2 * 86400)[0].ok
    s.find(lambda m: m.text.startswith("📡"), after=mark, what="the outage")
    gone.rename(plant.origin.bare)
    mark = s.last_id()
    assert plant.stack.poller.poll_once(now=time.time() + 4 * 86400)[0].ok
    s.find(lambda m: m.text.startswith("📡"), after=mark, what="the recovery")

    # a test run from the chat: a live card that ends as a verdict card; promote it
    mark = s.say("/test shop 5")
    card = s.with_button("pr|shop", after=mark, timeout=150)
    assert "#2" in card.text
    s.press(card, "pr|shop")
    s.press(s.with_button("pr!|shop", after=mark), "pr!|shop")
    plant.wait_report("prod", "2", timeout=60)
    s.idle()

    # a rollback by number (release #1 is built for it)
    mark = s.say("/rollback shop 1")
    s.press(s.with_button("rb!|shop|1", after=mark), "rb!|shop|1")
    plant.wait_report("prod", "1", timeout=120)
    s.find(lambda m: m.text.startswith("⏪"), after=mark, timeout=30, what="⏪")
    s.idle()

    # the screens: the commits to roll back to, status, logs (and the log file), load
    s.press(s.project_menu(), "rb|shop|0")
    s.with_button("rc|shop|2")
    plant.box.wait_state("shop-prod", ("RUNNING",))
    s.reply("/status")
    s.reply("/status shop")
    logs = s.find(
        lambda m: "running commit 1" in m.text, after=s.say("/logs shop"), what="the logs"
    )
    s.press(logs, "lf|shop|prod")
    s.api.wait_for(lambda: any(m.document for m in s.api.bot_messages(ADMIN)))
    s.reply("/load")

    # a commit whose requirements cannot install: the build fails, prod stays on #1
    plant.commit("3", requirements="no-such-package-xyz==9.9\n")
    mark = s.say("/deploy shop")
    s.press(s.with_button("dp!|shop", after=mark), "dp!|shop")
    s.find(lambda m: "no-such-package-xyz" in m.text, after=mark, timeout=120, what="the failure")
    s.idle()
    assert plant.report("prod")["version"] == "1"

    # an app that crashes: its test fails (discarded), deployed it is reverted
    plant.commit("4", crash=True)
    mark = s.say("/test shop 5")
    verdict = s.with_button("ds|shop", after=mark, timeout=120)
    assert "pr|shop" not in s.buttons(verdict), verdict.text
    mark = s.last_id()
    s.press(verdict, "ds|shop")
    s.find(lambda m: m.text.startswith("🗑"), after=mark, timeout=60, what="🗑 discarded")
    s.idle()
    mark = s.say("/deploy shop")
    s.press(s.with_button("dp!|shop", after=mark), "dp!|shop")
    s.find(lambda m: m.text.startswith("↩️"), after=mark, timeout=120, what="↩️ reverted")
    s.idle()
    plant.wait_report("prod", "1")

    # a stranger writes; the admin is told who
    mark = s.last_id()
    s.phone.send("/start", chat=STRANGER)
    s.find(lambda m: str(STRANGER) in m.text, after=mark, what="the stranger report")
    assert s.api.bot_messages(STRANGER) == []

    s.reply("/help")
    s.idle()
    s.settle()


def outside_words(s: Scene) -> Outside:
    """What the product did not write: names, subjects, what was typed, the apps' and the
    tools' output (their logs)."""
    plant = s.plant
    outside = Outside()
    outside.phrases |= {"shop", "shop-prod", "shop-test", "main", "Ada", "tinylib"}
    outside.phrases |= {plant.settings.run_as} - {None}  # the user builds and apps run as
    outside.phrases |= {c.subject for c in plant.stack.store.commits("shop")}
    outside.phrases |= {line.strip() for text in s.typed for line in text.splitlines()}
    # a command's arguments ('/status nosuch'), but numbers: the chat shows them as figures
    args = {arg for text in s.typed if text[:1] == "/" for arg in text.split()[1:]}
    outside.phrases |= {arg for arg in args if not arg.isdigit()}
    outside.phrases.discard("")
    logs = plant.settings.logs_dir
    outside.add_lines_of([*logs.glob("shop-*.log"), *(logs / "builds").glob("shop-*.log")])
    return outside


@pytest.mark.timeout(600)
@pytest.mark.parametrize("lang", ["ru", "en"])
def test_every_text_of_the_chat_is_in_its_language(phone: Chat, lang: str) -> None:
    scene = Scene(phone, lang)
    life_of_a_project(scene)

    shown = said(phone.api, ADMIN) + commands(phone.api, lang)
    assert len(shown) > 40, [i.text for i in shown]
    if lang == "ru":
        outside = outside_words(scene)
        problems = [(i, w) for i in shown if (w := not_russian(i, outside))]
    else:
        problems = [(i, w) for i in shown if (w := not_english(i))]
    assert not problems, report(problems, lang)


def test_the_detector_tells_leaks_from_names() -> None:
    """Names, paths, commands, output lines and code stay; the product's words must not."""
    outside = Outside(phrases={"shop", "version 2"}, lines={"running commit 2"})

    def words(text: str) -> list[str]:
        return not_russian(Said("message", text), outside)

    assert words("🆕 shop: новый коммит #2 abc1234 в main: version 2") == ["main"]
    assert words("Задайте <code>API_KEY=x</code>, путь /srv/shop, см. /status shop") == []
    assert words("<pre>running commit 2\nОшибок нет</pre>") == []
    assert words("<pre>running commit 2\nno errors</pre>") == ["errors"]
    assert words("Сборка через uv и pip в venv (Python 3.12), PIP_NO_INDEX, uv 0.4.1") == []
    assert words("<pre>прод  RUNNING  pid 7  работает 2 ч 5 мин, 1,5 ГБ</pre>") == []
    assert words("работает 2s, релизы 62.0 KiB, 3 MB") == ["2s", "62.0 KiB", "3 MB"]
    assert words("⏳ status.up") == ["status"]
    assert words("Использование: /rollback NAME N") == []
    assert words("⚠️ проекта x нет; список — `controlplane project list`") == []
    assert words("✅ Promoted shop to #2") == ["Promoted"]
    assert words("https://github.com/o/r.git недоступен: fatal: not found") == [
        "fatal",
        "not",
        "found",
    ]
    assert not_english(Said("button", "⬅️ Назад")) == ["Назад"]
    assert not_english(Said("button", "⬅️ Back")) == []
    assert not_english(Said("button", "• policy.notify")) == ["policy.notify"]
    assert not_english(Said("message", "<code>main.py</code> in github.com, 1.2.3")) == []
