"""The Telegram side of ci/docker-e2e.sh: the tests' fake Bot API on the host's loopback.

    python ci/botapi_probe.py serve DIR   start FakeBotAPI, write DIR/env (the container's
                                          TELEGRAM_* and ADMIN_CHAT_IDS), then serve until
                                          killed; each time DIR/check appears, run the
                                          checks and write DIR/result
    python ci/botapi_probe.py check DIR   ask the server for the checks, print the result,
                                          exit non-zero when they failed

The checks are what an admin would see: the bot in the container polls the fake server with
its token, answers the admin's /projects with a list that names the deployed project, and
says nothing to a chat that is not an admin.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ADMIN = 7001
STRANGER = 7002
ADMIN_RU = 7003  # a second admin whose Telegram speaks Russian
TOKEN = "123456:CI-DOCKER-E2E"  # noqa: S105 - the fake server's made-up token
PROJECT = "demo"


def run_checks(api: object) -> str:
    """One pass over the checks; returns 'ok …' or raises AssertionError with the story."""
    from tests.support.botapi import FakeBotAPI, Msg

    assert isinstance(api, FakeBotAPI)
    api.wait_for(lambda: bool(api.calls("getUpdates")), timeout=120)
    polls = len(api.calls("getUpdates"))
    before = len(api.bot_messages(ADMIN))  # deploy notices may be there already
    api.user_sends(ADMIN, "/projects")

    def shows(m: Msg) -> bool:  # in the text or on a button
        return PROJECT in m.text or PROJECT in json.dumps(m.reply_markup or {})

    def answered() -> bool:
        return any(shows(m) for m in api.bot_messages(ADMIN)[before:])

    api.wait_for(answered, timeout=60)
    api.user_sends(STRANGER, "/projects", first_name="Mallory")
    time.sleep(3)
    assert not api.bot_messages(STRANGER), f"a stranger got an answer:\n{api.dump()}"
    shown = next(m.text for m in api.bot_messages(ADMIN)[before:] if shows(m))
    first = shown.splitlines()[0] if shown else ""
    # the image carries the compiled Russian catalog: a Russian admin gets a Russian menu
    api.user_sends(ADMIN_RU, "/start", language_code="ru", user_id=ADMIN_RU)
    api.wait_for(lambda: any("что сделать" in m.text for m in api.bot_messages(ADMIN_RU)), 60)
    return (
        f"ok: bot polled ({polls}+ getUpdates), /projects shows {PROJECT!r} ({first!r}),"
        " a stranger got no answer, a Russian admin got the Russian menu"
    )


def serve(folder: Path) -> None:
    from tests.support.botapi import FakeBotAPI

    api = FakeBotAPI(TOKEN)
    url = api.start()
    env = f"TELEGRAM_TOKEN={TOKEN}\nADMIN_CHAT_IDS={ADMIN},{ADMIN_RU}\nTELEGRAM_API_URL={url}\n"
    (folder / "env.tmp").write_text(env)
    (folder / "env.tmp").rename(folder / "env")
    print(f"fake Bot API at {url}", flush=True)
    while True:
        request = folder / "check"
        if request.exists():
            request.unlink()
            try:
                result = run_checks(api)
            except Exception:  # the story goes to the shell, which fails the step
                result = "fail: " + traceback.format_exc()
            (folder / "result.tmp").write_text(result)
            (folder / "result.tmp").rename(folder / "result")
        time.sleep(0.2)


def check(folder: Path) -> int:
    (folder / "result").unlink(missing_ok=True)
    (folder / "check").touch()
    deadline = time.monotonic() + 240
    while not (folder / "result").exists():
        if time.monotonic() > deadline:
            print("the fake Bot API server gave no result in 240 s")
            return 1
        time.sleep(0.2)
    result = (folder / "result").read_text()
    print(f"  telegram: {result}")
    return 0 if result.startswith("ok") else 1


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("serve", "check"):
        print(__doc__)
        return 2
    folder = Path(argv[2])
    if argv[1] == "serve":
        serve(folder)
        return 0
    return check(folder)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
