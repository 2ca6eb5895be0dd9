"""Memory of an idle `controlplane serve` with 1,000 projects, without and with the bot,
against the PM2 daemon and supervisord (each idle, measured in the same run)."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.common import ROOT, RUNS, Figure, kill_group, log, rss_mb, tempdir, wait_until
from bench.pm2 import PM2, pm2
from bench.populate import populate
from tests.support.botapi import FakeBotAPI
from tests.support.fixtures_supervisor import start_box

PROJECTS = 1000
TOKEN = "424242:BENCH-TOKEN"
SETTLE = 3.0


def serve_rss(env: dict[str, str], sock: str) -> float:
    """Start serve, wait until it listens and settles, return its RSS; stop it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "controlplane", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        from pathlib import Path

        wait_until(lambda: Path(sock).exists(), 60, "serve's socket", step=0.05)
        time.sleep(SETTLE)
        assert proc.poll() is None, "serve exited"
        return rss_mb(proc.pid)
    finally:
        kill_group(proc)


def main() -> None:
    with tempdir("cpbench-mem-") as base, pm2() as tool:
        box = start_box(base, None)
        api = FakeBotAPI(token=TOKEN)
        url = api.start()
        try:
            populate(box.store, PROJECTS, 20)
            sock = str(box.settings.control_sock)
            plain = [serve_rss(box.env, sock) for _ in range(RUNS)]
            bot_env = {
                **box.env,
                "TELEGRAM_TOKEN": TOKEN,
                "ADMIN_CHAT_IDS": "111",
                "TELEGRAM_API_URL": url,
            }
            with_bot = [serve_rss(bot_env, sock) for _ in range(RUNS)]
            sup = []
            for _ in range(RUNS):
                sup.append(rss_mb(box.proc.pid))
                time.sleep(0.2)
            baselines = {"supervisord": sup}
            missing = {}
            if isinstance(tool, PM2):
                tool("ping")
                pm2_rss = []
                for _ in range(RUNS):
                    time.sleep(0.5)
                    pm2_rss.append(rss_mb(tool.daemon_pid()))
                baselines = {"PM2 daemon": pm2_rss, **baselines}
            else:
                log(f"PM2 not measured: {tool}")
                missing = {"PM2 daemon": tool}
            for title, samples in (("without the bot", plain), ("with the bot", with_bot)):
                Figure(
                    key=f"memory:{title}",
                    title=f"memory of `serve` with {PROJECTS} projects, idle, {title}",
                    unit="MB",
                    samples=samples,
                    baselines=baselines,
                    not_measured=missing,
                    ratio_of="PM2 daemon" if "PM2 daemon" in baselines else "supervisord",
                    target="≤ 80 MB RSS",
                    kind="max",
                    limit=80.0,
                    note=""
                    if title == "without the bot"
                    else "python-telegram-bot and httpx add about 19 MB of imports to serve "
                    "without the bot (`import telegram` alone is about 18 MB: its top-level "
                    "package loads every API class); the bot's own modules (handlers, "
                    "conversations, screens, texts, notifier) add 0.3 MB, so importing them on "
                    "first use would not help, and serve loads no docker, GitPython, jinja2 or "
                    "watchfiles while idle. What did help: serve's entry limits glibc to 2 "
                    "malloc arenas (each thread that allocates got its own, keeping freed "
                    "memory resident): 72.2 → about 69 MB. Left: psutil (about 4 MB) is used "
                    "by the load sampler every interval; reading /proc directly would drop it. "
                    "With 1,000 projects (issue 16): the store kept every project's and commit "
                    "file parsed once read (recovery and the poller read them all), 92 MB with "
                    "the bot; it now keeps the 64 most recently used (84–85 MB) and serve gives "
                    "the heap's freed memory back after reconcile (malloc_trim). Without the bot "
                    "serve is 53 MB, so about 31 MB is the bot's (PTB's imports and its loop's "
                    "threads); what of it grows with the projects was not found yet.",
                ).emit()
        finally:
            api.stop()
            box.shutdown()


if __name__ == "__main__":
    main()
