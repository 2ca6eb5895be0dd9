"""serve under a real supervisord, as `controlplane up` runs it, with a bot whose Telegram
does not answer and no admin: what `docker logs` (supervisord's stderr), the log file and
`controlplane health` show, and that the token is in none of them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.client import find_supervisord, write_supervisord_conf
from controlplane.settings import Settings
from tests.conftest import cli_env

TOKEN = "424242:SECRET-BOT-TOKEN-abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for(path: Path, needles: tuple[str, ...], timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        if all(n in text for n in needles):
            return text
        assert time.monotonic() < deadline, f"{needles} not in {path}:\n{text[-3000:]}"
        time.sleep(0.1)


def test_a_bot_without_telegram_or_admins_is_said_on_stderr_and_in_health(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = cli_env(
        data,
        TELEGRAM_TOKEN=TOKEN,
        TELEGRAM_API_URL=f"http://127.0.0.1:{free_port()}",
        CONTROLPLANE_RUN_AS=os.environ.get("USER", "root"),
    )
    settings = Settings.from_env(env)
    Store.open(settings)
    conf = write_supervisord_conf(settings)
    stderr = tmp_path / "docker-logs.txt"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [find_supervisord(), "-n", "-c", str(conf)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    try:
        shown = wait_for(stderr, ("ADMIN_CHAT_IDS is empty", "Telegram unreachable"))
        print("\n" + "\n".join(line[:160] for line in shown.splitlines()[-4:]))
        log = wait_for(settings.layout.serve_log, ("control plane", "Telegram unreachable"))
        health = subprocess.run(
            [sys.executable, "-m", "controlplane", "health"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert health.returncode == 1 and "Telegram unreachable" in health.stdout, health
        for text in (shown, log, health.stdout):
            assert TOKEN not in text and TOKEN.split(":")[1] not in text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
