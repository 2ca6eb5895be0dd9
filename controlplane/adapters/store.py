"""The store: TinyDB files under $DATA, written atomically under an inter-process lock.

The data is split so that a change rewrites only a small file: $DATA/store.json holds the
projects (with their encrypted variables) and the key check; $DATA/store.d/outbox.json the
events; $DATA/store.d/projects/NAME.json one project's releases and slot state;
$DATA/store.d/commits/NAME.json its numbered commits (adapters/commitfile.py). With 200
projects × 100 commits a whole-file store was 4 MB and every button press
that changed anything rewrote and fsynced all of it (60–130 ms); now a write is one file
of a few kB to a few hundred kB.

Every change is a transaction: take the lock file ($DATA/store.lock, flock, one lock for
all files), read the file, change it, write a temp file, fsync, keep the current file as
FILE.bak (the last good copy) and rename the temp file over it, then fsync the folder. A
kill at any moment leaves either the old or the new file. The CLI and `serve` both write
safely. A store written by an older version (everything in store.json) is split on open.

Secret values (both slots' variables, credentials of repository URLs) are stored as
Fernet tokens; nothing else in the data dir ever holds them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Set
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tinydb import Query, TinyDB
from tinydb.storages import Storage

from controlplane.adapters import commitfile
from controlplane.adapters.files import fsync_dir, os_reason, write_atomic
from controlplane.adapters.secrets import KeyRing, generate_key, write_key_file
from controlplane.domain.history import CommitRow, Release, SlotState, number_new
from controlplane.domain.models import SLOTS, Project, validate_slot
from controlplane.domain.variables import Variable, variable
from controlplane.errors import AlreadyExists, NotFound, StoreCorrupt, StoreError, StoreTooNew
from controlplane.i18n import Text, tr
from controlplane.settings import Settings

KEY_CHECK = "controlplane-key-check"
SCHEMA = 2
OUTBOX = "outbox"
CHATS = "chats"
BOT_TABLES = ("confirmations", "cards")  # the bot's own records (see change_bot_table)
PROJECT_TABLES = ("commits", "releases", "state")
# Project and commit files kept parsed in memory, the most recently used: all of them
# were about 30 MB of serve's memory with 1,000 projects; one not kept is read again
# (a few kB, well under a millisecond).
KEEP_PARSED = 64
T = TypeVar("T")


class AtomicJSONStorage(Storage):
    """TinyDB storage: whole-file JSON, atomic replace, the parsed file cached per inode.

    read() hands out the cached object itself (TinyDB copies documents before giving them
    to callers); a transaction that fails drops the cache, since TinyDB may have changed
    the object in place before the write that never happened.
    """

    def __init__(self, path: str, *, fallback: bool = False) -> None:
        self.path = Path(path)
        self.backup = self.path.with_name(self.path.name + ".bak")
        self._cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None
        self.fallback = fallback  # a damaged file is read from its backup, never written
        self.used_backup = False

    def read(self) -> dict[str, Any] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._cache is not None and self._cache[0] == stamp:
            return self._cache[1]
        try:
            with open(self.path, "rb") as fh:  # the stamp of the very file that is parsed
                st = os.fstat(fh.fileno())
                raw = fh.read()
        except FileNotFoundError:
            return None
        try:
            data = self._parse(raw)
        except StoreCorrupt:
            if not self.fallback:
                raise
            return self._read_backup()
        self._cache = ((st.st_ino, st.st_mtime_ns, st.st_size), data)
        return data

    def _read_backup(self) -> dict[str, Any]:
        """The last good copy of a damaged file (fallback mode): the file's own error
        when the copy is missing or damaged too."""
        try:
            raw = self.backup.read_bytes()
            data = json.loads(raw)
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict):
            message = tr(
                "{path} and its backup copy {backup} are both damaged; "
                "run `controlplane store check`",
                path=str(self.path),
                backup=str(self.backup),
            )
            raise StoreCorrupt(message, path=self.path, backup=None)
        self.used_backup = True
        return data

    def _parse(self, raw: bytes) -> dict[str, Any]:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise self._corrupt(str(exc)) from None
        if not isinstance(data, dict):
            raise self._corrupt(tr("top level is not an object"))
        return data

    def _corrupt(self, problem: Text | str) -> StoreCorrupt:
        """The file does not parse: say so, and where the last good copy is."""
        backup = self.backup if self.backup.exists() else None
        if backup is not None:
            message = tr(
                "{path} is damaged ({problem}); the last good copy is {backup}: stop "
                "`controlplane serve`, then run `controlplane store restore`",
                path=str(self.path),
                problem=problem,
                backup=str(backup),
            )
        else:
            message = tr(
                "{path} is damaged ({problem}); there is no backup copy beside it",
                path=str(self.path),
                problem=problem,
            )
        return StoreCorrupt(message, path=self.path, backup=backup)

    def write(self, data: dict[str, Any]) -> None:
        if self.fallback:
            raise StoreError(tr("{path} is open read-only", path=str(self.path)))
        self._cache = None
        raw = json.dumps(data, separators=(",", ":")).encode()  # unsorted: 40% less time
        try:
            write_atomic(self.path, raw, 0o600, backup=self.backup)
            st = os.stat(self.path)
            self._cache = ((st.st_ino, st.st_mtime_ns, st.st_size), data)
        except OSError as exc:
            raise StoreError(
                tr(
                    "cannot write {path}: {reason}",
                    path=str(self.path),
                    reason=os_reason(exc),
                )
            ) from exc

    @property
    def stamp(self) -> tuple[int, int, int] | None:
        """(inode, mtime, size) of the file the cached object was read from or written to."""
        return self._cache[0] if self._cache is not None else None

    def invalidate(self) -> None:
        self._cache = None

    def remove(self) -> None:
        """Delete the file and its backup (a removed project's history)."""
        self._cache = None
        for path in (self.path, self.backup):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def close(self) -> None:
        pass


@dataclass
class ProjectIndex:
    """store.json's projects as parsed once: `data` and `stamp` say which read of the
    file it was built from (TinyDB changes the parsed object in place before a write,
    so both are checked)."""

    data: dict[str, Any]
    stamp: tuple[int, int, int] | None
    docs: dict[str, dict[str, Any]]
    projects: list[Project] | None = None


class Store:
    """Projects, their settings and their encrypted variables."""

    def __init__(self, settings: Settings, keyring: KeyRing, *, fallback: bool = False) -> None:
        self.settings = settings
        self.keyring = keyring
        self.path = settings.store_path
        self.fallback = fallback
        self._storage = AtomicJSONStorage(str(self.path), fallback=fallback)
        self._shards_dir = settings.layout.store_shards
        # the files kept parsed, the most recently used last (see KEEP_PARSED)
        self._shards: OrderedDict[str, AtomicJSONStorage] = OrderedDict()
        self._dropped_backup = False  # a file dropped from _shards had used its backup
        self._lock_path = settings.layout.store_lock
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._lock_fd: int | None = None
        self._commit_rows: OrderedDict[str, tuple[dict[str, Any], list[CommitRow]]] = OrderedDict()
        self._index: ProjectIndex | None = None
        self._made: set[Path] = set()  # shard folders made (or found) already

    @classmethod
    def open(cls, settings: Settings, *, fallback: bool = False) -> Store:
        """Make the data dir (0711: apps may pass through, not list), load the key, check it.

        With `fallback` (run-slot) the store is read-only and a damaged file is read from
        its last good copy (FILE.bak), so an app can start while serve is in safe mode;
        `used_backup` then says so."""
        data = settings.data_dir
        data.mkdir(parents=True, exist_ok=True)
        if os.stat(data).st_uid == os.getuid():
            os.chmod(data, 0o711)  # noqa: S103 - apps pass through to their own folders
        store = cls(settings, KeyRing.load(settings), fallback=fallback)
        store._check_key()
        store._split_old_store()
        return store

    @property
    def used_backup(self) -> bool:
        """Whether a damaged file was read from its last good copy (fallback mode)."""
        shards = (self._storage, *self._shards.values())
        return self._dropped_backup or any(s.used_backup for s in shards)

    # -- transactions -------------------------------------------------------------------

    def _shard(self, shard: str | None) -> AtomicJSONStorage:
        """The storage of one file: None is store.json, "outbox", or "project:NAME"."""
        if shard is None:
            return self._storage
        with self._thread_lock:
            storage = self._shards.get(shard)
            if storage is not None:
                self._shards.move_to_end(shard)
                return storage
            storage = self._new_shard(shard)
            self._shards[shard] = storage
            while len(self._shards) > KEEP_PARSED:
                self._dropped_backup |= self._shards.popitem(last=False)[1].used_backup
            return storage

    def _new_shard(self, shard: str) -> AtomicJSONStorage:
        """The storage of one file, its folder made the first time."""
        kind, _, name = shard.partition(":")
        if kind == OUTBOX and not name:
            path = self.settings.layout.outbox_store
        elif kind == "project" and name and "/" not in name and not name.startswith("."):
            path = self.settings.layout.project_store(name)
        elif kind == "commits" and name and "/" not in name and not name.startswith("."):
            path = self.settings.layout.commit_store(name)
        else:
            raise StoreError(tr("no store file for {shard}", shard=repr(shard)))
        if path.parent not in self._made:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._made.add(path.parent)
        return AtomicJSONStorage(str(path), fallback=self.fallback)

    @contextlib.contextmanager
    def transaction(self, shard: str | None = None) -> Iterator[TinyDB]:
        """Hold the inter-process lock; yield a TinyDB of one file (store.json, or the
        `shard` named) whose reads see the latest file."""
        storage = self._shard(shard)
        with self.locked():
            try:
                yield TinyDB(storage=lambda: storage)
            except BaseException:
                storage.invalidate()
                raise

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the inter-process lock (store.lock; re-entrant within this Store): what
        every write and read of the store's files, the outbox's log too, happens under."""
        with self._thread_lock:
            if self._depth == 0:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._lock_fd = fd
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._lock_fd is not None:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                    os.close(self._lock_fd)
                    self._lock_fd = None

    def table(self, db: TinyDB, name: str) -> Any:
        return db.table(name, cache_size=0)

    @contextlib.contextmanager
    def rows(self, shard: str | None, table: str, *, write: bool) -> Iterator[dict[str, Any]]:
        """One table's raw rows (document id → document) under the lock, for hot paths
        that TinyDB's per-call copies and queries make slow; with `write`, the changed
        rows are written back in one atomic write. Without it, do not change them."""
        with self.transaction(shard):
            storage = self._shard(shard)
            data = storage.read() or {}
            found = data.get(table)
            if found is None:
                found = {}
                if write:
                    data[table] = found
            yield found
            if write:
                storage.write(data)

    def _project_db(self, name: str) -> contextlib.AbstractContextManager[TinyDB]:
        return self.transaction(f"project:{name}")

    def _split_old_store(self) -> None:
        """Move commits, releases, state and the outbox out of a store.json written by an
        older version: the new files first, then store.json without them, so a kill in
        between only repeats the copy."""
        with self.transaction() as db:
            old = [t for t in (*PROJECT_TABLES, OUTBOX) if t in db.tables()]
            if not old:
                return
            by_project: dict[str, dict[str, list[dict[str, Any]]]] = {}
            for table_name in PROJECT_TABLES:
                for row in self.table(db, table_name).all():
                    tables = by_project.setdefault(str(row.get("project")), {})
                    tables.setdefault(table_name, []).append(dict(row))
            for name, tables in by_project.items():
                with self._project_db(name) as pdb:
                    for table_name in PROJECT_TABLES:
                        pdb.drop_table(table_name)
                        self.table(pdb, table_name).insert_multiple(tables.get(table_name, []))
            if OUTBOX in old:
                with self.transaction(OUTBOX) as odb:
                    odb.drop_table(OUTBOX)
                    self.table(odb, OUTBOX).insert_multiple(
                        dict(r) for r in self.table(db, OUTBOX).all()
                    )
            for table_name in old:
                db.drop_table(table_name)

    def old_outbox(self) -> list[dict[str, Any]]:
        """The rows (events with their `acked` lists) of the outbox table that older
        versions kept in store.d/outbox.json, by seq; the outbox is now a log of its own
        (service/outbox.py), which takes them over once and then drops the file."""
        if not self.settings.layout.outbox_store.exists():
            return []
        with self.rows(OUTBOX, OUTBOX, write=False) as rows:
            return sorted((dict(row) for row in rows.values()), key=lambda row: int(row["seq"]))

    def drop_old_outbox(self) -> None:
        with self.locked():
            self._shard(OUTBOX).remove()

    def _check_key(self) -> None:
        with self.transaction() as db:
            meta = self.table(db, "meta")
            row = meta.get(Query().name == "key_check")
            if row is None:
                meta.insert(
                    {
                        "name": "key_check",
                        "token": self.keyring.encrypt(KEY_CHECK),
                        "schema": SCHEMA,
                    }
                )
            else:
                schema = int(row.get("schema") or 0)
                if schema > SCHEMA:
                    raise StoreTooNew(
                        tr(
                            "{path} was written by a newer controlplane (store schema "
                            "{schema}; this version reads {mine} and older)",
                            path=str(self.path),
                            schema=schema,
                            mine=SCHEMA,
                        ),
                        schema=schema,
                    )
                self.keyring.decrypt(row["token"])

    # -- projects -----------------------------------------------------------------------

    def add_project(self, project: Project, repo_auth: str | None = None) -> None:
        with self.transaction() as db:
            projects = self.table(db, "projects")
            if projects.contains(Query().name == project.name):
                raise AlreadyExists(tr("project {name} exists already", name=project.name))
            doc = project.to_dict()
            doc["repo_auth"] = self.keyring.encrypt(repo_auth) if repo_auth else None
            doc["env"] = {slot: {} for slot in SLOTS}
            projects.insert(doc)

    def _projects(self) -> ProjectIndex:
        """store.json's projects by name, and as sorted Projects, built once per change of
        the file (held under the lock): with 1,000 projects, TinyDB's query over every
        document and a Project for each cost tens of milliseconds per lookup."""
        data = self._storage.read() or {}
        index = self._index
        if index is None or index.data is not data or index.stamp != self._storage.stamp:
            table = data.get("projects") or {}
            docs = {str(doc.get("name")): doc for doc in table.values()}
            index = ProjectIndex(data, self._storage.stamp, docs)
            self._index = index
        return index

    def _doc(self, db: TinyDB, name: str) -> dict[str, Any]:
        """A project's document in store.json (a shallow copy, as TinyDB's `get` gave)."""
        doc = self._projects().docs.get(name)
        if doc is None:
            raise NotFound(
                tr("no project named {name}; `controlplane project list` shows them", name=name)
            )
        return dict(doc)

    def get_project(self, name: str) -> Project:
        with self.transaction() as db:
            return Project.from_dict(self._doc(db, name))

    def list_projects(self) -> list[Project]:
        with self.transaction():
            index = self._projects()
            if index.projects is None:
                found = (Project.from_dict(dict(d)) for d in index.docs.values())
                index.projects = sorted(found, key=lambda p: p.name)
            return list(index.projects)

    def update_project(self, name: str, **changes: Any) -> Project:
        with self.transaction() as db:
            doc = self._doc(db, name)
            project = Project.from_dict(doc).with_(**changes)
            self.table(db, "projects").update(project.to_dict(), Query().name == name)
            return project

    def remove_project(self, name: str) -> Project:
        with self.transaction() as db:
            project = Project.from_dict(self._doc(db, name))
            self.table(db, "projects").remove(Query().name == name)
            return project

    def set_repo(self, name: str, url: str, auth: str | None) -> Project:
        """A new repository URL and its credentials (encrypted), in one write."""
        with self.transaction() as db:
            self._doc(db, name)
            token = self.keyring.encrypt(auth) if auth else None
            self.table(db, "projects").update(
                {"repo": url, "repo_auth": token}, Query().name == name
            )
            return Project.from_dict(self._doc(db, name))

    def repo_auth(self, name: str) -> str | None:
        with self.transaction() as db:
            token = self._doc(db, name).get("repo_auth")
        return self.keyring.decrypt(token) if token else None

    def set_deploy_key(self, name: str, private_key: str | None) -> None:
        """A project name's ssh deploy key (OpenSSH private key text), encrypted; None drops
        it. Kept apart from the project, so a key can be made before the project is added
        (adding a private repository checks that the key is accepted)."""
        with self.transaction() as db:
            table = self.table(db, "deploy_keys")
            table.remove(Query().name == name)
            if private_key:
                table.insert({"name": name, "deploy_key": self.keyring.encrypt(private_key)})

    def deploy_key(self, name: str) -> str | None:
        with self.transaction() as db:
            docs = self.table(db, "deploy_keys").search(Query().name == name)
        return self.keyring.decrypt(docs[0]["deploy_key"]) if docs else None

    # -- variables ----------------------------------------------------------------------

    def _update_env(self, name: str, slot: str, change: Any) -> None:
        """`change(values, marks)` on a slot's tokens and marks, in one write; the slots
        whose effective values changed get a new revision (a mark changes none)."""
        validate_slot(slot)
        with self.transaction() as db:
            doc = self._doc(db, name)
            old_env = dict(doc.get("env") or {})
            old_marks = dict(doc.get("env_marks") or {})
            env, marks = dict(old_env), dict(old_marks)
            slot_env = dict(env.get(slot) or {})
            slot_marks = dict(marks.get(slot) or {})
            change(slot_env, slot_marks)
            slot_marks = {k: m for k, m in slot_marks.items() if k in slot_env}
            if slot_env == (old_env.get(slot) or {}) and slot_marks == (old_marks.get(slot) or {}):
                return
            env[slot], marks[slot] = slot_env, slot_marks
            update: dict[str, Any] = {"env": env, "env_marks": marks}
            for s in SLOTS:
                if self._effective(old_env, s) != self._effective(env, s):
                    update[f"env_rev_{s}"] = int(doc.get(f"env_rev_{s}", 0)) + 1
            self.table(db, "projects").update(update, Query().name == name)

    def _effective(self, tokens: dict[str, dict[str, str]], slot: str) -> dict[str, str]:
        """A slot's decrypted view of `tokens`: prod, with test laid over it for test."""
        layers = ("prod", "test") if slot == "test" else ("prod",)
        merged: dict[str, str] = {}
        for layer in layers:
            merged.update(
                {k: self.keyring.decrypt(v) for k, v in (tokens.get(layer) or {}).items()}
            )
        return merged

    def set_env(
        self, name: str, slot: str, values: dict[str, str], marks: dict[str, bool] | None = None
    ) -> None:
        """Set values; `marks` (name → secret?) marks them, else a value set anew keeps the
        mark it had."""
        tokens = {k: self.keyring.encrypt(v) for k, v in values.items()}
        chosen = {k: "secret" if secret else "plain" for k, secret in (marks or {}).items()}

        def change(env: dict[str, str], kept: dict[str, str]) -> None:
            env.update(tokens)
            kept.update(chosen)

        self._update_env(name, slot, change)

    def mark_env(self, name: str, slot: str, keys: list[str], secret: bool | None) -> list[str]:
        """Mark variables secret or plain (None: back to the default by name and value);
        returns the ones that are not set (nothing marked then)."""
        missing: list[str] = []

        def change(env: dict[str, str], marks: dict[str, str]) -> None:
            missing.extend(k for k in keys if k not in env)
            for k in [] if missing else keys:
                if secret is None:
                    marks.pop(k, None)
                else:
                    marks[k] = "secret" if secret else "plain"

        self._update_env(name, slot, change)
        return missing

    def unset_env(self, name: str, slot: str, keys: list[str]) -> list[str]:
        """Remove `keys` (and their marks); returns the ones that were not set (nothing
        removed then)."""
        missing: list[str] = []

        def change(env: dict[str, str], marks: dict[str, str]) -> None:
            missing.extend(k for k in keys if k not in env)
            if not missing:
                for k in keys:
                    del env[k]

        self._update_env(name, slot, change)
        return missing

    def env(self, name: str, slot: str) -> dict[str, str]:
        """One slot's own variables, decrypted."""
        return {v.name: v.value for v in self.variables(name, slot)}

    def variables(self, name: str, slot: str) -> list[Variable]:
        """One slot's own variables, decrypted, each secret or plain (an unmarked one, as
        an older store holds them, by its name and value), by name."""
        validate_slot(slot)
        with self.transaction() as db:
            doc = self._doc(db, name)
        tokens = (doc.get("env") or {}).get(slot) or {}
        marks = (doc.get("env_marks") or {}).get(slot) or {}
        return [
            variable(k, self.keyring.decrypt(v), marks.get(k)) for k, v in sorted(tokens.items())
        ]

    def slot_env(self, name: str, slot: str) -> dict[str, str]:
        """What a slot's app sees: prod's variables, with test's laid over them for test."""
        validate_slot(slot)
        with self.transaction() as db:
            tokens = self._doc(db, name).get("env") or {}
        return self._effective(tokens, slot)

    def slot_secrets(self, name: str, slot: str) -> list[str]:
        """The secret values among what a slot's app sees (prod's, test's over them), for a
        redactor of that slot's output; plain values stay readable."""
        layers = ("prod", "test") if slot == "test" else ("prod",)
        seen = {v.name: v for layer in layers for v in self.variables(name, layer)}
        return [v.value for v in seen.values() if v.secret]

    def all_secret_values(self) -> list[str]:
        """Every secret value in the store (for the redactor): the variables that are
        secrets (not the plain ones), repository credentials and deploy keys."""
        values: list[str] = []
        with self.transaction() as db:
            docs = self.table(db, "projects").all() + self.table(db, "deploy_keys").all()
        for doc in docs:
            marks = doc.get("env_marks") or {}
            for slot, slot_env in (doc.get("env") or {}).items():
                for k, token in slot_env.items():
                    var = variable(k, self.keyring.decrypt(token), (marks.get(slot) or {}).get(k))
                    if var.secret:
                        values.append(var.value)
            if doc.get("repo_auth"):
                auth = self.keyring.decrypt(doc["repo_auth"])
                values.append(auth)
                values.extend(p for p in auth.split(":") if p)
            if doc.get("deploy_key"):
                values.append(self.keyring.decrypt(doc["deploy_key"]))
        return values

    # -- commits, releases, slot state --------------------------------------------------

    def commits(self, name: str) -> list[CommitRow]:
        """Numbered commits of a project, by number (from store.d/commits/NAME.json; a
        project numbered by an older version has them in its project file until its next
        new commit moves them). The rows are parsed once per change of the file."""
        with self.locked():
            data = self._shard(f"commits:{name}").read()
            cached = self._commit_rows.get(name)
            if data is not None and cached is not None and cached[0] is data:
                self._commit_rows.move_to_end(name)
                return list(cached[1])
            commits = commitfile.decode(data)
            if data is None or commits is None:
                with self._project_db(name) as db:
                    rows = self.table(db, "commits").all()
                return sorted((CommitRow.from_dict(r) for r in rows), key=lambda c: c.n)
            self._commit_rows[name] = (data, commits)
            while len(self._commit_rows) > KEEP_PARSED:
                self._commit_rows.popitem(last=False)
            return list(commits)

    def find_commits(self, name: str, numbers: Set[int], shas: Set[str]) -> list[CommitRow]:
        """The numbered commits with one of `numbers` or `shas`, by number: what a status
        shows, without making a CommitRow of every row of a cold file."""
        with self.locked():
            data = self._shard(f"commits:{name}").read()
            cached = self._commit_rows.get(name)
            if data is not None and (cached is None or cached[0] is not data):
                return commitfile.find(data, numbers, shas)
            return [c for c in self.commits(name) if c.n in numbers or c.sha in shas]

    def add_commits(self, name: str, seen: list[CommitRow]) -> list[CommitRow]:
        """Number the commits of `seen` (oldest first) not numbered yet; returns them.
        Rows an older version kept in the project file move to the commit file first."""
        with self.transaction() as db:
            self._doc(db, name)
            known = self.commits(name)
            fresh = number_new(known, seen)
            if fresh:
                self._shard(f"commits:{name}").write(commitfile.encode([*known, *fresh]))
                with self._project_db(name) as pdb:
                    if "commits" in pdb.tables():
                        pdb.drop_table("commits")
            return fresh

    def release(self, name: str, n: int) -> Release | None:
        with self._project_db(name) as db:
            row = self.table(db, "releases").get(Query().n == n)
        return Release.from_dict(dict(row)) if row else None

    def releases(self, name: str) -> list[Release]:
        with self._project_db(name) as db:
            rows = self.table(db, "releases").all()
        return sorted((Release.from_dict(dict(r)) for r in rows), key=lambda r: r.n)

    def put_release(self, name: str, release: Release) -> None:
        with self._project_db(name) as db:
            self.table(db, "releases").upsert(
                {**release.to_dict(), "project": name}, Query().n == release.n
            )

    def state(self, name: str) -> SlotState:
        with self._project_db(name) as db:
            rows = self.table(db, "state").all()
            row = rows[0] if rows else None
        return SlotState.from_dict(dict(row)) if row else SlotState()

    def update_state(self, name: str, **changes: Any) -> SlotState:
        with self._project_db(name) as db:
            state = self.state(name).with_(**changes)
            self.table(db, "state").upsert(
                {**state.to_dict(), "project": name}, Query().project == name
            )
            return state

    def forget(self, name: str) -> None:
        """Drop a removed project's commits, releases and state (its deploy key stays, so
        the name can be added again with the key the repository knows; see set_deploy_key)."""
        with self.transaction():
            self._shard(f"project:{name}").remove()
            self._shard(f"commits:{name}").remove()
            self._commit_rows.pop(name, None)

    # -- chats ---------------------------------------------------------------------------

    def chat_langs(self) -> dict[int, str]:
        """The language each admin chat chose with 🌐 (chats that chose none are absent)."""
        with self.rows(None, CHATS, write=False) as rows:
            return {int(row["chat"]): str(row["lang"]) for row in rows.values() if row.get("lang")}

    def set_chat_lang(self, chat: int, lang: str | None) -> None:
        """Remember (or, with None, forget) the language a chat chose."""
        with self.rows(None, CHATS, write=True) as rows:
            for key in [k for k, row in rows.items() if int(row["chat"]) == chat]:
                del rows[key]
            if lang:
                doc_id = max((int(k) for k in rows), default=0) + 1
                rows[str(doc_id)] = {"chat": chat, "lang": lang}

    # -- the bot's records: confirmations and live cards -----------------------------------

    def change_bot_table(self, table: str, change: Callable[[dict[str, Any]], T]) -> T:
        """Run `change` on one of the bot's tables (key → plain row) under the store's lock
        and write the rows back: a read, a check and a mark in one step, across threads
        and processes. The rows are the bot's to shape (bot/confirm.py, bot/progress.py)."""
        if table not in BOT_TABLES:
            raise ValueError(f"not a table of the bot: {table!r}")
        with self.rows(None, table, write=True) as rows:
            return change(rows)

    # -- keys ---------------------------------------------------------------------------

    def rotate_key(self) -> int:
        """Re-encrypt every token under a new key; returns how many tokens were rotated.

        With a key file: a new key is put first in the file, everything is re-encrypted in
        one atomic write, then the old keys are dropped. With CONTROLPLANE_KEY: everything
        is re-encrypted under the first key given there.
        """
        if self.keyring.from_file:
            new = [generate_key(), *self.keyring.keys]
            write_key_file(self.settings.key_path, new)
            self.keyring = KeyRing(new, self.keyring.origin)
        count = 0
        with self.transaction() as db:
            for table_name in db.tables():
                table = self.table(db, table_name)
                for doc in table.all():
                    changed, n = _rotate_doc(dict(doc), self.keyring)
                    if n:
                        table.update(changed, doc_ids=[doc.doc_id])
                        count += n
        if self.keyring.from_file:
            write_key_file(self.settings.key_path, self.keyring.keys[:1])
            self.keyring = KeyRing(self.keyring.keys[:1], self.keyring.origin)
        return count

    def restore_backup(self) -> Path:
        """Put the last good copy back in place of each damaged store file (store.json
        only when it is damaged or gone: a file that reads keeps its last write)."""
        shards = self._restore_damaged_shards()
        backup = self._storage.backup
        if self._readable(self.path):
            if shards:
                return shards[0]
            raise StoreError(tr("no store file is damaged: there is nothing to restore"))
        if not backup.exists():
            raise StoreError(tr("there is no backup copy at {path}", path=str(backup)))
        self._storage._parse(backup.read_bytes())
        with self.transaction():
            damaged = self.path.with_name(self.path.name + ".damaged")
            if self.path.exists():
                os.replace(self.path, damaged)
            os.link(backup, self.path.with_name(".restore.tmp"))
            os.replace(self.path.with_name(".restore.tmp"), self.path)
            fsync_dir(self.path.parent)
        return backup

    def _readable(self, path: Path) -> bool:
        try:
            AtomicJSONStorage(str(path))._parse(path.read_bytes())
        except (OSError, StoreCorrupt):
            return False
        return True

    def _restore_damaged_shards(self) -> list[Path]:
        """The outbox and project files that no longer parse get their last good copy;
        returns the copies put back."""
        restored = []
        with self.transaction():
            for path in sorted(self._shards_dir.rglob("*.json")):
                storage = AtomicJSONStorage(str(path))
                if not self._readable(path) and self._readable(storage.backup):
                    os.replace(path, path.with_name(path.name + ".damaged"))
                    os.link(storage.backup, path)
                    restored.append(storage.backup)
            self._shards.clear()
        return restored


def _rotate_doc(doc: dict[str, Any], keyring: KeyRing) -> tuple[dict[str, Any], int]:
    """Rotate every Fernet token a document holds (repo_auth, deploy_key, env, key_check)."""
    count = 0
    for field in ("repo_auth", "deploy_key"):
        if doc.get(field):
            doc[field] = keyring.rotate(doc[field])
            count += 1
    if doc.get("name") == "key_check" and "token" in doc:
        doc["token"] = keyring.rotate(doc["token"])
        count += 1
    if isinstance(doc.get("env"), dict):
        env = {}
        for slot, values in doc["env"].items():
            env[slot] = {k: keyring.rotate(v) for k, v in values.items()}
            count += len(values)
        doc["env"] = env
    return doc, count
