"""`controlplane run-slot NAME SLOT`: decrypt a slot's variables, drop privileges, exec the app.

supervisord runs this as root; it ends in os.execve, so the process supervisord watches is
the app itself. Secrets go only into the exec'd process's environment, never into a file
or argv. Startup speed matters (every restart pays it): only the store is imported here,
nothing of telegram, docker, git, jinja2 or supervisor.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from controlplane.adapters.account import lookup_account
from controlplane.adapters.slotcgroup import join, slot_id
from controlplane.adapters.supervisor.links import wait_for_code
from controlplane.domain.appenv import Account, app_env, base_env
from controlplane.domain.models import validate_name, validate_slot
from controlplane.errors import ControlPlaneError
from controlplane.i18n import locale_lang, tr
from controlplane.layout import venv_python
from controlplane.settings import Settings


class RunSlotError(ControlPlaneError):
    """The slot cannot be started; the message says why."""


def slot_python(settings: Settings, code: Path) -> str:
    """The release's venv interpreter when there is one, else the projects' Python."""
    venv = venv_python(code)
    return str(venv) if venv.exists() else settings.python


def prepare_data_dir(settings: Settings, name: str, slot: str, account: Account) -> Path:
    """Create the slot's data folder, owned by the app's user, reachable through the tree."""
    layout = settings.layout
    path = layout.slot_data(name, slot)
    path.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        os.chown(path, account.uid, account.gid)
    os.chmod(path, 0o700)
    # projects/NAME/shared must be passable (x, not r) for the user to reach its folder.
    for folder in (layout.projects_dir, layout.project_dir(name), layout.shared_dir(name)):
        mode = os.stat(folder).st_mode & 0o7777
        if mode & 0o011 != 0o011 and os.stat(folder).st_uid == os.getuid():
            os.chmod(folder, mode | 0o011)  # noqa: S103 - pass-through only, no listing
    return path


def drop_privileges(account: Account) -> None:
    """Supplementary groups, then gid, then uid; then prove root cannot come back."""
    if os.getuid() != 0:
        if os.getuid() != account.uid:
            raise RunSlotError(
                tr(
                    "only root can run apps as {user}; run supervisord as root",
                    user=account.name,
                )
            )
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
        raise RunSlotError(tr("could still become root after dropping privileges; refusing to run"))
    if os.getuid() != account.uid or os.geteuid() != account.uid or os.getegid() != account.gid:
        raise RunSlotError(tr("privileges were not dropped; refusing to run"))


def run_slot(settings: Settings, name: str, slot: str) -> None:
    """Everything up to the exec; returns only by raising."""
    from controlplane.adapters.store import Store  # the one heavy import: cryptography

    validate_name(name)
    validate_slot(slot)
    store = Store.open(settings, fallback=True)  # read-only; a damaged file: its last copy
    project = store.get_project(name)
    variables = store.slot_env(name, slot)
    if store.used_backup:  # serve is in safe mode: the app still starts (its log says so)
        why = tr("the store is damaged; the app starts with its last good copy")
        print(f"run-slot {name} {slot}: {why.render(locale_lang())}", file=sys.stderr, flush=True)
    code = settings.layout.slot_code(project, slot)
    # right after `up`, serve may not have put the link back yet: wait for it (bounded)
    if not wait_for_code(code, settings.supervisor_dir):
        raise RunSlotError(
            tr(
                "{name} {slot}: no code at {folder}; deploy it first",
                name=name,
                slot=slot,
                folder=str(code),
            )
        )
    python = slot_python(settings, code)
    account = lookup_account(settings.run_as)
    data = prepare_data_dir(settings, name, slot, account)
    mark = slot_id(settings.data_dir, name, slot)
    env = app_env(base_env(account, python=python, data_dir=data, slot=slot, mark=mark), variables)
    os.chdir(code)
    join(settings.data_dir, name, slot)  # while still root: the app cannot leave it
    drop_privileges(account)
    if not Path(project.entry).is_file():
        raise RunSlotError(
            tr(
                "{name} {slot}: entry {entry} not found in {folder}",
                name=name,
                slot=slot,
                entry=project.entry,
                folder=str(code),
            )
        )
    os.execve(python, [python, project.entry], env)  # noqa: S606 - argv list, no shell


def main(settings: Settings, name: str, slot: str) -> int:
    """CLI entry: exec the app, or one line on stderr (supervisord logs it, in the
    locale's language) and status 1."""
    try:
        run_slot(settings, name, slot)
    except ControlPlaneError as exc:
        why = exc.text.render(locale_lang())
        print(f"run-slot {name} {slot}: {why}", file=sys.stderr, flush=True)
        return 1
    except OSError as exc:
        print(f"run-slot {name} {slot}: {exc}", file=sys.stderr, flush=True)
        return 1
    return 1  # not reached: run_slot execs or raises
