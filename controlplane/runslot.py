"""`controlplane run-slot NAME SLOT`: decrypt a slot's variables, drop privileges, exec the app.

supervisord runs this as root; it ends in os.execve, so the process supervisord watches is
the app itself. Secrets go only into the exec'd process's environment, never into a file
or argv.

Every start, restart and rollback of an app pays this start, so the usual case takes a
lean way (`fast_plan`): only the standard library and three small modules are imported
(no settings, no store, no i18n, no cryptography), store.json is read once, only this
slot's record is looked at and only its variables decrypted (adapters.fernetlite). Anything
out of the ordinary (a damaged store, no such project, a key that does not fit, no code
yet, an unusual data dir) answers None there, and the full way (`full_plan`: Settings, the
store read-only with its fallback to the last good copy, cryptography) decides and says
what is wrong, as before. Both ways end in the same `launch`.
"""

from __future__ import annotations

import json
import os
import pwd
import sys
from pathlib import Path

from controlplane.adapters import fernetlite
from controlplane.adapters.slotcgroup import join, slot_id
from controlplane.domain.appenv import Account, app_env, base_env

TYPE_CHECKING = False  # typing itself is not imported: it is on every app's start
if TYPE_CHECKING:
    from typing import Any

    from controlplane.errors import ControlPlaneError
    from controlplane.settings import Settings

SLOTS = ("prod", "test")
# what the lean way reads of the data dir (controlplane.layout names the same paths;
# tests/test_runslot.py checks that they agree)
STORE_FILE = "store.json"
KEY_FILE = "secret.key"
KEY_CHECK = "controlplane-key-check"  # adapters.store.KEY_CHECK
SCHEMA = 2  # the store's schema this reader knows (adapters.store.SCHEMA)


class Plan:
    """Everything decided before the first change: where, as whom, with what."""

    __slots__ = ("account", "code", "data_dir", "entry", "name", "python", "slot", "variables")

    def __init__(
        self,
        name: str,
        slot: str,
        data_dir: Path,
        code: Path,
        python: str,
        account: Account,
        entry: str,
        variables: dict[str, str],
    ) -> None:
        self.name, self.slot, self.data_dir, self.code = name, slot, data_dir, code
        self.python, self.account, self.entry, self.variables = python, account, entry, variables


def slot_python(settings: Settings, code: Path) -> str:
    """The release's venv interpreter when there is one, else the projects' Python."""
    venv = code / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else settings.python


# -- the lean way ----------------------------------------------------------------------------


def fast_plan(env: dict[str, str] | os._Environ[str], name: str, slot: str) -> Plan | None:
    """The plan from store.json alone, or None when anything is out of the ordinary."""
    data = env.get("CONTROLPLANE_DATA_DIR", "").strip()
    if slot not in SLOTS or not data.startswith("/"):
        return None
    data_dir = Path(data)
    keys = key_halves(env, data_dir)
    store = read_json(data_dir / STORE_FILE)
    if not keys or store is None or not key_fits(store, keys):
        return None
    doc = project_doc(store, name)
    if doc is None:
        return None
    variables = slot_variables(doc, slot, keys)
    path, entry = doc.get("path"), doc.get("entry", "main.py")
    if variables is None or not isinstance(path, str) or not isinstance(entry, str):
        return None
    code = Path(path) if slot == "prod" else data_dir / "projects" / name / "test"
    account = fast_account(env.get("CONTROLPLANE_RUN_AS", "").strip())
    if account is None or not code.is_dir():
        return None  # no code yet (are the links pending?): the full way waits or says so
    venv = code / ".venv" / "bin" / "python"  # else the projects' Python (slot_python)
    python = str(venv) if venv.exists() else env.get("CONTROLPLANE_PYTHON", "").strip()
    if not python:
        return None  # Settings knows the default interpreter
    return Plan(name, slot, data_dir, code, python, account, entry, variables)


def key_halves(env: dict[str, str] | os._Environ[str], data_dir: Path) -> list[fernetlite.Key]:
    """The store's keys (CONTROLPLANE_KEY, else the key file), newest first; [] when one
    of them is malformed or there is none (the full way says why)."""
    raw = [k for k in env.get("CONTROLPLANE_KEY", "").split(",") if k.strip()]
    if not raw:
        try:
            raw = (data_dir / KEY_FILE).read_text().split()
        except OSError:
            return []
    keys = [fernetlite.parse_key(k) for k in raw]
    return [k for k in keys if k is not None] if None not in keys else []


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def rows(store: dict[str, Any], table: str) -> list[dict[str, Any]]:
    found = store.get(table)
    if not isinstance(found, dict):
        return []
    return [row for row in found.values() if isinstance(row, dict)]


def key_fits(store: dict[str, Any], keys: list[fernetlite.Key]) -> bool:
    """The store's key check opens with these keys and its schema is one this reads."""
    for row in rows(store, "meta"):
        if row.get("name") == "key_check":
            token, schema = row.get("token"), row.get("schema")
            return (
                isinstance(token, str)
                and isinstance(schema, int)
                and schema <= SCHEMA
                and fernetlite.decrypt(token, keys) == KEY_CHECK
            )
    return False


def project_doc(store: dict[str, Any], name: str) -> dict[str, Any] | None:
    found = [row for row in rows(store, "projects") if row.get("name") == name]
    return found[0] if len(found) == 1 else None


