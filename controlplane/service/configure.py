"""Configuration: projects added, changed and removed; variables, poll intervals, deploy keys.

These work on the store directly (safe across processes), so the CLI runs them also while
serve is down. Every value a person typed is validated first, and nothing is written when
any value is refused. Adding a project has two halves: `check_new` (pure validation and
the store's folders, no network) and `write_new` (the remote asked, then one write); the
facade runs the second half, with the fetch that numbers the commits, as an operation of
the executor. Removing a project (`remove_files`) also runs as an operation there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from controlplane.adapters import buildlogs, takeover
from controlplane.adapters.slotprocs import end
from controlplane.adapters.store import Store
from controlplane.adapters.supervisor.client import (
    ProgramOptions,
    Supervisor,
    remove_program,
)
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
from controlplane.domain.variables import Variable, build_only, mask
from controlplane.errors import (
    AlreadyExists,
    ControlPlaneError,
    NotFound,
    SupervisorError,
    ValidationError,
)
from controlplane.i18n import LANGS, Size, Text, as_text, ntr, tr, verbatim
from controlplane.settings import Settings

if TYPE_CHECKING:
    from controlplane.adapters.git import Access, Remote
    from controlplane.adapters.sshkeys import HostKey

logger = logging.getLogger(__name__)
T = TypeVar("T")

Clients = Callable[[float], Supervisor]  # a supervisord client with this timeout


def unreadable_folder(folder: Path, exc: OSError) -> ValidationError:
    """The refusal of a folder that cannot be looked at (permissions, a dead mount)."""
    reason = verbatim(exc.strerror or type(exc).__name__)
    return ValidationError(
        tr("folder"),
        str(folder),
        tr("it cannot be looked at ({reason}); give another", reason=reason),
    )


@dataclass(frozen=True)
class NewProject:
    """A project to add, every field checked; `branch` None: the remote's default one."""

    name: str
    repo: str
    auth: str | None
    path: str
    branch: str | None
    entry: str
    kind: str
    warnings: tuple[Text, ...]
    take_over: bool = False  # the folder's files move to a backup ($DATA/backups) at add


@dataclass(frozen=True)
class VariableChange:
    """Variables just set or removed, and when they apply: `build_only` (only the build
    reads them: the next build, never the app), else at the slot's next restart, which the
    admin may ask for now while the slot `running`."""

    name: str
    slot: str
    keys: tuple[str, ...]
    build_only: bool
    running: bool

    @property
    def restart_offered(self) -> bool:
        return self.running and not self.build_only


@dataclass(frozen=True)
class DeployKey:
    """What the admin sees of a deploy key: its public line and the pinned host keys."""

    name: str
    public: str
    made: bool
    hosts: list[HostKey]


def slot_options(
    store: Store, name: str, slot: str, base: ProgramOptions | None = None
) -> ProgramOptions:
    """A slot's program options: autostart as the store wants it (a slot whose code was
    put in place by hand, with no release recorded, starts)."""
    state = store.state(name)
    autostart = state.running(slot) if state.release(slot) is not None else True
    return replace(base or ProgramOptions(), autostart=autostart)


def launch_name(repo: str) -> str:
    """'https://github.com/o/My.Bot.git' → 'my-bot'."""
    base = repo.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git").lower()
    clean = "".join(c if c.isalnum() or c in "_-" else "-" for c in base).strip("-_")
    return validate_name(clean[:32] or "app")


