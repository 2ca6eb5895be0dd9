"""The service layer: every operation the CLI and the bot offer, validated at the edge.

Functions here take already-opened adapters (store, settings) and plain values typed by a
person; they validate everything first and write nothing when any value is refused.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from controlplane.adapters import sshkeys
from controlplane.adapters.secrets import mask
from controlplane.adapters.store import Store
from controlplane.domain.history import CommitRow
from controlplane.domain.models import (
    SLOTS,
    Project,
    convert_setting,
    parse_assignments,
    parse_interval,
    validate_branch,
    validate_entry,
    validate_folder,
    validate_name,
    validate_repo_url,
    validate_slot,
    validate_var_name,
)
from controlplane.errors import AlreadyExists, NotFound, ValidationError
from controlplane.settings import Settings

if TYPE_CHECKING:
    from controlplane.adapters import git


@dataclass(frozen=True)
class Added:
    """A project that was added, with warnings a person should read."""

    project: Project
    warnings: tuple[str, ...]


def folder_is_ours(folder: Path, settings: Settings, name: str) -> bool:
    """A link into this project's releases, or an empty or missing folder."""
    if folder.is_symlink():
        target = Path(os.path.realpath(folder))
        return target.is_relative_to(os.path.realpath(settings.project_dir(name)))
    if not folder.exists():
        return True
    return folder.is_dir() and not any(folder.iterdir())


def other_folders(store: Store, name: str) -> dict[str, str]:
    """The folders of every other project (name → folder): a new one may not nest in them."""
    return {p.name: p.path for p in store.list_projects() if p.name != name}


def check_folder_free(folder: Path, settings: Settings, store: Store, name: str) -> None:
    """Refuse a folder that holds someone's files (other projects' folders are refused by
    validate_folder); a folder that cannot be looked at is refused, never an error."""
    try:
        is_file = folder.exists() and not folder.is_dir() and not folder.is_symlink()
        ours = folder_is_ours(folder, settings, name)
    except OSError as exc:
        raise ValidationError(
            "folder", str(folder), f"it cannot be looked at ({exc.strerror}); give another folder"
        ) from None
    if is_file:
        raise ValidationError("folder", str(folder), "it is a file; give a folder path")
    if not ours:
        raise ValidationError(
            "folder",
            str(folder),
            "it holds files the control plane did not put there and it never takes them "
            "over; give a new or empty folder (it becomes a link to the live release)",
        )


def add_project(
    settings: Settings,
    store: Store,
    *,
    name: str,
    repo: str,
    path: str,
    branch: str = "main",
    entry: str = "main.py",
    kind: str = "own",
    check_remote: bool = True,
) -> Added:
    """Validate every field and ask the remote for the branch, then add in one write."""
    name = validate_name(name)
    url = validate_repo_url(repo, allow_file=settings.allow_file_urls)
    folder = validate_folder(
        path,
        data_dir=settings.data_dir,
        allowed_inside=(settings.apps_dir,),
        others=other_folders(store, name),
    )
    branch = validate_branch(branch)
    entry = validate_entry(entry)
    try:
        store.get_project(name)
    except NotFound:
        pass
    else:
        raise AlreadyExists(f"project {name} exists already; `controlplane project show {name}`")
    check_folder_free(folder, settings, store, name)
    if check_remote:
        from controlplane.adapters import git

        # reachable, the credentials or deploy key accepted, the branch there
        git.ls_remote(
            git.Remote(url.url, url.auth), branch, access=git_access(settings, store, name)
        )
    project = Project(
        name=name, repo=url.url, path=str(folder), branch=branch, entry=entry, kind=kind
    )
    store.add_project(project, repo_auth=url.auth)
    return Added(project=project, warnings=(url.warning,) if url.warning else ())


def number_commits(settings: Settings, store: Store, name: str) -> CommitRow:
    """Fetch a newly added project and number its last 20 commits; on failure the project
    is removed again (nothing half-added) and git's reason is raised."""
    from controlplane.engine.releases import Engine, Quiet
    from controlplane.service.outbox import Outbox

    engine = Engine(settings, store, Outbox(store))
    project = store.get_project(name)
    try:
        return engine.sync(project, Quiet())
    except BaseException:
        store.remove_project(name)
        store.forget(name)
        shutil.rmtree(settings.project_dir(name), ignore_errors=True)
        raise


def git_access(settings: Settings, store: Store, name: str) -> git.Access:
    """git as its user, with the name's pinned hosts and deploy key (one may be made before
    the project is added)."""
    from controlplane.adapters import git

    return git.Access(
        user=git.git_user(settings),
        known_hosts=settings.known_hosts(name),
        deploy_key=store.deploy_key(name),
    )


@dataclass(frozen=True)
class DeployKey:
    """What the admin sees of a deploy key: its public line and the pinned host keys."""

    name: str
    public: str
    made: bool
    hosts: list[sshkeys.HostKey]


def deploy_key(settings: Settings, store: Store, name: str, *, new: bool = False) -> DeployKey:
    """The name's deploy key, made on first use (or anew with `new`)."""
    name = validate_name(name)
    private = None if new else store.deploy_key(name)
    made = private is None
    if private is None:
        private, _ = sshkeys.generate(f"controlplane-{name}")
        store.set_deploy_key(name, private)
    public = sshkeys.public_of(private, f"controlplane-{name}")
    return DeployKey(name, public, made, sshkeys.pinned(settings.known_hosts(name)))


