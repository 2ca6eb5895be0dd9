"""Why the store cannot be opened, and the exact way out: `controlplane store check`, the
CLI's errors and serve's safe mode (service/safemode.py) all say it from here.

`diagnose` reads every store file ($DATA/store.json and the files under store.d), the
store's schema and its key, and writes nothing: no key is made, no file is split or
repaired. Each problem names what is wrong and the one way out (`controlplane store
restore`, the key put back in $DATA/secret.key or CONTROLPLANE_KEY, a newer version run
again), always ending with `controlplane store check` to see that it is fixed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import InvalidToken, MultiFernet

from controlplane.adapters.files import os_reason
from controlplane.adapters.secrets import parse_keys, read_key_file
from controlplane.adapters.store import SCHEMA
from controlplane.errors import (
    ControlPlaneError,
    KeyMissing,
    KeyringError,
    StoreCorrupt,
    StoreTooNew,
)
from controlplane.i18n import Text, tr
from controlplane.settings import Settings

CHECK = "`controlplane store check`"


@dataclass(frozen=True)
class Problem:
    """One reason the store cannot be opened: `kind` (damaged, missing, unreadable,
    too_new, key_missing, key_malformed, key_wrong, other), what is wrong, the way out."""

    kind: str
    what: Text
    way_out: Text

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "what": self.what.to_dict(), "way_out": self.way_out.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Problem:
        return cls(str(data["kind"]), Text.from_dict(data["what"]), Text.from_dict(data["way_out"]))


@dataclass(frozen=True)
class Checked:
    """What `store check` found: the problems (none: the store opens), the files read,
    the schema and where the key came from (empty while there is no store yet)."""

    problems: list[Problem]
    files: int = 0
    schema: int = 0
    origin: str = ""


def store_files(settings: Settings) -> list[Path]:
    """store.json and every JSON file under store.d (the outbox's log is not JSON: a torn
    last line of it is dropped when read, never a reason to refuse the store)."""
    shards = settings.layout.store_shards
    found = sorted(shards.rglob("*.json")) if shards.is_dir() else []
    return [settings.store_path, *found]


def check(settings: Settings) -> Checked:
    """Every store file, the schema and the key, read and never written."""
    problems: list[Problem] = []
    main: dict[str, Any] | None = None
    files = 0
    for path in store_files(settings):
        data, problem = _read(path)
        if problem is not None:
            problems.append(problem)
        elif data is not None:
            files += 1
            if path == settings.store_path:
                main = data
    if main is None:
        return Checked(problems)  # no store yet (or store.json itself is the problem)
    row = _key_check(main)
    schema = int(row.get("schema") or 0) if row else 0
    if schema > SCHEMA:
        problems.append(too_new(settings.store_path, schema))
        return Checked(problems, files, schema)
    origin, key_problem = _key(settings, row)
    if key_problem is not None:
        problems.append(key_problem)
    return Checked(problems, files, schema, origin)


def diagnose(settings: Settings) -> list[Problem]:
    """The reasons the store cannot be opened now (empty: it opens, or there is none yet)."""
    return check(settings).problems


def _read(path: Path) -> tuple[dict[str, Any] | None, Problem | None]:
    """A file's top object, or why it cannot be read (None, None: no such file, fine)."""
    backup = path.with_name(path.name + ".bak")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if _parses(backup):
            return None, damaged(path, tr("the file is missing"), backup)
        return None, None
    except OSError as exc:
        return None, unreadable(path, os_reason(exc))
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return None, damaged(path, str(exc), backup if _parses(backup) else None)
    if not isinstance(data, dict):
        reason = tr("top level is not an object")
        return None, damaged(path, reason, backup if _parses(backup) else None)
    return data, None


def _parses(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_bytes()), dict)
    except (OSError, ValueError):
        return False


def _key_check(data: dict[str, Any]) -> dict[str, Any] | None:
    rows = (data.get("meta") or {}).values() if isinstance(data.get("meta"), dict) else []
    for row in rows:
        if isinstance(row, dict) and row.get("name") == "key_check":
            return row
    return None


