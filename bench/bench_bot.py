"""The bot's reply to a button press (press → answerCallbackQuery reaching the server), p50
and p99, idle and while two builds run, against a bare python-telegram-bot echo handler
(an Application with one CallbackQueryHandler answering the query) on the same local Bot
API server code, in the same process, in the same run.

Ours is the real BotRunner on a real engine stack (box, supervisord, store, service);
its presses alternate between the projects list ("pl") and a project menu ("p|NAME"), each
waiting until the message shows the next button. The two builds are deploys of projects
whose requirement is served by a socket that never answers, so their installs hang (and
are cancelled at the end). Both bots run at once on two server instances, so each round
of ours and of the echo bot sees the same machine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from typing import Any

from bench.bench_deploy import Sample
from bench.common import RUNS, Figure, log, percentile, tempdir
from controlplane.bot.app import BotRunner, quiet_http_logs
from controlplane.service.serve import build_stack
from tests.support.botapi import FakeBotAPI
from tests.support.fixtures_repos import make_wheel
from tests.support.fixtures_supervisor import start_box

TOKEN = "424242:BENCH-BOT-TOKEN"
ECHO_TOKEN = "434343:BENCH-ECHO-TOKEN"
ADMIN = 111
PRESSES = 100  # per round


class EchoBot:
    """A bare PTB Application: one CallbackQueryHandler that answers the query."""

    def __init__(self, url: str) -> None:
        from telegram.ext import ApplicationBuilder, CallbackQueryHandler

        async def answer(update: Any, _context: Any) -> None:
            await update.callback_query.answer()

        self.app = ApplicationBuilder().token(ECHO_TOKEN).base_url(f"{url}/bot").build()
        self.app.add_handler(CallbackQueryHandler(answer))
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self.main()), daemon=True)

    async def main(self) -> None:
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup

        self.loop = asyncio.get_running_loop()
        self.stop_event = asyncio.Event()
        async with self.app:
            await self.app.start()
            assert self.app.updater is not None
            await self.app.updater.start_polling(poll_interval=0.0, timeout=30)
            markup = InlineKeyboardMarkup([[InlineKeyboardButton("echo", callback_data="e")]])
            await self.app.bot.send_message(ADMIN, "echo", reply_markup=markup)
            self.ready.set()
            await self.stop_event.wait()
            await self.app.updater.stop()
            await self.app.stop()

    def start(self) -> None:
        self.thread.start()
        assert self.ready.wait(30), "echo bot did not start"

    def stop(self) -> None:
        if self.loop is not None and self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)


def wait(pred: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.001)


def answered_ms(api: FakeBotAPI, query: str) -> float:
    wait(lambda: api.answer_of(query) is not None)
    answer = api.answer_of(query)
    assert answer is not None
    return (float(answer["answered_at"]) - float(answer["pressed_at"])) * 1000


def has_button(api: FakeBotAPI, message_id: int, data: str) -> bool:
    for msg in api.bot_messages(ADMIN):
        if msg.message_id == message_id:
            rows = (msg.reply_markup or {}).get("inline_keyboard", [])
            return any(b.get("callback_data") == data for row in rows for b in row)
    return False


def echo_round(api: FakeBotAPI, message_id: int, n: int) -> list[float]:
    took = []
    for _ in range(n):
        query = api.user_presses(ADMIN, message_id, "e", user_id=ADMIN)
        took.append(answered_ms(api, query))
    return took


def our_round(api: FakeBotAPI, message_id: int, name: str, n: int) -> list[float]:
    """Presses alternating projects list → project menu → projects list …"""
    took = []
    for i in range(n):
        data, then = ("p|" + name, "pl") if i % 2 == 0 else ("pl", "p|" + name)
        wait(lambda d=data: has_button(api, message_id, d))
        query = api.user_presses(ADMIN, message_id, data, user_id=ADMIN)
        took.append(answered_ms(api, query))
        wait(lambda t=then: has_button(api, message_id, t))
    return took


def hanging_index() -> tuple[socket.socket, int]:
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(16)
    return hang, hang.getsockname()[1]


def main() -> None:
    quiet_http_logs()
    with tempdir("cpbench-bot-") as base:
        wheels = base / "wheels"
        make_wheel(wheels, "benchlib", "1.0")
        box = start_box(base, None)
        settings = dataclasses.replace(box.settings, allow_file_urls=True)
        stack = build_stack(settings, box.store)
        stack.control.start()
        store = box.store
        api, echo_api = FakeBotAPI(token=TOKEN), FakeBotAPI(token=ECHO_TOKEN)
        url, echo_url = api.start(), echo_api.start()
        hang, port = hanging_index()
        runner = echo = None
        builds: list[str] = []
        try:
            sample = Sample(base / "sample")
            sample.commit()
            hanging = Sample(base / "hanging")
            (hanging.work / "requirements.txt").write_text("hangs-forever\n")
            hanging.commit()
            hang_toml = base / "hang.toml"
            hang_toml.write_text(f'index-url = "http://127.0.0.1:{port}/simple"\n')
            hang_toml.chmod(0o644)
            for name, origin in (("shop", sample), ("slow1", hanging), ("slow2", hanging)):
                config = stack.service.config
                new = config.check_new(
                    name=name, repo=str(origin.bare), path=str(base / "live" / name)
                )
                stack.service.add(new).result()
            for name in ("slow1", "slow2"):
                store.set_env(
                    name,
                    "prod",
                    {
                        "UV_CONFIG_FILE": str(hang_toml),
                        "PIP_NO_INDEX": "0",
                        "PIP_INDEX_URL": f"http://127.0.0.1:{port}/simple",
                        "UV_HTTP_TIMEOUT": "600",
                    },
                )

            bot_settings = dataclasses.replace(
                settings,
                telegram_token=TOKEN,
                admin_chat_ids=frozenset({ADMIN}),
                telegram_api_url=url,
                lang=None,
            )
            runner = BotRunner(bot_settings, stack.service)
            runner.start()
            assert runner.error is None, runner.error
            api.user_sends(ADMIN, "/start", user_id=ADMIN)
            wait(lambda: any(has_button(api, m.message_id, "pl") for m in api.bot_messages(ADMIN)))
            menu = api.bot_messages(ADMIN)[-1].message_id
            query = api.user_presses(ADMIN, menu, "pl", user_id=ADMIN)
            answered_ms(api, query)

            echo_api.user_sends(ADMIN, "/start", user_id=ADMIN)
            echo = EchoBot(echo_url)
            echo.start()
            echo_msg = echo_api.bot_messages(ADMIN)[-1].message_id

            # warm both (first presses pay imports and connection set-up)
            our_round(api, menu, "shop", 10)
            echo_round(echo_api, echo_msg, 10)

            rounds: dict[str, list[list[float]]] = {
                k: [] for k in ("ours idle", "echo idle", "ours building", "echo building")
            }
            for _ in range(RUNS):
                rounds["ours idle"].append(our_round(api, menu, "shop", PRESSES))
                rounds["echo idle"].append(echo_round(echo_api, echo_msg, PRESSES))
            log("idle rounds done")

            for name in ("slow1", "slow2"):
                stack.service.submit("deploy", name, {})
                builds.append(name)
            wait(lambda: all(stack.executor.busy(n) is not None for n in builds), 30)
            time.sleep(2.0)  # past fetch and venv: into the hanging install
            for _ in range(RUNS):
                rounds["ours building"].append(our_round(api, menu, "shop", PRESSES))
                rounds["echo building"].append(echo_round(echo_api, echo_msg, PRESSES))
            still = [n for n in builds if stack.executor.busy(n) is not None]
            log(f"building rounds done; builds still running: {still}")
            assert still == builds, "a build finished before the rounds did"

            for key, xs in rounds.items():
                flat = [x for r in xs for x in r]
                log(f"{key}: p50 {percentile(flat, 50):.1f} p99 {percentile(flat, 99):.1f} ms")

            def per_round(key: str, p: float) -> list[float]:
                return [percentile(r, p) for r in rounds[key]]

            note = (
                f"Each sample is one round of {PRESSES} presses (p50 or p99 of that round); "
                "ours alternates the projects list (`pl`, a supervisord RPC and a read of every "
                "project, 3 here) and a project menu (`p|NAME`, two store reads), the "
                "echo bot presses one button. Time is server-side: the press queued by the "
                "local Bot API server → its answerCallbackQuery arriving there (long polling "
                "in between, as in production). Both bots run in this process, each with its "
                "own server instance; ours sends through its rate limiter and the redactor."
            )
            for when, label in (("idle", "idle"), ("building", "while two builds run")):
                Figure(
                    key=f"bot:p50:{when}",
                    title=f"bot: reply to a button press, p50, {label}",
                    unit="ms",
                    samples=per_round(f"ours {when}", 50),
                    baselines={"bare PTB echo handler": per_round(f"echo {when}", 50)},
                    ratio_of="bare PTB echo handler",
                    target="p50 within 2× of the echo bot",
                    kind="relmax",
                    limit=2.0,
                    note=note if when == "idle" else "",
                ).emit()
                Figure(
                    key=f"bot:p99:{when}",
                    title=f"bot: reply to a button press, p99, {label}",
                    unit="ms",
                    samples=per_round(f"ours {when}", 99),
                    baselines={"bare PTB echo handler": per_round(f"echo {when}", 99)},
                    ratio_of="bare PTB echo handler",
                    target="≤ 150 ms" + (" while building" if when == "building" else ""),
                    kind="max",
                    limit=150.0,
                ).emit()
        finally:
            for name in builds:
                stack.executor.cancel(name)
            if echo is not None:
                echo.stop()
            if runner is not None:
                runner.stop()
            stack.executor.shutdown(wait=30)
            stack.control.stop()
            stack.poller.close()
            hang.close()
            api.stop()
            echo_api.stop()
            box.shutdown()


if __name__ == "__main__":
    main()
