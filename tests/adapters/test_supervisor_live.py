"""Against a real supervisord started from our template: run-slot, restarts, isolation."""

from __future__ import annotations

import os
import signal
import stat
import time

import psutil
import pytest

from controlplane.adapters.supervisor.client import (
    RPCFault,
    Supervisor,
    process_info,
    write_program,
)
from controlplane.domain.runner import ProcessInfo
from controlplane.errors import SupervisorError
from tests.support.fixtures_supervisor import Box, BoxFactory

SECRET = "s3cr%(ENV_HOME)s-t0ken-Zq9"
TEST_SECRET = "t3st-only-Vx7"


def deploy(box: Box, name: str, slots: tuple[str, ...] = ("prod",)) -> None:
    project = box.store.get_project(name)
    for slot in slots:
        write_program(box.settings, project, slot)
    box.client.apply()


def running(box: Box, name: str, slot: str) -> int:
    info = box.wait_state(box.program(name, slot), ("RUNNING",))
    return info.pid


def test_app_runs_through_run_slot_with_its_variables(box_factory: BoxFactory) -> None:
    box = box_factory()
    box.add_project("shop", {"SECRET_TOKEN": SECRET, "GREETING": "hello, world"})
    deploy(box, "shop")
    pid = running(box, "shop", "prod")
    report = box.wait_report("shop", "prod", pid)
    env = report["env"]
    assert isinstance(env, dict)
    assert env["SECRET_TOKEN"] == SECRET
    assert env["GREETING"] == "hello, world"
    assert env["CONTROLPLANE_SLOT"] == "prod"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["APP_DATA_DIR"] == str(box.settings.project_dir("shop") / "shared" / "prod")
    assert "CONTROLPLANE_DATA_DIR" not in env and "CONTROLPLANE_KEY" not in env
    assert report["cwd"] == str(box.base / "apps" / "shop")
    assert report["argv"] == ["main.py"]
    # the process supervisord watches is the app itself (run-slot exec'd it)
    assert psutil.Process(pid).cmdline() == ["/usr/bin/python3", "main.py"]
    assert "app started" in box.client.tail("shop-prod", 1000)


def test_killed_app_is_back_within_half_a_second(box_factory: BoxFactory) -> None:
    box = box_factory()
    box.add_project("shop")
    deploy(box, "shop")
    pid = running(box, "shop", "prod")
    latencies = []
    for _ in range(3):
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        deadline = killed + 5
        while time.monotonic() < deadline:
            info = box.client.info("shop-prod")
            if info.pid not in (0, pid):
                break
            time.sleep(0.002)
        latencies.append(time.monotonic() - killed)
        assert info.pid not in (0, pid)
        pid = running(box, "shop", "prod")
    print("restart after SIGKILL (ms):", ", ".join(f"{s * 1000:.1f}" for s in latencies))
    assert max(latencies) < 0.5
    events = (box.settings.logs_dir / "events.jsonl").read_text()
    assert '"state": "EXITED"' in events and '"program": "shop-prod"' in events


def test_a_variable_change_restarts_nothing_until_that_slot_is_restarted(
    box_factory: BoxFactory,
) -> None:
    """A variable is read when the app starts: applying the program files after a change
    restarts nothing (the admin chooses when); restarting one slot gives it the new
    value and leaves the other alone."""
    box = box_factory()
    box.add_project("shop", {"SHARED": "one"})
    box.add_test_slot("shop")
    deploy(box, "shop", ("prod", "test"))
    prod, test = running(box, "shop", "prod"), running(box, "shop", "test")
    box.store.set_env("shop", "test", {"ONLY_TEST": TEST_SECRET})
    deploy(box, "shop", ("prod", "test"))
    assert (box.client.info("shop-prod").pid, box.client.info("shop-test").pid) == (prod, test)
    assert "ONLY_TEST" not in box.wait_report("shop", "test", test)["env"]  # type: ignore[operator]
    box.client.restart("shop-test")
    new_test = box.wait_state("shop-test", ("RUNNING",), not_pid=test).pid
    assert box.wait_report("shop", "test", new_test)["env"]["ONLY_TEST"] == TEST_SECRET  # type: ignore[index]
    assert box.client.info("shop-prod").pid == prod
    assert "ONLY_TEST" not in box.report("shop", "prod")["env"]  # type: ignore[operator]


