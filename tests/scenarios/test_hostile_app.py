"""A repository that tries to read what it must not: the store, the key, another project's
data, supervisord's socket, and a symlink it ships pointing at the key. It is deployed for
real and runs as the unprivileged user, so every attempt is denied. Then a sweep: no secret
value in plain text in any file of the data dir, any command line, or any log."""

from __future__ import annotations

import json
import os
import time

import psutil
import pytest

from tests.support.fixtures_release import Plant

SECRET = "sk-hostile-test-5a8f3c1e9b"

PROBE = """\
import json, os, pathlib, socket
data = pathlib.Path(os.environ["APP_DATA_DIR"])
targets = json.loads(pathlib.Path("targets.json").read_text())
seen = {}
for name, path in targets.items():
    try:
        if name == "socket":
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            seen[name] = "connected"
        elif os.path.isdir(path):
            seen[name] = "listed " + ",".join(os.listdir(path))
        else:
            seen[name] = "read " + str(len(open(path, "rb").read()))
    except OSError as exc:
        seen[name] = type(exc).__name__
try:
    seen["link"] = "read " + pathlib.Path("key-link").read_text()[:5]
except OSError as exc:
    seen["link"] = type(exc).__name__
(data / "probe.json").write_text(json.dumps(seen))
import time
while True:
    time.sleep(3600)
"""


@pytest.mark.timeout(300)
def test_hostile_app_is_denied_and_no_secret_leaks(plant: Plant) -> None:
    if plant.box.settings.run_as in (None, "root"):
        pytest.skip("apps run as root here (no run-as user could be made), nothing to deny")
    s = plant.settings
    other = s.project_dir("other") / "shared" / "prod"
    other.mkdir(parents=True)
    (other / "db.sqlite").write_text("someone else's data")
    os.chmod(other, 0o700)
    targets = {
        "store": str(s.store_path),
        "key": str(s.key_path),
        "other": str(other),
        "socket": str(s.supervisor_sock),
        "conf": str(s.supervisord_conf),
    }
    work = plant.origin.work
    (work / "targets.json").write_text(json.dumps(targets))
    (work / "key-link").symlink_to(s.key_path)
    plant.origin.commit("hostile", {"main.py": PROBE, "requirements.txt": ""})
    plant.origin.push()
    plant.add()
    plant.ok("env", "set", "shop", f"API_KEY={SECRET}", f"UV_CONFIG_FILE={plant.uv_config}")
    plant.ok("project", "set", "shop", "health-window", "0")
    plant.ok("deploy", "shop")
    probe_file = s.project_dir("shop") / "shared" / "prod" / "probe.json"
    deadline = time.monotonic() + 30
    while not probe_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    seen = json.loads(probe_file.read_text())
    assert seen == {
        "store": "PermissionError",
        "key": "PermissionError",
        "other": "PermissionError",
        "socket": "PermissionError",
        "conf": "PermissionError",
        "link": "PermissionError",
    }, seen

    # the sweep: the value is nowhere in plain text but inside the running app itself
    needle = SECRET.encode()
    for path in s.data_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert needle not in path.read_bytes(), path
    for proc in psutil.process_iter(["cmdline", "pid"]):
        words = " ".join(proc.info["cmdline"] or [])
        assert SECRET not in words, (proc.info["pid"], words[:200])
