"""The load screen from the chat: disk I/O and network rows, with the last hour's
sparklines of what serve's sampler kept, in English and in Russian (the real
python-telegram-bot client against the local Bot API server)."""

from __future__ import annotations

import html
import json
import re
import time

from tests.support.chat import ADMIN, Chat
from tests.support.language import Outside, Said, not_russian

RATE = r"[\d.,]+ (B|KiB|MiB|GiB|Б|КБ|МБ|ГБ)/(s|с)"


def test_the_load_screen_shows_disk_io_and_network(phone: Chat) -> None:
    api, settings = phone.api, phone.plant.settings
    now = time.time()
    samples = [
        {"at": now - 90 + 30 * i, "cpu": 10.0, "mem": 20.0, "io_read": 1000 * i, "io_write": 0}
        | {"net_in": 2048 * i, "net_out": 512}
        for i in range(3)
    ]
    settings.layout.load_samples.parent.mkdir(parents=True, exist_ok=True)
    settings.layout.load_samples.write_text(json.dumps(samples))

    api.user_sends(ADMIN, "/load", user_id=ADMIN, language_code="en")
    english = html.unescape(phone.wait_text("disk I/O", timeout=30).text)
    print(english)
    lines = english.splitlines()
    (io,) = [x for x in lines if x.startswith("disk I/O ")]
    (net,) = [x for x in lines if x.startswith("network  ")]
    assert re.search(f"read {RATE}, write {RATE}", io) or "disk I/O — " in io, io
    assert re.search(f"in {RATE} \\(.+ pkt/s\\), out {RATE}", net) or "network  — " in net, net
    assert any(x.endswith(" ▁▅█ read, peak 2.0 KiB/s (last hour)") for x in lines), lines
    assert any(x.endswith(" ▁▅█ in, peak 4.0 KiB/s (last hour)") for x in lines), lines
    assert any(x.endswith(" ███ out, peak 512 B/s (last hour)") for x in lines), lines

    # the chat switched to Russian with 🌐
    phone.send("/start")
    phone.press_text(phone.wait_text("choose what to do"), "🌐 Language")
    phone.press_text(phone.wait_text("The language of this chat"), "Русский")
    phone.wait_text("что сделать")
    phone.send("/load")
    shown = phone.wait_text("ввод-вывод", timeout=30)
    assert not_russian(Said("message", shown.text), Outside()) == []  # the chat's checker
    russian = html.unescape(shown.text)
    print(russian)
    lines = russian.splitlines()
    (io,) = [x for x in lines if x.startswith("ввод-вывод ")]
    assert re.search(f"чтение {RATE}, запись {RATE}", io) or "ввод-вывод — " in io, io
    assert any(x.endswith(" ▁▅█ чтение, пик 2,0 КБ/с (за час)") for x in lines), lines
    assert any(x.endswith(" ▁▅█ приём, пик 4,0 КБ/с (за час)") for x in lines), lines
