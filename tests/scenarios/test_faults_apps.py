"""Apps that misbehave, and a damaged store, under a real supervisord.

An app that ignores SIGTERM is killed after its stop timeout; one that forks children is
stopped with all of them; one that floods its log stays within the rotation limits. A
crash-looping app is tests/test_supervisor_serve.py (serve retries what supervisord gave
up on) and tests/test_release_e2e.py (a crash in prod's health window reverts).
A truncated store stops the CLI with the way out (the last good copy, `controlplane store
restore`) and puts serve in safe mode (tests/service/test_safemode.py); the apps keep
running meanwhile, and `controlplane store restore` brings everything back.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from controlplane.adapters.supervisor.client import ProgramOptions, write_program
from tests.support.fixtures_faults import run_cli, wait_for
from tests.support.fixtures_supervisor import Box

STUBBORN = """\
import json, os, pathlib, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
data = pathlib.Path(os.environ["APP_DATA_DIR"])
(data / "report.json").write_text(json.dumps({"pid": os.getpid()}))
while True:
    time.sleep(3600)
"""

FORKER = """\
import json, os, pathlib, subprocess, sys, time
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"]) for _ in range(3)]
grandkid = os.fork()
if grandkid == 0:
    time.sleep(3600)
    os._exit(0)
data = pathlib.Path(os.environ["APP_DATA_DIR"])
pids = [k.pid for k in kids] + [grandkid]
(data / "report.json").write_text(json.dumps({"pid": os.getpid(), "children": pids}))
while True:
    time.sleep(3600)
"""

FLOOD = """\
import json, os, pathlib, sys
data = pathlib.Path(os.environ["APP_DATA_DIR"])
(data / "report.json").write_text(json.dumps({"pid": os.getpid()}))
line = "x" * 200 + "\\n"
while True:
    sys.stdout.write(line)
    sys.stderr.write(line)
"""


def start_app(box: Box, name: str, code: str, options: ProgramOptions) -> dict[str, object]:
    project = box.add_project(name)
    (Path(project.path) / "main.py").write_text(code)
    write_program(box.settings, project, "prod", options=options)
    box.client.apply()
    pid = box.wait_state(f"{name}-prod", ("RUNNING",)).pid
    return box.wait_report(name, "prod", pid)


def test_stubborn_forking_and_flooding_apps(
    box_factory: Callable[..., Box],
    run_as_user: str | None,
) -> None:
    box = box_factory(run_as_user)

    # ignores SIGTERM: supervisord kills it after stopwaitsecs
    report = start_app(box, "stubborn", STUBBORN, ProgramOptions(stopwaitsecs=2))
    started = time.monotonic()
    box.client.stop("stubborn-prod")
    took = time.monotonic() - started
    assert not psutil.pid_exists(int(report["pid"])), "the app survived its stop"  # type: ignore[call-overload]
    assert 1.8 <= took < 6, took
    print(f"SIGTERM ignored: killed after {took:.1f} s (stopwaitsecs=2)")

    # forks children and a grandchild: all stopped with it
    report = start_app(box, "forker", FORKER, ProgramOptions())
    family = [int(report["pid"]), *report["children"]]  # type: ignore[call-overload, misc]
    assert all(psutil.pid_exists(p) for p in family)
    box.client.stop("forker-prod")
    wait_for("the children to go", lambda: not any(_alive(p) for p in family), timeout=10)
    print(f"forking app: {len(family)} processes, none left after stop")

    # floods its log: rotated at 200 KB with 2 backups
    start_app(box, "flood", FLOOD, ProgramOptions(log_maxbytes="200KB", log_backups=2))
    logs = box.settings.logs_dir
    wait_for(
        "two rotations",
        lambda: (
            (logs / "flood-prod.out.log.2").exists() and (logs / "flood-prod.err.log.2").exists()
        ),
        timeout=30,
    )
    time.sleep(1.0)
    box.client.stop("flood-prod")
    files = sorted(logs.glob("flood-prod.*"))
    sizes = {f.name: f.stat().st_size for f in files}
    assert all(size <= 200 * 1024 + 64 * 1024 for size in sizes.values()), sizes
    assert len([f for f in files if ".out.log" in f.name]) <= 3, sizes
    print("log flood: files", sizes)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_truncated_store_stops_cli_and_serve_until_restored(
    box_factory: Callable[..., Box],
    run_as_user: str | None,
) -> None:
    box = box_factory(run_as_user, serve=True)
    wait_for("serve's socket", lambda: box.settings.control_sock.exists())
    box.add_project("shop", {"API_KEY": "sk-keep-me-0123"})
    box.store.set_env("shop", "prod", {"API_KEY": "sk-keep-me-0123"})  # .bak holds it too
    write_program(box.settings, box.store.get_project("shop"), "prod")
    box.client.apply()
    app = box.wait_state("shop-prod", ("RUNNING",)).pid
    box.wait_report("shop", "prod", app)  # the app itself runs (run-slot read the store)
    store = box.store.path
    good = store.read_bytes()
    last_good = store.with_name("store.json.bak").read_bytes()  # the copy before the last write
    store.write_bytes(good[: len(good) // 2])  # a torn write, as a full disk would leave

    done = run_cli(box.env, "project", "list")
    assert done.returncode != 0 and "way out: run `controlplane store restore`" in done.stderr
    assert "store.json.bak" in done.stderr and "store check" in done.stderr, done.stderr
    serve = box.client.info("controlplane").pid
    os.kill(serve, 9)
    log = box.settings.logs_dir / "controlplane.log"
    wait_for("serve's safe mode", lambda: "safe mode" in log.read_text(), timeout=30)
    assert "way out: run `controlplane store restore`" in log.read_text()
    assert box.client.info("shop-prod").pid == app, "an app was stopped by a damaged store"

    restored = run_cli(box.env, "store", "restore")
    assert restored.returncode == 0, restored.stderr
    assert store.with_name("store.json.damaged").read_bytes() == good[: len(good) // 2]
    assert store.read_bytes() == last_good and json.loads(last_good)
    listing = run_cli(box.env, "project", "list")
    assert listing.returncode == 0 and "shop" in listing.stdout
    box.wait_state("controlplane", ("RUNNING",), timeout=60)
    wait_for("serve to answer", lambda: box.settings.control_sock.exists(), timeout=30)
    assert box.store.env("shop", "prod") == {"API_KEY": "sk-keep-me-0123"}
    assert box.client.info("shop-prod").pid == app
    print("truncated store:", done.stderr.strip())
