"""Isolation between projects: folders never nest, a slot's stop ends every process it
started (also a daemon that left with setsid and a double fork) and nothing else, and a
slot's memory counts what its processes really use (PSS), not every fork's shared pages."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from controlplane.adapters.slotcgroup import box_tag, slot_cgroups, slot_id
from controlplane.adapters.slotprocs import end, usage
from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.client import write_program
from controlplane.domain.appenv import MARKER
from controlplane.domain.history import CommitRow
from controlplane.errors import ValidationError
from controlplane.observe.load import Probe, supervisor_source
from controlplane.observe.loadtext import format_load
from controlplane.service.facade import Service
from controlplane.settings import Settings
from tests.conftest import cli_env
from tests.support.chat import ADMIN, Chat
from tests.support.fixtures_faults import wait_for
from tests.support.fixtures_release import ROOT, Plant
from tests.support.fixtures_repos import Origin
from tests.support.fixtures_supervisor import BoxFactory, ensure_run_as_user

# An app that leaves a daemon behind: setsid() and a second fork, so the daemon is in
# neither the app's process group nor its tree (its parent is PID 1).
DAEMON_APP = """\
import json, os, pathlib, sys, time
data = pathlib.Path(os.environ["APP_DATA_DIR"])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        (data / "daemon.tmp").write_text(json.dumps({"pid": os.getpid()}))
        os.replace(data / "daemon.tmp", data / "daemon.json")
        while True:
            time.sleep(3600)
    os._exit(0)
os.wait()
print("app started, its daemon left", flush=True)
while True:
    time.sleep(3600)
"""

# 50 MB touched, then 50 forks that share it (copy-on-write) and only sleep.
FORKS_APP = """\
import os, time
block = bytearray(50 * 2**20)
block[::4096] = b"x" * len(block[::4096])
kids = []
for _ in range(50):
    pid = os.fork()
    if pid == 0:
        while True:
            time.sleep(3600)
    kids.append(pid)
print("forked", len(kids), flush=True)
while True:
    time.sleep(3600)
