"""No value a project or an admin sets ever runs, loads or is read by a process running as
root (issue #11): every dangerous variable set on a project while it is polled, built,
deployed and rolled back, with a watcher reading /proc/*/environ and /proc/*/maps of every
root process, and the exact LD_PRELOAD escalation a tester found (an app writes a library
into its data folder, the admin sets LD_PRELOAD to it, the next poll loaded it into root's
git)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.fixtures_release import Plant

# The library's constructor leaves a file named after the uid that loaded it.
EVIL_C = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void evil(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/loaded-by-uid-%d-pid-%d", MARKS, (int)getuid(), (int)getpid());
    FILE *f = fopen(path, "w");
    if (f) { fputs("loaded\n", f); fclose(f); }
}
"""
MARK_SCRIPT = '#!/bin/sh\ntouch "{marks}/ran-$(id -u)-$$-{what}"\nexec "$@"\n'


class RootWatcher:
    """Reads the environment and the mapped files of every root process, over and over,
    and records any that holds `needle` (the path of our hostile files)."""

    def __init__(self, needle: str) -> None:
        self.needle = needle.encode()
        self.hits: list[str] = []
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RootWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            for proc in psutil.process_iter(["uids", "cmdline"]):
                uids = proc.info["uids"]
                if proc.pid == me or uids is None or 0 not in (uids.real, uids.effective):
                    continue
                for part in ("environ", "maps"):
                    try:
                        data = Path(f"/proc/{proc.pid}/{part}").read_bytes()
                    except OSError:
                        continue
                    if self.needle in data:
                        self.hits.append(f"{part} of pid {proc.pid}: {proc.info['cmdline']}")
            self.scans += 1
            time.sleep(0.01)


@pytest.fixture
def hostile_dir() -> Iterator[Path]:
    """A folder every user can write to, for the hostile library, scripts and marks."""
    folder = Path(tempfile.mkdtemp(prefix="cp-hostile-", dir="/tmp"))
    (folder / "marks").mkdir()
    os.chmod(folder, 0o755)
    os.chmod(folder / "marks", 0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def compile_library(src_dir: Path, dest: Path, marks: Path) -> None:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        print("no C compiler: the LD_PRELOAD library cannot be built")
        pytest.skip("no C compiler (cc/gcc) to build the hostile library")
    source = src_dir / "evil.c"
    source.write_text(EVIL_C)
    subprocess.run(
        [cc, "-shared", "-fPIC", f'-DMARKS="{marks}"', "-o", str(dest), str(source)], check=True
    )
    os.chmod(dest, 0o755)


def dangerous_variables(folder: Path, library: Path) -> dict[str, str]:
    """Every variable name that makes a program load or run something of the setter's."""
    marks = folder / "marks"
    scripts = {}
    for what in ("ssh", "proxy", "bashenv", "env", "askpass", "editor", "pager"):
        script = folder / f"{what}.sh"
        script.write_text(MARK_SCRIPT.format(marks=marks, what=what))
        script.chmod(0o755)
        scripts[what] = str(script)
    pydir = folder / "py"
    pydir.mkdir()
    (pydir / "sitecustomize.py").write_text(
        f"import os; open(f'{marks}/python-{{os.getuid()}}-{{os.getpid()}}', 'w').close()\n"
    )
    gitconfig = folder / "gitconfig"
    gitconfig.write_text(f"[core]\n\tsshCommand = {scripts['ssh']}\n\thooksPath = {folder}\n")
    return {
        "LD_PRELOAD": str(library),
        "LD_LIBRARY_PATH": str(folder),
        "PYTHONPATH": str(pydir),
        "PYTHONSTARTUP": str(pydir / "sitecustomize.py"),
        "PYTHONUSERBASE": str(folder),
        "GIT_SSH_COMMAND": scripts["ssh"],
        "GIT_SSH": scripts["ssh"],
        "GIT_PROXY_COMMAND": scripts["proxy"],
        "GIT_ASKPASS": scripts["askpass"],
        "GIT_EDITOR": scripts["editor"],
        "GIT_PAGER": scripts["pager"],
        "GIT_EXEC_PATH": str(folder),
        "GIT_TEMPLATE_DIR": str(folder),
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "GIT_CONFIG_SYSTEM": str(gitconfig),
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "core.sshCommand",
        "GIT_CONFIG_VALUE_0": scripts["ssh"],
        "SSH_ASKPASS": scripts["askpass"],
        "SSH_AUTH_SOCK": str(folder / "agent.sock"),
        "BASH_ENV": scripts["bashenv"],
        "ENV": scripts["env"],
    }


@pytest.mark.timeout(400)
def test_no_project_value_reaches_a_root_process(
    plant: Plant,
    run_as_user: str | None,
    hostile_dir: Path,
) -> None:
    if os.geteuid() != 0 or run_as_user is None:
        print("needs root and the run-as user: the boundary under test is root vs the apps")
        pytest.skip("needs root and a run-as user")
    marks = hostile_dir / "marks"
    plant.commit("1")
    plant.add()
    plant.ok("env", "set", "shop", *plant.local_index())
    plant.ok("project", "set", "shop", "health-window", "1")
    plant.ok("poll", "shop", "1m")
    plant.ok("deploy", "shop")
    plant.wait_report("prod", "1")

    # the exact escalation: the app (the run-as user) writes a library into its own data
    # folder; the admin (or a hijacked admin account) points LD_PRELOAD at it
    app_data = plant.settings.project_dir("shop") / "shared" / "prod"
    library = app_data / "libevil.so"
    compile_library(hostile_dir, library, marks)
    shutil.chown(library, user=run_as_user)
    variables = dangerous_variables(hostile_dir, library)
    # the same library in the hostile folder too, so the watcher's needle covers both
    needle = str(hostile_dir)
    shutil.copy(library, hostile_dir / "libevil.so")
    variables["LD_PRELOAD"] = f"{library}:{hostile_dir / 'libevil.so'}"

    with RootWatcher(needle) as watcher:
        plant.ok("env", "set", "shop", *(f"{k}={v}" for k, v in variables.items()))
        plant.ok("env", "set", "shop", "--test", f"LD_PRELOAD={hostile_dir / 'libevil.so'}")
        plant.commit("2")
        result = {r.project: r for r in plant.stack.poller.poll_once(now=time.time() + 10**6)}
        assert result["shop"].ok, result["shop"].error
        handling = plant.stack.executor.busy("shop")
        if handling is not None:
            assert handling.wait(timeout=120)
        plant.ok("deploy", "shop", "--test", "--duration", "5")
        plant.ok("deploy", "shop")
        plant.wait_report("prod", "2")
        plant.ok("rollback", "shop", "1")
        plant.wait_report("prod", "1")
        time.sleep(0.5)

    assert watcher.scans > 10, "the watcher did not run"
    assert watcher.hits == [], "root processes held a project's value:\n" + "\n".join(
        sorted(set(watcher.hits))[:20]
    )
    made = sorted(p.name for p in marks.iterdir())
    by_root = [m for m in made if m.startswith(("loaded-by-uid-0-", "ran-0-", "python-0-"))]
    assert by_root == [], f"run as root: {by_root}"
    # the values were live: the app itself (the run-as user) loaded the library
    app_uid = pwd.getpwnam(run_as_user).pw_uid
    assert any(m.startswith(f"loaded-by-uid-{app_uid}-") for m in made), made