class Configuration:
    """The configuration commands of both faces, on one store."""

    def __init__(self, settings: Settings, store: Store, clients: Clients) -> None:
        self.settings = settings
        self.store = store
        self.clients = clients

    # -- adding ----------------------------------------------------------------------------

    def folder_is_ours(self, folder: Path, name: str) -> bool:
        """A link into this project's releases, or an empty or missing folder."""
        if folder.is_symlink():
            target = Path(os.path.realpath(folder))
            own = os.path.realpath(self.settings.layout.project_dir(name))
            return target.is_relative_to(own)
        if not folder.exists():
            return True
        return folder.is_dir() and not any(folder.iterdir())

    def other_folders(self, name: str) -> dict[str, str]:
        """The folders of every other project (name → folder): a new one may not nest."""
        return {p.name: p.path for p in self.store.list_projects() if p.name != name}

    def check_folder_free(self, folder: Path, name: str, *, take_over: bool = False) -> None:
        """Refuse a folder that holds someone's files, unless `take_over` (they move to a
        backup when the project is added); other projects' folders are refused by
        validate_folder; a folder that cannot be looked at is refused, never an error."""
        try:
            is_file = folder.exists() and not folder.is_dir() and not folder.is_symlink()
            ours = self.folder_is_ours(folder, name)
        except OSError as exc:
            raise unreadable_folder(folder, exc) from None
        if is_file:
            raise ValidationError(tr("folder"), str(folder), tr("it is a file; give a folder path"))
        if not ours and not take_over:
            raise ValidationError(
                tr("folder"),
                str(folder),
                tr(
                    "it holds files the control plane did not put there; give a new or "
                    "empty folder (it becomes a link to the live release), or add with "
                    "--take-over to move them to a backup under {backups} first",
                    backups=str(self.settings.layout.backups_dir),
                ),
            )

    def check_new(
        self,
        *,
        name: str,
        repo: str,
        path: str | None = None,
        branch: str | None = "main",
        entry: str = "main.py",
        kind: str = "own",
        take_over: bool = False,
    ) -> NewProject:
        """Validate every field of a project to add (no network); nothing is written.
        A launch's path defaults to $DATA/apps/NAME."""
        name = validate_name(name)
        url = validate_repo_url(repo, allow_file=self.settings.allow_file_urls)
        folder = validate_folder(
            str(self.settings.layout.app_folder(name)) if path is None else path,
            data_dir=self.settings.data_dir,
            allowed_inside=(self.settings.layout.apps_dir,),
            others=self.other_folders(name),
        )
        clean_branch = None if branch is None else validate_branch(branch)
        entry = validate_entry(entry)
        self.check_absent(name)
        self.check_folder_free(folder, name, take_over=take_over)
        warnings = (as_text(url.warning),) if url.warning else ()
        taken = take_over and not self.folder_is_ours(folder, name)
        return NewProject(
            name, url.url, url.auth, str(folder), clean_branch, entry, kind, warnings, taken
        )

    def check_absent(self, name: str) -> None:
        try:
            self.store.get_project(name)
        except NotFound:
            return
        raise AlreadyExists(
            tr("project {name} exists already; `controlplane project show {name}`", name=name)
        )

    def write_new(self, new: NewProject, *, check_remote: bool = True) -> Project:
        """Ask the remote (reachable, the credentials or deploy key accepted, the branch
        there; a launch's branch found), then add the project in one write."""
        from controlplane.adapters import git  # see git_access

        remote = git.Remote(new.repo, new.auth)
        branch = new.branch or self.default_branch(remote)
        if check_remote:
            git.ls_remote(remote, branch, access=self.git_access(new.name))
        project = Project(
            name=new.name,
            repo=new.repo,
            path=new.path,
            branch=branch,
            entry=new.entry,
            kind=new.kind,
        )
        self.store.add_project(project, repo_auth=new.auth)
        return project

    def folder_to_take_over(self, folder: Path, name: str) -> takeover.Survey | None:
        """What a folder the project would take over holds (None: nothing of anyone's);
        refuses a file or a folder that cannot be looked at, as check_folder_free does."""
        self.check_folder_free(folder, name, take_over=True)
        if self.folder_is_ours(folder, name):
            return None
        try:
            return takeover.survey(folder)
        except OSError as exc:
            raise unreadable_folder(folder, exc) from None

    def take_over(self, new: NewProject) -> Text | None:
        """Move the files in a new project's folder to a dated backup under
        $DATA/backups (never deleted); what moved and where, or None when nothing had to."""
        folder = Path(new.path)
        if not new.take_over or self.folder_is_ours(folder, new.name):
            return None
        dest = takeover.backup_path(self.settings.layout.backups_dir, new.name)
        try:
            moved = takeover.move_to_backup(folder, dest)
        except OSError as exc:
            raise ControlPlaneError(
                tr(
                    "cannot move the files of {folder} to {backup}: {reason}; what moved "
                    "is in {backup}",
                    folder=str(folder),
                    backup=str(dest),
                    reason=verbatim(exc.strerror or type(exc).__name__),
                )
            ) from None
        logger.info("took over %s: %d files moved to %s", folder, moved.files, dest)
        return ntr(
            "moved {n} file ({size}) from {folder} to {backup}",
            "moved {n} files ({size}) from {folder} to {backup}",
            moved.files,
            size=Size(moved.size),
            folder=str(folder),
            backup=str(dest),
        )

    def undo_new(self, name: str) -> None:
        """Take a project that could not be fetched out again: nothing half-added."""
        self.store.remove_project(name)
        self.store.forget(name)
        shutil.rmtree(self.settings.layout.project_dir(name), ignore_errors=True)

    def default_branch(self, remote: Remote) -> str:
        """A third-party repository's branch: main, else master, else the only one."""
        from controlplane.adapters import git  # see git_access

        heads = git.ls_remote_heads(remote, access=git.Access(user=git.git_user(self.settings)))
        for name in ("main", "master"):
            if name in heads:
                return name
        if len(heads) == 1:
            return next(iter(heads))
        raise ValidationError(
            tr("repository"), remote.url, tr("it has no main or master branch; give --branch")
        )

    def git_access(self, name: str) -> Access:
        """git as its user, with the name's pinned hosts and deploy key (one may be made
        before the project is added)."""
        # git and the ssh keys (cryptography's ssh serialization) are imported where they
        # are used: every CLI command opens this module, and they would add a third to the
        # start-up of `controlplane status`
        from controlplane.adapters import git

        return git.access_for(self.settings, name, self.store.deploy_key(name))

    # -- deploy keys -----------------------------------------------------------------------

    def deploy_key(self, name: str, *, new: bool = False) -> DeployKey:
        """The name's deploy key, made on first use (or anew with `new`)."""
        from controlplane.adapters import sshkeys  # see git_access

        name = validate_name(name)
        private = None if new else self.store.deploy_key(name)
        made = private is None
        if private is None:
            private, _ = sshkeys.generate(f"controlplane-{name}")
            self.store.set_deploy_key(name, private)
        public = sshkeys.public_of(private, f"controlplane-{name}")
        hosts = sshkeys.pinned(self.settings.layout.known_hosts(name))
        return DeployKey(name, public, made, hosts)

    def remove_deploy_key(self, name: str) -> None:
        self.store.set_deploy_key(validate_name(name), None)

    def forget_hosts(self, name: str) -> None:
        """Forget the pinned host keys: the next ssh fetch pins (and reports) them again."""
        self.settings.layout.known_hosts(validate_name(name)).unlink(missing_ok=True)

    # -- settings ----------------------------------------------------------------------------

    def set_chat_lang(self, chat: int, lang: str | None) -> None:
        """The language a chat chose with 🌐 (None: back to the admin's Telegram language)."""
        if lang is not None and lang not in LANGS:
            raise ValidationError(
                "language", lang, tr("use one of: {langs}", langs=", ".join(LANGS))
            )
        self.store.set_chat_lang(chat, lang)

    def bot_records(self, table: str, change: Callable[[dict[str, Any]], T]) -> T:
        """The bot's own records ("confirmations", "cards"): `change` runs on the rows
        under the store's lock, its changes are written in one step (Store.change_bot_table)."""
        return self.store.change_bot_table(table, change)

    def set_setting(self, name: str, key: str, value: str) -> Project:
        """`project set NAME KEY VALUE` (`repo` changes the URL and its credentials)."""
        if key == "repo":
            url = validate_repo_url(value, allow_file=self.settings.allow_file_urls)
            self.store.get_project(validate_name(name))
            return self.store.set_repo(name, url.url, url.auth)
        field, clean = convert_setting(key, value)
        self.store.get_project(validate_name(name))
        return self.store.update_project(name, **{field: clean})

    def set_poll(self, name: str, interval: str) -> Project:
        """How often the branch is polled: off, 1m … 7d."""
        seconds = parse_interval(interval)
        self.store.get_project(validate_name(name))
        return self.store.update_project(name, poll=seconds)

    # -- variables ---------------------------------------------------------------------------

    def env_set(
        self, name: str, slot: str, assignments: list[str], *, secret: bool | None = None
    ) -> VariableChange:
        """Set KEY=VALUE pairs in one write, marked secret or plain when `secret` says (else
        a new one by default, one set anew keeps its mark). Nothing restarts: the change
        says what applies when (`restart_variables` applies them now)."""
        slot = validate_slot(slot)
        values = parse_assignments(assignments)
        if not values:
            raise ValidationError(tr("assignment"), "", tr("give at least one KEY=VALUE"))
        self.store.get_project(validate_name(name))
        marks = None if secret is None else dict.fromkeys(values, secret)
        self.store.set_env(name, slot, values, marks)
        return self.change_of(name, slot, sorted(values))

    def env_unset(self, name: str, slot: str, keys: list[str]) -> VariableChange:
        """Remove variables; all or nothing. Nothing restarts (see env_set)."""
        slot = validate_slot(slot)
        names = self._names(keys)
        self.store.get_project(validate_name(name))
        missing = self.store.unset_env(name, slot, names)
        if missing:
            raise NotFound(
                tr(
                    "{names} not set in {name} {slot}; nothing removed",
                    names=", ".join(missing),
                    name=name,
                    slot=slot,
                )
            )
        return self.change_of(name, slot, names)

    def env_mark(self, name: str, slot: str, keys: list[str], secret: bool | None) -> list[str]:
        """Mark variables secret or plain (None: as their name and value say); their values
        stay. Returns the names."""
        slot = validate_slot(slot)
        names = self._names(keys)
        self.store.get_project(validate_name(name))
        missing = self.store.mark_env(name, slot, names, secret)
        if missing:
            raise NotFound(
                tr(
                    "{names} not set in {name} {slot}; nothing marked",
                    names=", ".join(missing),
                    name=name,
                    slot=slot,
                )
            )
        return names

    def _names(self, keys: list[str]) -> list[str]:
        names = [validate_var_name(k) for k in keys]
        if not names:
            raise ValidationError(tr("variable name"), "", tr("give at least one name"))
        return names

    def env_variables(self, name: str, slot: str) -> list[Variable]:
        """A slot's own variables, each secret or plain, by name."""
        return self.store.variables(validate_name(name), validate_slot(slot))

    def env_list(self, name: str, slot: str, *, reveal: bool = False) -> list[tuple[str, str]]:
        """(name, shown value) pairs: plain values as they are, secrets masked unless
        `reveal`."""
        return [
            (v.name, mask(v.value) if v.secret and not reveal else v.value)
            for v in self.env_variables(name, slot)
        ]

    def change_of(self, name: str, slot: str, keys: list[str]) -> VariableChange:
        """What a change of `keys` in a slot's variables means: nothing for the app when
        only the build reads them; else they apply when the slot's app (re)starts, now if
        the admin restarts it (the slot runs), else when it is started."""
        only_build = all(build_only(k) for k in keys)
        state = self.store.state(name)
        code = self.settings.layout.slot_code(self.store.get_project(name), slot).exists()
        has_code = state.release(slot) is not None or code
        running = has_code and (state.running(slot) if state.release(slot) is not None else True)
        return VariableChange(name, slot, tuple(keys), only_build, running)

    # -- removing ----------------------------------------------------------------------------

    def remove_files(self, name: str) -> Project:
        """Remove a project: its programs stop and go, its prod link, releases, mirror, data
        folders, history and logs go; files we did not put in its folder stay. The facade runs
        this as an operation, so nothing else runs for the project meanwhile."""
        project = self.store.get_project(validate_name(name))
        removed = [remove_program(self.settings, name, slot) for slot in SLOTS]
        if any(removed) and self.settings.supervisor_sock.exists():
            # supervisord down: the files are gone, so it will not start them
            with self.clients(60.0) as client, contextlib.suppress(SupervisorError):
                client.apply()
        for slot in SLOTS:  # also with supervisord down: what escaped its stop ends here
            end(self.settings, name, slot)
        link = Path(project.path)
        if link.is_symlink():
            link.unlink()
        shutil.rmtree(self.settings.layout.project_dir(name), ignore_errors=True)
        buildlogs.remove(self.settings.layout, name)
        buildlogs.remove_slot_logs(self.settings.layout, name)
        self.store.remove_project(name)
        self.store.forget(name)
        return project