"""


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controlplane", *args],
        capture_output=True,
        text=True,
        env=cli_env(data_dir),
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def refused(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2 with one line on stderr naming what was wrong, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# -- folders -------------------------------------------------------------------------------


def test_nested_folders_refused_both_ways_from_the_cli(
    data_dir: Path, tmp_path: Path, origin: Callable[..., Origin]
) -> None:
    repo = origin("demo")
    repo.commits(2)
    live = tmp_path / "live"
    for name, folder in (("outer", live / "a"), ("deep", live / "x/y")):
        done = cli(data_dir, "project", "add", name, "--repo", repo.url, "--path", str(folder))
        assert done.returncode == 0, done.stderr
    # outer's folder is what a deploy makes of it: a link to a release in the data dir
    release = data_dir / "projects" / "outer" / "releases" / "1-abcdef1"
    release.mkdir(parents=True)
    live.mkdir()
    (live / "a").symlink_to(release, target_is_directory=True)
    (tmp_path / "alias").symlink_to(live, target_is_directory=True)
    before = files_of(data_dir)

    def add(name: str, path: str) -> subprocess.CompletedProcess[str]:
        return cli(data_dir, "project", "add", name, "--repo", repo.url, "--path", path)

    inside_outer = [
        str(live / "a" / "inner"),  # inside it, through its link
        f"/{live}/a//inner/",  # '//' and a trailing slash
        str(tmp_path / "alias" / "a" / "inner"),  # through a link to its parent
    ]
    for path in inside_outer:
        line = refused(add("inner", path), "inside the folder of project outer", "nested")
        print(line)
    refused(add("inner", str(live / "x")), "the folder of project deep", "is inside it")
    refused(add("inner", str(tmp_path / "alias" / "x")), "project deep", "nested")
    refused(add("inner", str(live / "a")), "project outer uses it already")
    refused(add("inner", str(tmp_path / "alias" / "a")), "project outer uses it already")
    launched = cli(data_dir, "launch", repo.url, "--name", "inner", "--path", str(live / "x/y/z"))
    refused(launched, "inside the folder of project deep")
    assert files_of(data_dir) == before  # nothing written
    # a neighbour is not nested: /live/ab is not inside /live/a
    assert add("neighbour", str(live / "ab")).returncode == 0


def test_nested_folders_refused_by_the_service_layer(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    """The bot checks a new project through the facade like the CLI does: the same
    refusal, nothing written."""
    config = Service(settings, store).config
    live = tmp_path / "live"
    outer = config.check_new(name="outer", repo="https://h/o/r", path=str(live))
    config.write_new(outer, check_remote=False)
    before = settings.store_path.read_bytes()
    for path in (str(live / "inner"), str(tmp_path)):
        with pytest.raises(ValidationError) as info:
            config.check_new(name="inner", repo="https://h/o/r", path=path)
        assert "project outer" in str(info.value) and "nested" in str(info.value)
        assert "\n" not in str(info.value)
    assert [p.name for p in store.list_projects()] == ["outer"]
    assert settings.store_path.read_bytes() == before


def test_long_names_and_double_slashes_get_one_line(data_dir: Path) -> None:
    def add(path: str) -> subprocess.CompletedProcess[str]:
        return cli(data_dir, "project", "add", "x", "--repo", "https://h/o/r", "--path", path)

    line = refused(add("/srv/" + "a" * 300 + "/app"), "at most 255 bytes")
    print(line)
    refused(add("/srv/" + "/".join(["b" * 200] * 21)), "the whole path at most")
    refused(add("//etc"), "/etc is a system folder")
    refused(add("//etc/app/"), "/etc is a system folder")
    refused(add("///usr//local/x"), "/usr is a system folder")
    assert "Windows" not in add("//etc").stderr
    refused(add(r"C:\bots\app"), "Windows path")
    assert json.loads(cli(data_dir, "project", "list", "--json").stdout) == []


# -- text from repositories ----------------------------------------------------------------


def test_commit_subjects_are_cut_once_for_every_face() -> None:
    row = CommitRow(1, "a" * 40, 0.0, "someone " * 100, "fix: " + "x" * 5000)
    assert len(row.subject) == 200 and row.subject.endswith("…")
    assert row.subject.startswith("fix: xxx") and len(row.author) == 200
    assert CommitRow.from_dict(row.to_dict()) == row  # the stored row is the cut one
    assert CommitRow(2, "b" * 40, 0.0, "me", "short one").subject == "short one"
    assert CommitRow(3, "c" * 40, 0.0, "me", "two\nlines").subject == "two lines"


@pytest.mark.timeout(300)
def test_the_chat_refuses_bad_folders_in_one_line_and_cuts_long_subjects(phone: Chat) -> None:
    origin = phone.plant.origin
    subject = "feat: " + "y" * 5000
    origin.commit(subject, {"main.py": "print('hi')\n", "requirements.txt": ""})
    origin.push()
    live = phone.plant.box.base / "live"

    def answer(text: str, needle: str, timeout: float = 20) -> str:
        """Send `text`; the first new message of the bot's holding `needle`."""
        seen = len(phone.api.bot_messages(ADMIN))
        phone.send(text)
        found: list[str] = []

        def arrived() -> bool:
            found[:] = [m.text for m in phone.api.bot_messages(ADMIN)[seen:] if needle in m.text]
            return bool(found)

        phone.api.wait_for(arrived, timeout)
        return found[0]

    def add(name: str, *paths: str) -> str:
        answer("/add", "Send its name")
        answer(name, "repository URL")
        answer(origin.url, "project folder")
        for path in paths[:-1]:
            print(answer(path, "bad folder"))
        answer(paths[-1], "/skip for main")
        return answer("/skip", "shop", timeout=60)

    long_path = "/srv/" + "a" * 300 + "/app"
    added = add("shop", long_path, "//etc", str(live / "shop"))
    sent = [m.text for m in phone.api.bot_messages(ADMIN)]
    long_refusal = next(t for t in sent if "at most 255 bytes" in t)
    reason, again = long_refusal.split("\n")  # one line of reason, then the question again
    assert reason.startswith("⚠️ bad folder") and again == "Send another project folder."
    assert any("/etc is a system folder" in t for t in sent)
    assert not any("Internal error" in t or "Windows" in t for t in sent)
    assert "Added shop" in added
    assert "y" * 300 not in added and ("feat: " + "y" * 193 + "…") in added
    assert len(added) < 1000
    print(f"Added message: {len(added)} characters")

    answer("/add", "Send its name")
    answer("inner", "repository URL")
    answer(origin.url, "project folder")
    refusal = answer(str(live / "shop" / "inner"), "bad folder")  # refused when given
    assert "inside the folder of project shop" in refusal and "cannot be nested" in refusal
    answer("/cancel", "")
    assert [p.name for p in phone.plant.box.store.list_projects()] == ["shop"]