def _key(settings: Settings, row: dict[str, Any] | None) -> tuple[str, Problem | None]:
    """Where the key comes from, and whether it opens the store (its key check)."""
    if settings.keys:
        origin, keys = "CONTROLPLANE_KEY", list(settings.keys)
    else:
        origin = str(settings.key_path)
        try:
            keys = read_key_file(settings.key_path)
        except FileNotFoundError:
            return origin, key_missing(settings)
        except OSError as exc:
            return origin, unreadable(settings.key_path, os_reason(exc))
    try:
        fernet = MultiFernet(parse_keys(keys, origin))
    except KeyringError as exc:
        return origin, Problem("key_malformed", exc.text, key_way_out(settings))
    if row is not None:
        try:
            fernet.decrypt(str(row.get("token", "")).encode())
        except InvalidToken:
            what = tr("the key in {origin} does not open the store", origin=origin)
            return origin, Problem("key_wrong", what, key_way_out(settings))
    return origin, None


# -- the problems and their ways out ---------------------------------------------------------


def damaged(path: Path, reason: Text | str, backup: Path | None) -> Problem:
    what = tr("{path} is damaged ({problem})", path=str(path), problem=reason)
    if backup is not None:
        way_out = tr(
            "run `controlplane store restore`: it puts the last good copy {backup} back "
            "and keeps the damaged file as {damaged}; then run {check}",
            backup=str(backup),
            damaged=str(path.with_name(path.name + ".damaged")),
            check=CHECK,
        )
    else:
        way_out = tr(
            "there is no good copy beside it: put {path} back from your backup of the data "
            "dir, then run {check}",
            path=str(path),
            check=CHECK,
        )
    return Problem("damaged", what, way_out)


def unreadable(path: Path, reason: Text | str) -> Problem:
    return Problem(
        "unreadable",
        tr("cannot read {path}: {reason}", path=str(path), reason=reason),
        tr(
            "let the control plane's user read it (see its owner and mode with `ls -l "
            "{path}`), then run {check}",
            path=str(path),
            check=CHECK,
        ),
    )


def too_new(path: Path, schema: int) -> Problem:
    return Problem(
        "too_new",
        tr(
            "{path} was written by a newer controlplane (store schema {schema}; this "
            "version reads {mine} and older)",
            path=str(path),
            schema=schema,
            mine=SCHEMA,
        ),
        tr(
            "run the newer controlplane again (the image that wrote the store), or put back "
            "a backup of the data dir made by this version; then run {check}",
            check=CHECK,
        ),
    )


def key_missing(settings: Settings) -> Problem:
    return Problem(
        "key_missing",
        tr(
            "the store's key is missing: neither {path} nor CONTROLPLANE_KEY",
            path=str(settings.key_path),
        ),
        tr(
            "put the store's key back in {path} (from your backup, mode 0600) or set "
            "CONTROLPLANE_KEY to it, then run {check}; a new key cannot open this store",
            path=str(settings.key_path),
            check=CHECK,
        ),
    )


def key_way_out(settings: Settings) -> Text:
    return tr(
        "put back the key the store was written with, in {path} or CONTROLPLANE_KEY, then "
        "run {check}",
        path=str(settings.key_path),
        check=CHECK,
    )


def from_error(settings: Settings, exc: Exception) -> Problem:
    """A failure to open that `diagnose` did not foresee (a race, a full disk): as it
    says itself, with the way out of its kind."""
    if isinstance(exc, KeyMissing):
        return key_missing(settings)
    if isinstance(exc, StoreTooNew):
        return too_new(settings.store_path, exc.schema)
    if isinstance(exc, StoreCorrupt) and exc.path is not None:
        return damaged(exc.path, tr("it does not parse"), exc.backup)
    if isinstance(exc, KeyringError):
        return Problem("key_wrong", exc.text, key_way_out(settings))
    what = exc.text if isinstance(exc, ControlPlaneError) else str(exc)
    return Problem("other", tr("the store cannot be opened: {error}", error=what), _fix_it())


def _fix_it() -> Text:
    return tr("fix what it names, then run {check}", check=CHECK)
