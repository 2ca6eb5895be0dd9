"""`controlplane run-slot NAME SLOT`: decrypt a slot's variables, drop privileges, exec the app.

supervisord runs this as root; it ends in os.execve, so the process supervisord watches is
the app itself. Secrets go only into the exec'd process's environment, never into a file
or argv. Startup speed matters (every restart pays it): only the store is imported here,
nothing of telegram, docker, git, jinja2 or supervisor.
"""

from __future__ import annotations

import os
import pwd
import sys
from dataclasses import dataclass
from pathlib import Path

from controlplane.adapters.slotcgroup import MARKER, join, slot_id
from controlplane.domain.models import Project, validate_name, validate_slot
from controlplane.errors import ControlPlaneError
from controlplane.settings import Settings


class RunSlotError(ControlPlaneError):
    """The slot cannot be started; the message says why."""


@dataclass(frozen=True)
class Account:
    """Who the app runs as."""

    name: str
    uid: int
    gid: int
    home: str


def slot_code_dir(settings: Settings, project: Project, slot: str) -> Path:
    """prod runs from the project folder (a link to a release), test from projects/NAME/test."""
    return Path(project.path) if slot == "prod" else settings.project_dir(project.name) / "test"


def slot_data_dir(settings: Settings, name: str, slot: str) -> Path:
    """The slot's persistent folder, APP_DATA_DIR; it survives deploys."""
    return settings.project_dir(name) / "shared" / slot


def slot_python(settings: Settings, code: Path) -> str:
    """The release's venv interpreter when there is one, else the projects' Python."""
    venv = code / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else settings.python


def lookup_account(run_as: str | None) -> Account:
    """The run-as user, or the current one when none is set."""
    try:
        pw = pwd.getpwnam(run_as) if run_as else pwd.getpwuid(os.getuid())
    except KeyError:
        raise RunSlotError(
            f"user {run_as!r} (CONTROLPLANE_RUN_AS) does not exist; create it or unset it"
        ) from None
    return Account(name=pw.pw_name, uid=pw.pw_uid, gid=pw.pw_gid, home=pw.pw_dir)


def base_env(
    account: Account, *, python: str, data_dir: Path, slot: str, mark: str = ""
) -> dict[str, str]:
    """The minimal environment every app gets before its own variables are laid over;
    `mark` is the slot's marker (slotcgroup.slot_id), how its escaped processes are found."""
    bin_dir = str(Path(python).parent)
    return {
        "HOME": account.home,
        "USER": account.name,
        "LOGNAME": account.name,
        "PATH": ":".join(dict.fromkeys([bin_dir, "/usr/local/bin", "/usr/bin", "/bin"])),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "APP_DATA_DIR": str(data_dir),
        "CONTROLPLANE_SLOT": slot,
        **({MARKER: mark} if mark else {}),
    }


def app_env(base: dict[str, str], variables: dict[str, str]) -> dict[str, str]:
    """The slot's variables over the base; the names the control plane sets win."""
    env = dict(variables)
    env.update(base)
    return env


def prepare_data_dir(settings: Settings, path: Path, account: Account) -> None:
    """Create the slot's data folder, owned by the app's user, reachable through the tree."""
    path.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        os.chown(path, account.uid, account.gid)
    os.chmod(path, 0o700)
    # projects/NAME/shared must be passable (x, not r) for the user to reach its folder.
    for folder in (settings.projects_dir, path.parent.parent, path.parent):
        mode = os.stat(folder).st_mode & 0o7777
        if mode & 0o011 != 0o011 and os.stat(folder).st_uid == os.getuid():
            os.chmod(folder, mode | 0o011)  # noqa: S103 - pass-through only, no listing


def drop_privileges(account: Account) -> None:
    """Supplementary groups, then gid, then uid; then prove root cannot come back."""
    if os.getuid() != 0:
        if os.getuid() != account.uid:
            raise RunSlotError(f"only root can run apps as {account.name}; run supervisord as root")
        return
    os.initgroups(account.name, account.gid)
    os.setgid(account.gid)
    os.setuid(account.uid)
    if account.uid == 0:
        return
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise RunSlotError("could still become root after dropping privileges; refusing to run")
    if os.getuid() != account.uid or os.geteuid() != account.uid or os.getegid() != account.gid:
        raise RunSlotError("privileges were not dropped; refusing to run")


def run_slot(settings: Settings, name: str, slot: str) -> None:
    """Everything up to the exec; returns only by raising."""
    from controlplane.adapters.store import Store  # the one heavy import: cryptography

    validate_name(name)
    validate_slot(slot)
    store = Store.open(settings)
    project = store.get_project(name)
    variables = store.slot_env(name, slot)
    code = slot_code_dir(settings, project, slot)
    if not code.is_dir():
        raise RunSlotError(f"{name} {slot}: no code at {code}; deploy it first")
    python = slot_python(settings, code)
    account = lookup_account(settings.run_as)
    data = slot_data_dir(settings, name, slot)
    prepare_data_dir(settings, data, account)
    mark = slot_id(settings.data_dir, name, slot)
    env = app_env(base_env(account, python=python, data_dir=data, slot=slot, mark=mark), variables)
    os.chdir(code)
    join(settings.data_dir, name, slot)  # while still root: the app cannot leave it
    drop_privileges(account)
    if not Path(project.entry).is_file():
        raise RunSlotError(f"{name} {slot}: entry {project.entry} not found in {code}")
    os.execve(python, [python, project.entry], env)  # noqa: S606 - argv list, no shell


def main(settings: Settings, name: str, slot: str) -> int:
    """CLI entry: exec the app, or one line on stderr (supervisord logs it) and status 1."""
    try:
        run_slot(settings, name, slot)
    except (ControlPlaneError, OSError) as exc:
        print(f"run-slot {name} {slot}: {exc}", file=sys.stderr, flush=True)
        return 1
    return 1  # not reached: run_slot execs or raises


if __name__ == "__main__":
    raise SystemExit(main(Settings.from_env(), *sys.argv[1:3]))