# -- processes that escaped their slot -----------------------------------------------------


@pytest.fixture
def run_as_user(request: pytest.FixtureRequest) -> str | None:
    """The apps' user: the unprivileged test user, or root when a test asks for it (nothing
    to tell the slot's processes apart by user then)."""
    if getattr(request, "param", "cptest") == "root":
        return None
    user = ensure_run_as_user()
    if user is None:
        pytest.skip("no run-as user here")
    return user


def daemon_of(plant: Plant, name: str, after: int = 0) -> int:
    path = plant.settings.project_dir(name) / "shared" / "prod" / "daemon.json"
    found: list[int] = []

    def written() -> bool:
        try:
            pid = int(json.loads(path.read_text())["pid"])
        except (FileNotFoundError, ValueError, KeyError):
            return False
        found[:] = [pid]
        return pid != after and alive(pid)

    wait_for(f"{name}'s daemon", written, timeout=30)
    return found[0]


@pytest.mark.timeout(400)
@pytest.mark.parametrize("run_as_user", ["cptest", "root"], indirect=True)
def test_a_daemon_ends_with_its_slot_and_nothing_else(
    plant: Plant,
    origin: Callable[..., Origin],
) -> None:
    s = plant.settings
    plant.origin.commit("with a daemon", {"main.py": DAEMON_APP, "requirements.txt": ""})
    plant.origin.push()
    other = origin("other")
    other.commit("with a daemon too", {"main.py": DAEMON_APP, "requirements.txt": ""})
    other.push()
    plant.add("shop")
    plant.ok(
        "project",
        "add",
        "other",
        "--repo",
        other.url,
        "--path",
        str(s.data_dir.parent / "live" / "other"),
    )
    for name in ("shop", "other"):
        plant.ok("project", "set", name, "health-window", "0")
        plant.ok("deploy", name)
    daemon, others = daemon_of(plant, "shop"), daemon_of(plant, "other")
    other_app = plant.box.client.info("other-prod").pid
    shop_app = plant.box.client.info("shop-prod").pid
    assert psutil.Process(daemon).ppid() != shop_app and os.getsid(daemon) != os.getsid(shop_app)
    uid = pwd.getpwnam(s.run_as or "root").pw_uid
    assert psutil.Process(daemon).uids().real == uid
    # a process of the same user that is no slot's
    bystander = subprocess.Popen(["sleep", "600"], user=uid, start_new_session=True)
    cgroups = [p for p in slot_cgroups(s.data_dir, "shop", "prod") if p.exists()]
    print(f"run as {s.run_as}: shop's daemon {daemon}, cgroups {cgroups or 'none'}")
    try:
        plant.ok("stop", "shop")
        wait_for("shop's daemon to end after stop", lambda: not alive(daemon), timeout=15)
        assert alive(others) and alive(other_app) and alive(bystander.pid)

        plant.ok("start", "shop")
        daemon = daemon_of(plant, "shop", after=daemon)
        plant.ok("project", "remove", "shop")
        wait_for("shop's daemon to end after remove", lambda: not alive(daemon), timeout=15)
        assert alive(others) and alive(other_app) and alive(bystander.pid)
        assert not any(p.exists() for p in slot_cgroups(s.data_dir, "shop", "prod"))
        assert plant.box.client.info("other-prod").state == "RUNNING"
    finally:
        bystander.kill()
        bystander.wait()
    plant.ok("project", "remove", "other")
    wait_for("other's daemon to end", lambda: not alive(others), timeout=15)
    assert not any((p.parent.parent / box_tag(s.data_dir)).exists() for p in cgroups)


@pytest.fixture
def sleepers() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    made: list[subprocess.Popen[bytes]] = []

    def make(uid: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["sleep", "600"], user=uid, env=env or {}, start_new_session=True)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.kill()
        proc.wait()