def remove_deploy_key(store: Store, name: str) -> None:
    store.set_deploy_key(validate_name(name), None)


def forget_hosts(settings: Settings, name: str) -> None:
    """Forget the pinned host keys: the next ssh fetch pins (and reports) them again."""
    settings.known_hosts(validate_name(name)).unlink(missing_ok=True)


def default_branch(settings: Settings, repo: str) -> str:
    """A third-party repository's branch: main, else master, else the only one."""
    from controlplane.adapters import git

    url = validate_repo_url(repo, allow_file=settings.allow_file_urls)
    heads = git.ls_remote_heads(
        git.Remote(url.url, url.auth), access=git.Access(user=git.git_user(settings))
    )
    for name in ("main", "master"):
        if name in heads:
            return name
    if len(heads) == 1:
        return next(iter(heads))
    raise ValidationError("repository", url.url, "it has no main or master branch; give --branch")


def launch_name(repo: str) -> str:
    """'https://github.com/o/My.Bot.git' → 'my-bot'."""
    base = repo.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git").lower()
    clean = "".join(c if c.isalnum() or c in "_-" else "-" for c in base).strip("-_")
    return validate_name(clean[:32] or "app")


def set_setting(store: Store, name: str, key: str, value: str) -> Project:
    """`project set NAME KEY VALUE` (`repo` changes the URL and its credentials)."""
    if key == "repo":
        url = validate_repo_url(value, allow_file=store.settings.allow_file_urls)
        store.get_project(validate_name(name))
        return store.set_repo(name, url.url, url.auth)
    field, clean = convert_setting(key, value)
    store.get_project(validate_name(name))
    return store.update_project(name, **{field: clean})


def set_poll(store: Store, name: str, interval: str) -> Project:
    """How often the branch is polled: off, 1m … 7d."""
    seconds = parse_interval(interval)
    store.get_project(validate_name(name))
    return store.update_project(name, poll=seconds)


def env_set(store: Store, name: str, slot: str, assignments: list[str]) -> list[str]:
    """Set KEY=VALUE pairs in one write; returns the names set."""
    slot = validate_slot(slot)
    values = parse_assignments(assignments)
    if not values:
        raise ValidationError("assignment", "", "give at least one KEY=VALUE")
    store.get_project(validate_name(name))
    store.set_env(name, slot, values)
    apply_variables(store.settings, store, name)
    return sorted(values)


def apply_variables(settings: Settings, store: Store, name: str) -> list[str]:
    """Rewrite the project's program files so that the slots whose variables changed
    restart now (their files carry the variables' revision, never the values); nothing
    happens while supervisord is down: serve applies them when it starts."""
    from controlplane.adapters.supervisor.client import Supervisor, write_program
    from controlplane.errors import SupervisorError
    from controlplane.service.serve import slot_options

    project = store.get_project(name)
    if not settings.supervisor_sock.exists():
        return []
    changed = [
        slot
        for slot in SLOTS
        if settings.layout.slot_code(project, slot).exists()
        and write_program(settings, project, slot, options=slot_options(store, name, slot))
    ]
    if changed:
        client = Supervisor(settings, timeout=30.0)
        try:
            client.apply()
        except SupervisorError:
            return []
        finally:
            client.close()
    return changed


def env_unset(store: Store, name: str, slot: str, keys: list[str]) -> list[str]:
    """Remove variables; all or nothing."""
    slot = validate_slot(slot)
    names = [validate_var_name(k) for k in keys]
    if not names:
        raise ValidationError("variable name", "", "give at least one name")
    store.get_project(validate_name(name))
    missing = store.unset_env(name, slot, names)
    if missing:
        raise NotFound(f"{', '.join(missing)} not set in {name} {slot}; nothing removed")
    apply_variables(store.settings, store, name)
    return names


def env_list(store: Store, name: str, slot: str, *, reveal: bool = False) -> list[tuple[str, str]]:
    """(name, shown value) pairs: masked unless `reveal`."""
    slot = validate_slot(slot)
    values = store.env(validate_name(name), slot)
    return [(k, v if reveal else mask(v)) for k, v in values.items()]


def remove_project(settings: Settings, store: Store, name: str) -> Project:
    """Remove a project: its programs stop and go, its prod link, releases, mirror, data
    folders and history go; files we did not put in its folder stay."""
    from controlplane.adapters.supervisor.client import Supervisor, remove_program
    from controlplane.errors import SupervisorError

    project = store.get_project(validate_name(name))
    busy = (store.state(name).op or {}).get("op")
    if busy:
        raise ValidationError("project", name, f"it is busy with {busy}; wait or cancel it")
    if (
        any([remove_program(settings, name, slot) for slot in SLOTS])
        and settings.supervisor_sock.exists()
    ):
        client = Supervisor(settings, timeout=60.0)
        try:
            client.apply()
        except SupervisorError:
            pass  # supervisord is down: the files are gone, so it will not start them
        finally:
            client.close()
    from controlplane.adapters.slotprocs import end

    for slot in SLOTS:  # also with supervisord down: what escaped its stop ends here
        end(settings, name, slot)
    link = Path(project.path)
    if link.is_symlink():
        link.unlink()
    shutil.rmtree(settings.project_dir(name), ignore_errors=True)
    store.remove_project(name)
    store.forget(name)
    return project