def slot_variables(
    doc: dict[str, Any], slot: str, keys: list[fernetlite.Key]
) -> dict[str, str] | None:
    """What the slot's app sees (prod's variables, test's laid over them for test)."""
    tokens = doc.get("env") or {}
    merged: dict[str, str] = {}
    for layer in ("prod", "test") if slot == "test" else ("prod",):
        for key, token in (tokens.get(layer) or {}).items():
            value = fernetlite.decrypt(token, keys) if isinstance(token, str) else None
            if value is None:
                return None
            merged[key] = value
    return merged


def fast_account(run_as: str) -> Account | None:
    """adapters.account.lookup_account without its error (None: the full way says it)."""
    try:
        pw = pwd.getpwnam(run_as) if run_as else pwd.getpwuid(os.getuid())
    except KeyError:
        return None
    return Account(name=pw.pw_name, uid=pw.pw_uid, gid=pw.pw_gid, home=pw.pw_dir)


# -- the full way ----------------------------------------------------------------------------


def full_plan(settings: Settings, name: str, slot: str) -> Plan:
    """The plan through Settings and the store (read-only; a damaged file: its last good
    copy, said on stderr); raises a ControlPlaneError that says what is wrong."""
    from controlplane.adapters.account import lookup_account
    from controlplane.adapters.store import Store
    from controlplane.adapters.supervisor.links import wait_for_code
    from controlplane.domain.models import validate_name, validate_slot
    from controlplane.i18n import locale_lang, tr

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
        raise refusal(
            tr(
                "{name} {slot}: no code at {folder}; deploy it first",
                name=name,
                slot=slot,
                folder=str(code),
            )
        )
    account = lookup_account(settings.run_as)
    python = slot_python(settings, code)
    return Plan(name, slot, settings.data_dir, code, python, account, project.entry, variables)


# -- both ways -------------------------------------------------------------------------------


def launch(plan: Plan) -> None:
    """Everything from the first change to the exec; returns only by raising."""
    data = prepare_data_dir(plan.data_dir, plan.name, plan.slot, plan.account)
    mark = slot_id(plan.data_dir, plan.name, plan.slot)
    base = base_env(plan.account, python=plan.python, data_dir=data, slot=plan.slot, mark=mark)
    env = app_env(base, plan.variables)
    os.chdir(plan.code)
    join(plan.data_dir, plan.name, plan.slot)  # while still root: the app cannot leave it
    drop_privileges(plan.account)
    if not os.path.isfile(plan.entry):
        from controlplane.i18n import tr

        raise refusal(
            tr(
                "{name} {slot}: entry {entry} not found in {folder}",
                name=plan.name,
                slot=plan.slot,
                entry=plan.entry,
                folder=str(plan.code),
            )
        )
    os.execve(plan.python, [plan.python, plan.entry], env)  # noqa: S606 - argv list, no shell


def prepare_data_dir(data_dir: Path, name: str, slot: str, account: Account) -> Path:
    """Create the slot's data folder, owned by the app's user, reachable through the tree
    (layout.slot_data: projects/NAME/shared/SLOT)."""
    projects = data_dir / "projects"
    shared = projects / name / "shared"
    path = shared / slot
    path.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        os.chown(path, account.uid, account.gid)
    os.chmod(path, 0o700)
    # projects/NAME/shared must be passable (x, not r) for the user to reach its folder.
    for folder in (projects, projects / name, shared):
        st = os.stat(folder)
        mode = st.st_mode & 0o7777
        if mode & 0o011 != 0o011 and st.st_uid == os.getuid():
            os.chmod(folder, mode | 0o011)  # noqa: S103 - pass-through only, no listing
    return path


def drop_privileges(account: Account) -> None:
    """Supplementary groups, then gid, then uid; then prove root cannot come back."""
    if os.getuid() != 0:
        if os.getuid() != account.uid:
            from controlplane.i18n import tr

            raise refusal(
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
        from controlplane.i18n import tr

        raise refusal(tr("could still become root after dropping privileges; refusing to run"))
    if os.getuid() != account.uid or os.geteuid() != account.uid or os.getegid() != account.gid:
        from controlplane.i18n import tr

        raise refusal(tr("privileges were not dropped; refusing to run"))


def refusal(text: Any) -> ControlPlaneError:
    """The slot cannot be started; `text` (a Text) says why."""
    from controlplane.errors import ControlPlaneError

    return ControlPlaneError(text)


def run_slot(name: str, slot: str, settings: Settings | None = None) -> None:
    """The lean way when it can, else the full way; then the launch. Returns only by
    raising."""
    plan = fast_plan(os.environ, name, slot) if settings is None else None
    if plan is None:
        if settings is None:
            from controlplane.settings import Settings

            settings = Settings.from_env()
        plan = full_plan(settings, name, slot)
    launch(plan)


def main(name: str, slot: str, settings: Settings | None = None) -> int:
    """CLI entry: exec the app, or one line on stderr (supervisord logs it, in the
    locale's language) and status 1."""
    try:
        run_slot(name, slot, settings)
    except OSError as exc:
        print(f"run-slot {name} {slot}: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:
        from controlplane.errors import ControlPlaneError
        from controlplane.i18n import locale_lang

        if not isinstance(exc, ControlPlaneError):
            raise
        print(f"run-slot {name} {slot}: {exc.text.render(locale_lang())}", file=sys.stderr)
        return 1
    return 1  # not reached: run_slot execs or raises