def test_app_runs_as_the_run_as_user_and_cannot_read_secrets(
    box_factory: BoxFactory,
    run_as_user: str | None,
) -> None:
    if run_as_user is None:
        pytest.skip("needs root and the cptest user (reason printed above)")
    box = box_factory(run_as=run_as_user)
    settings = box.settings
    probes = ":".join(
        str(p)
        for p in (
            settings.store_path,
            settings.key_path,
            settings.supervisord_conf,
            settings.supervisor_auth,
        )
    )
    box.add_project("shop", {"PROBE_PATHS": probes, "SECRET_TOKEN": SECRET})
    deploy(box, "shop")
    pid = running(box, "shop", "prod")
    report = box.wait_report("shop", "prod", pid)
    user = psutil.Process(pid).uids()
    assert report["uid"] != 0 and user.real == user.effective == user.saved == report["uid"]
    assert report["groups"] == [report["gid"]] or 0 not in report["groups"]  # type: ignore[operator]
    assert set(report["probes"].values()) == {"PermissionError"}  # type: ignore[union-attr]
    for path in (settings.store_path, settings.key_path):
        st = path.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
    assert stat.S_IMODE(settings.supervisor_dir.stat().st_mode) == 0o700
    shared = settings.project_dir("shop") / "shared" / "prod"
    assert shared.stat().st_uid == report["uid"]
    assert report["env"]["HOME"] != "/root"  # type: ignore[index]


def test_no_secret_in_command_lines_files_or_logs(box_factory: BoxFactory) -> None:
    box = box_factory()
    box.add_project("shop", {"SECRET_TOKEN": SECRET})
    box.add_test_slot("shop")
    box.store.set_env("shop", "test", {"TEST_TOKEN": TEST_SECRET})
    deploy(box, "shop", ("prod", "test"))
    for slot in ("prod", "test"):
        box.wait_report("shop", slot, running(box, "shop", slot))
    os.kill(box.client.info("shop-prod").pid, signal.SIGKILL)
    running(box, "shop", "prod")
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        assert SECRET not in line and TEST_SECRET not in line, line
    files = [
        box.settings.supervisord_conf,
        *box.settings.confd.iterdir(),
        *box.settings.logs_dir.iterdir(),
    ]
    assert any(f.name == "events.jsonl" for f in files)
    for path in files:
        text = path.read_text(errors="replace")
        assert SECRET not in text and TEST_SECRET not in text, path


def test_every_state_in_one_compact_answer_and_without_the_extension(
    box_factory: BoxFactory,
) -> None:
    """The states of all programs come through controlplane.allProcessInfo (our extension
    loaded by supervisord, rpcext.py) exactly as getAllProcessInfo gives them; a
    supervisord without the extension still answers through getAllProcessInfo."""
    box = box_factory()
    box.add_project("shop")
    box.add_project("cafe")
    deploy(box, "shop")
    deploy(box, "cafe")
    running(box, "shop", "prod")
    running(box, "cafe", "prod")
    assert "[rpcinterface:controlplane]" in box.settings.supervisord_conf.read_text()

    def rows(infos: list[ProcessInfo]) -> list[tuple[str, str, str, int, float, int, str]]:
        return sorted(
            (i.name, i.group, i.state, i.pid, i.start, i.exitstatus, i.spawnerr) for i in infos
        )

    assert "JSON" in box.client.call("system.methodHelp", "controlplane.allProcessInfo")
    compact = box.client.all_info()
    plain = [process_info(d) for d in box.client.call("getAllProcessInfo")]
    assert rows(compact) == rows(plain)
    assert {"shop-prod", "cafe-prod", "controlplane-events"} <= {i.name for i in compact}
    assert all(i.state == "RUNNING" and i.pid > 0 for i in compact if i.name.endswith("-prod"))

    # a supervisord started from another environment has no extension: same answer
    conf = box.settings.supervisord_conf
    conf.write_text(conf.read_text().replace("[rpcinterface:controlplane]", "[x-not-loaded]"))
    box.client.call("restart")  # supervisord reads its config again
    with Supervisor(box.settings, timeout=15.0) as bare:
        deadline = time.monotonic() + 30
        while True:
            try:
                if bare.call("getState")["statename"] == "RUNNING":
                    break
            except SupervisorError:
                pass
            assert time.monotonic() < deadline, "supervisord did not come back"
            time.sleep(0.1)
        with pytest.raises(RPCFault):
            bare.call("system.methodHelp", "controlplane.allProcessInfo")
        assert {"shop-prod", "cafe-prod"} <= {i.name for i in bare.all_info()}