def test_the_sweep_finds_each_mark_and_spares_the_rest(
    make_settings: Callable[..., Settings],
    sleepers: Callable[..., subprocess.Popen[bytes]],
) -> None:
    """Each way a slot's process is found, alone: the v2 cgroup, the v1 pids cgroup (the
    hierarchy this box's apps fall back to), the marker alone (a box without cgroups)."""
    user = ensure_run_as_user()
    if user is None:
        pytest.skip("needs root and a run-as user")
    settings = make_settings(CONTROLPLANE_RUN_AS=user)
    uid = pwd.getpwnam(user).pw_uid
    mark = {MARKER: slot_id(settings.data_dir, "shop", "prod")}
    in_groups = []
    for keys in (("",), ("pids",)):
        folders = slot_cgroups(settings.data_dir, "shop", "prod", "self", keys)
        if not folders:
            continue
        proc = sleepers(uid)
        try:
            folders[0].mkdir(parents=True, exist_ok=True)
            (folders[0] / "cgroup.procs").write_text(str(proc.pid))
        except OSError as exc:
            print(f"no {keys[0] or 'v2'} cgroup here: {exc}")
            continue
        in_groups.append(proc)
    marked = sleepers(uid, mark)
    spared = [
        sleepers(uid, {MARKER: slot_id(settings.data_dir, "shop", "test")}),
        sleepers(uid, {MARKER: slot_id(settings.data_dir, "other", "prod")}),
        sleepers(uid, {MARKER: slot_id(Path("/elsewhere/data"), "shop", "prod")}),
        sleepers(uid, {MARKER: mark[MARKER] + "x"}),
        sleepers(uid),
        sleepers(0, mark),  # root is not the run-as user here
    ]
    print(f"in cgroups: {len(in_groups)}, marked: 1")
    assert end(settings, "shop", "prod", grace=1.0) == len(in_groups) + 1
    for proc in [*in_groups, marked]:
        assert proc.wait(timeout=5) == -signal.SIGTERM
    assert all(proc.poll() is None for proc in spared)
    assert not any(p.exists() for p in slot_cgroups(settings.data_dir, "shop", "prod"))
    assert end(settings, "shop", "prod") == 0


def test_a_process_that_ignores_term_is_killed(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    mark = {MARKER: slot_id(settings.data_dir, "shop", "prod"), "PATH": os.environ["PATH"]}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(600)",
        ],
        env=mark,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    assert end(settings, "shop", "prod", grace=0.5) == 1
    assert proc.wait(timeout=5) == -signal.SIGKILL
    proc.stdout.close()


# -- memory ----------------------------------------------------------------------------------


def test_memory_of_an_app_with_50_forks_is_what_it_uses(box_factory: BoxFactory) -> None:
    box = box_factory(ensure_run_as_user())
    project = box.add_project("forks")
    (Path(project.path) / "main.py").write_text(FORKS_APP)
    write_program(box.settings, project, "prod")
    box.client.apply()
    pid = box.wait_state("forks-prod", ("RUNNING",)).pid
    wait_for("50 forks", lambda: len(psutil.Process(pid).children()) == 50, timeout=30, step=0.2)
    probe = Probe(box.settings, supervisor_source(box.settings))
    snap = probe.take(disk=False, docker=False)
    (slot,) = [s for s in snap.slots if s.program == "forks-prod"]
    procs = [psutil.Process(pid), *psutil.Process(pid).children()]
    rss = sum(p.memory_info().rss for p in procs)
    mib = 2**20
    print(
        f"forks-prod: {slot.pids} processes, {slot.memory_kind} {slot.memory / mib:.0f} MiB, "
        f"RSS summed {rss / mib:.0f} MiB"
    )
    assert slot.pids == 51 and slot.memory_kind == "PSS"
    assert 50 * mib <= slot.memory <= 50 * mib + 51 * 2 * mib  # the block once, plus a little
    assert rss > 20 * slot.memory  # what the RSS sum said
    assert "projects (memory: PSS)" in format_load(snap)
    box.client.stop("forks-prod")
    assert not any(alive(p.pid) for p in procs)


def test_memory_falls_back_to_rss_where_smaps_is_denied() -> None:
    """A control plane that may not read an app's smaps (not root, another user) shows RSS,
    and says so."""
    user = ensure_run_as_user()
    if user is None:
        pytest.skip("needs root and a run-as user")
    target = os.getpid()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child: another user, measuring this process
        try:
            os.setuid(pwd.getpwnam(user).pw_uid)
            used = usage([target])
            os.write(write, json.dumps([used.memory, used.memory_kind]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        memory, kind = json.loads(pipe.read())
    os.waitpid(child, 0)
    assert kind == "RSS"
    assert memory == pytest.approx(psutil.Process().memory_info().rss, rel=0.2)
    assert usage([target]).memory_kind == "PSS"  # root reads smaps
