"""Project and its fields; pure converters that validate everything a person types.

Each converter takes text and returns the clean value, or raises ValidationError naming
the bad value and saying what is accepted. Nothing here touches the disk except the
symlink resolution of a folder.
"""

from __future__ import annotations

import os
import re
import shlex
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from controlplane.errors import ValidationError
from controlplane.i18n import N_, Text, tr

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
SLOTS = ("prod", "test")
POLICIES = ("notify", "test", "promote")
INSTALLERS = ("uv", "pip")  # what builds a release's venv (engine/buildsteps.py)
# Set by run-slot for every app (they would be overridden silently): refused as names.
RESERVED_VARS = frozenset(
    {"APP_DATA_DIR", "HOME", "USER", "LOGNAME", "PATH", "LANG", "PYTHONUNBUFFERED"}
)
MAX_VALUE_BYTES = 64 * 1024
SYSTEM_DIRS = frozenset(
    {
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/sys",
        "/usr",
        "/var/lib",
        "/var/run",
        "/var/log",
        "/var/spool",
    }
)
TOP_LEVEL_PARENTS = frozenset(
    {"/", "/home", "/tmp", "/var", "/opt", "/srv", "/mnt", "/media"}  # noqa: S108 - refused, not used
)
MAX_NAME_BYTES = 255  # NAME_MAX
MAX_LAST_NAME_BYTES = 200  # room for the link's temporary sibling '.NAME.switch-PID'
MAX_PATH_BYTES = 4000  # PATH_MAX is 4096, with room for that sibling
WINDOWS_RE = re.compile(r"[A-Za-z]:([\\/]|$)")
INTERVAL_RE = re.compile(r"(\d{1,5})\s*([smhd])", re.ASCII)
DIGITS_RE = re.compile(r"\d+", re.ASCII)  # "¹" and "٣" are digits to str.isdigit
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
TEST_SECONDS = (5, 7 * 86400)  # a test run lasts 5 s to 7 d, however it is asked for
MAX_URL = 2048  # a repository URL longer than this is a paste gone wrong
# what a refused value is called, for the fields that many checks name
FOLDER, REPO_URL, BRANCH = N_("folder"), N_("repository URL"), N_("branch")
VAR_NAME, ENTRY, CHECK = N_("variable name"), N_("entry"), N_("check command")
SCP_RE = re.compile(r"(?P<user>[A-Za-z0-9._-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/\\].*)")


def validate_name(raw: str) -> str:
    """A project name: lower-case letters, digits, '-' and '_', starting with a letter or digit."""
    if not isinstance(raw, str) or not NAME_RE.fullmatch(raw):
        raise ValidationError(
            tr("project name"),
            raw,
            tr("use 1-32 of a-z, 0-9, '-' and '_', starting with a letter or digit"),
        )
    return raw


def validate_slot(raw: str) -> str:
    """prod or test."""
    if raw not in SLOTS:
        raise ValidationError(tr("slot"), raw, tr("use prod or test"))
    return raw


def _no_control(field_name: Text, raw: str, accepted: Text) -> None:
    if CONTROL_RE.search(raw):
        raise ValidationError(field_name, raw, accepted)


def validate_folder(
    raw: str,
    *,
    data_dir: Path,
    allowed_inside: tuple[Path, ...] = (),
    others: Mapping[str, str] | None = None,
) -> Path:
    """An absolute folder for a project: not /, not a system folder, not the data dir, and
    neither inside nor around the folder of another project (`others`: name → folder).

    Windows paths (C:\\bots\\app) are host paths: inside the container the folder is the
    mounted one, so they are refused with that advice. Leading and repeated slashes are
    one slash (`//etc` is `/etc`). Symlinks are resolved before the checks, so a link to
    /etc is /etc. Names longer than the file system takes are refused here, so no later
    file operation on the folder fails on its length.
    """
    accepted = tr("give an absolute folder such as /srv/bots/NAME")
    if not isinstance(raw, str) or not raw.strip():
        raise _bad_folder(raw, accepted)
    _no_control(tr(FOLDER), raw, accepted)
    if WINDOWS_RE.match(raw) or raw.startswith("\\\\"):
        raise _bad_folder(raw, tr(WINDOWS_PATH))
    if not raw.startswith("/"):
        raise _bad_folder(raw, accepted)
    parts = [part for part in raw.split("/") if part]
    if any(part in ("..", ".") or part.startswith("-") for part in parts):
        raise _bad_folder(raw, tr(NO_DOTS))
    _check_lengths(raw, parts)
    normal = Path("/" + "/".join(parts))
    _check_not_nested(raw, normal, others or {})
    try:
        resolved = Path(os.path.realpath(normal))
    except OSError as exc:
        raise _bad_folder(raw, tr("it cannot be read ({reason})", reason=exc.strerror)) from None
    for candidate, followed in ((normal, False), (resolved, resolved != normal)):
        _check_place(
            raw, candidate, resolved=followed, data_dir=data_dir, allowed_inside=allowed_inside
        )
    return normal


WINDOWS_PATH = N_(
    "that is a Windows path; give the folder as the container sees it, "
    "for example /data/apps/NAME or the target of a bind mount such as /projects/NAME"
)
NO_DOTS = N_(
    "give an absolute folder such as /srv/bots/NAME; no '..', '.' or parts starting with '-'"
)


def _bad_folder(raw: object, accepted: Text) -> ValidationError:
    return ValidationError(tr(FOLDER), raw, accepted)


def folder_places(folder: Path) -> set[Path]:
    """Where a project folder is: as written, with its parent's links resolved, and with
    its own link resolved too (a live folder is a link to its release)."""
    places = {folder}
    try:
        places.add(Path(os.path.realpath(folder.parent)) / folder.name)
        places.add(Path(os.path.realpath(folder)))
    except OSError:
        pass
    return places


def _check_not_nested(raw: str, folder: Path, others: Mapping[str, str]) -> None:
    """A project folder inside another's would put its link inside the other's release
    (and a rollback of one would pull the other's code away): refused either way round."""
    mine = folder_places(folder)
    for other, where in sorted(others.items()):
        theirs = folder_places(Path(where))
        if mine & theirs:
            raise _bad_folder(
                raw, tr("project {other} uses it already; give another folder", other=other)
            )
        inside = any(a.is_relative_to(b) for a in mine for b in theirs)
        around = any(b.is_relative_to(a) for a in mine for b in theirs)
        if inside:
            raise _bad_folder(
                raw,
                tr(
                    "it is inside the folder of project {other} ({where}); "
                    "project folders cannot be nested",
                    other=other,
                    where=where,
                ),
            )
        if around:
            raise _bad_folder(
                raw,
                tr(
                    "the folder of project {other} ({where}) is inside it; "
                    "project folders cannot be nested",
                    other=other,
                    where=where,
                ),
            )


def _check_lengths(raw: str, parts: list[str]) -> None:
    """What the file system takes: a name of 255 bytes, a path of 4096; the last name
    leaves room for the link's temporary sibling ('.NAME.switch-PID')."""
    try:
        sizes = [len(part.encode()) for part in parts]
    except UnicodeEncodeError:
        raise _bad_folder(raw, tr("use characters a file name can hold")) from None
    if (
        any(size > MAX_NAME_BYTES for size in sizes)
        or (sizes and sizes[-1] > MAX_LAST_NAME_BYTES)
        or sum(sizes) + len(sizes) > MAX_PATH_BYTES
    ):
        raise _bad_folder(
            raw,
            tr(
                "a folder name is at most {name} bytes (the last one {last}) "
                "and the whole path at most {path} bytes",
                name=MAX_NAME_BYTES,
                last=MAX_LAST_NAME_BYTES,
                path=MAX_PATH_BYTES,
            ),
        )


def _check_place(
    raw: str,
    candidate: Path,
    *,
    resolved: bool,
    data_dir: Path,
    allowed_inside: tuple[Path, ...],
) -> None:
    """Not /, a top-level folder, a system folder, or the data dir (in either direction)."""
    text = str(candidate)

    def refused(why: Text) -> ValidationError:
        return _bad_folder(
            raw, tr("it leads to {target}: {why}", target=text, why=why) if resolved else why
        )

    if text == "/":
        raise refused(tr("/ is the root folder; give a folder below it, such as /srv/bots/NAME"))
    if text in TOP_LEVEL_PARENTS:
        raise refused(
            tr(
                "{folder} is a top-level folder; give a folder below it, such as /srv/bots/NAME",
                folder=text,
            )
        )
    for system in SYSTEM_DIRS:
        if text == system or text.startswith(system + "/"):
            raise refused(
                tr("{folder} is a system folder; give one such as /srv/bots/NAME", folder=system)
            )
    data = Path(os.path.realpath(data_dir))
    if any(
        candidate.is_relative_to(os.path.realpath(a)) and candidate != Path(os.path.realpath(a))
        for a in allowed_inside
    ):
        return
    if candidate.is_relative_to(data):
        raise refused(tr("it is inside the control plane's data dir {data}", data=str(data)))
    if data.is_relative_to(candidate):
        raise refused(tr("the control plane's data dir {data} is inside it", data=str(data)))


def split_credentials(url: str) -> tuple[str, str | None]:
    """'https://user:tok@host/x' → ('https://host/x', 'user:tok'); others unchanged."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        auth, _, host = parts.netloc.rpartition("@")
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), auth
    return url, None


URL_USERINFO_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>\S*)@")
SCP_USERINFO_RE = re.compile(r"^(?P<scheme>)(?P<info>[^@\s/]*:\S*)@")
SSH_SCHEMES = ("ssh://", "git+ssh://", "ssh+git://")


def _userinfo(text: str) -> re.Match[str] | None:
    """Where a repository URL as typed holds a secret, widely taken (to delete the message
    and mask it): a password (`user:pw@`, in any form, up to the last '@'), or a token
    (`https://TOKEN@`) where the scheme is not ssh (there, and in `git@host:path`, a lone
    user name is only a name)."""
    match = URL_USERINFO_RE.match(text)
    if match is not None:
        info, scheme = match["info"], match["scheme"].lower()
        if ":" in info or (info and "/" not in info and scheme not in SSH_SCHEMES):
            return match
        return None
    return SCP_USERINFO_RE.match(text)


def has_credentials(text: str) -> bool:
    """Whether a repository URL as typed may hold a password or a token."""
    return _userinfo(text) is not None


def mask_credentials(text: str) -> str:
    """'ssh://user:pw@host/x' → 'ssh://***@host/x': the URL as it may be shown."""
    match = _userinfo(text)
    return text if match is None else f"{match['scheme']}***@{text[match.end() :]}"


def _unusable_password(raw: str, url: RepoURL) -> bool:
    """A password where git cannot use one: ssh:// and `user:pw@host:path`."""
    if url.auth is not None or not isinstance(raw, str):
        return False
    if "://" in raw:
        return urlsplit(raw).password is not None
    scp = SCP_RE.fullmatch(raw)
    return scp is not None and "@" in scp["path"].split("/")[0]


@dataclass(frozen=True)
class RepoURL:
    """A validated repository URL, its credentials split off, and a warning if any."""

    url: str
    auth: str | None
    warning: Text | None = None


def _local_repo(raw: str, accepted: Text) -> RepoURL:
    """An absolute path or file:// URL (only when file URLs are allowed)."""
    path = urlsplit(raw).path if raw.startswith("file:") else raw
    netloc = urlsplit(raw).netloc if raw.startswith("file:") else ""
    if netloc not in ("", "localhost") or ".." in path.split("/") or not path.startswith("/"):
        raise _bad_repo(raw, accepted)
    return RepoURL(url=raw, auth=None)


def _bad_repo(raw: object, accepted: Text) -> ValidationError:
    return ValidationError(tr(REPO_URL), raw, accepted)


def _network_repo(raw: str, accepted: Text) -> RepoURL:
    """https, http (with a warning) or ssh:// with a host and a path."""
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http", "ssh") or not parts.hostname:
        raise _bad_repo(raw, accepted)
    if parts.hostname.startswith("-") or not parts.path.strip("/") or ".." in parts.path.split("/"):
        raise _bad_repo(raw, accepted)
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise _bad_repo(raw, accepted) from None
    url, auth = split_credentials(raw) if scheme != "ssh" else (raw, None)
    warning = None
    if scheme == "http":
        warning = tr(
            "http:// is unencrypted: code and credentials travel in the clear; prefer https://"
        )
    return RepoURL(url=url, auth=auth, warning=warning)


def validate_repo_url(raw: str, *, allow_file: bool = False) -> RepoURL:
    """https, http (with a warning), ssh://, git@host:path; file:// and paths when allowed.
    A refused URL is shown with its credentials masked; a password where git cannot use
    one (ssh signs in with a key) is refused, so it is never stored as part of the URL."""
    secret = isinstance(raw, str) and has_credentials(raw)
    try:
        url = _repo_url(raw, allow_file=allow_file)
    except ValidationError as exc:
        if not secret:
            raise
        raise ValidationError(exc.field, mask_credentials(raw), exc.accepted) from None
    if _unusable_password(raw, url):
        raise _bad_repo(
            mask_credentials(raw),
            tr(
                "ssh signs in with a key, not a password: use ssh://git@host/owner/repo.git "
                "(or https://user:token@host/owner/repo.git)"
            ),
        )
    return url


def _repo_url(raw: str, *, allow_file: bool) -> RepoURL:
    accepted = (
        tr(
            "use https://host/owner/repo.git, ssh://git@host/owner/repo.git or "
            "git@host:owner/repo (or file:// and absolute paths)"
        )
        if allow_file
        else tr(
            "use https://host/owner/repo.git, ssh://git@host/owner/repo.git or git@host:owner/repo"
        )
    )
    if not isinstance(raw, str) or not raw or raw != raw.strip() or " " in raw:
        raise _bad_repo(raw, accepted)
    if len(raw) > MAX_URL:
        raise _bad_repo(raw, tr("a repository URL has at most {n} characters", n=MAX_URL))
    _no_control(tr(REPO_URL), raw, accepted)
    if raw.startswith("-") or "::" in raw.split("/")[0]:
        raise _bad_repo(raw, accepted)
    if raw.startswith(("/", "file:")):
        if not allow_file:
            raise _bad_repo(raw, accepted)
        return _local_repo(raw, accepted)
    scp = SCP_RE.fullmatch(raw)
    # scp syntax needs its user (git@host:path), so 'javascript:alert(1)' is no host
    if scp and scp["user"] and "://" not in raw:
        if scp["path"].startswith("-") or ".." in scp["path"].split("/"):
            raise _bad_repo(raw, accepted)
        return RepoURL(url=raw, auth=None)
    return _network_repo(raw, accepted)


def validate_branch(raw: str) -> str:
    """A branch name as `git check-ref-format --branch` accepts it."""
    accepted = tr("use a git branch name such as main or release/1.2 (no spaces, '..', '~^:?*[\\')")
    if not isinstance(raw, str) or not raw or len(raw) > 200 or raw.startswith("-"):
        raise ValidationError(tr(BRANCH), raw, accepted)
    if (
        CONTROL_RE.search(raw)
        or any(c in raw for c in " ~^:?*[\\")
        or ".." in raw
        or "@{" in raw
        or raw == "@"
        or raw.endswith((".", "/"))
        or raw.startswith("/")
        or "//" in raw
    ):
        raise ValidationError(tr(BRANCH), raw, accepted)
    for part in raw.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            raise ValidationError(tr(BRANCH), raw, accepted)
    return raw


def validate_var_name(raw: str) -> str:
    """A variable name: letters, digits and '_', not starting with a digit."""
    if not isinstance(raw, str) or not VAR_RE.fullmatch(raw):
        raise ValidationError(
            tr(VAR_NAME), raw, tr("use letters, digits and '_', not starting with a digit")
        )
    if raw in RESERVED_VARS or raw.startswith("CONTROLPLANE_"):
        raise ValidationError(
            tr(VAR_NAME),
            raw,
            tr("that name is set by the control plane itself; choose another"),
        )
    return raw


def validate_var_value(name: str, raw: str) -> str:
    """Any text up to 64 KiB without NUL (a process environment cannot hold NUL)."""
    if not isinstance(raw, str) or "\x00" in raw or len(raw.encode()) > MAX_VALUE_BYTES:
        raise ValidationError(
            tr("value of {name}", name=name),
            "…",
            tr("use text of at most 64 KiB without NUL characters"),
        )
    return raw


def parse_assignments(lines: list[str]) -> dict[str, str]:
    """['A=1', 'B=two'] → {'A': '1', 'B': 'two'}; every name and value validated first."""
    result: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition("=")
        if not sep:
            raise ValidationError(tr("assignment"), name[:40], tr("write KEY=VALUE"))
        name = name.strip()
        result[validate_var_name(name)] = validate_var_value(name, value)
    return result


def parse_duration(
    raw: str, *, field_name: Text | str | None = None, low: int = 1, high: int = 7 * 86400
) -> int:
    """'90', '30s', '5m', '1h', '1d' → seconds, within [low, high]; `field_name` is what
    an error calls the value ('duration' by default)."""
    text = str(raw).strip().lower()
    field_name = tr("duration") if field_name is None else field_name
    accepted = tr(
        "use a number of seconds or 30s, 5m, 1h, 1d (from {low} to {high})",
        low=format_interval(low, zero="0s"),
        high=format_interval(high),
    )
    digits = DIGITS_RE.fullmatch(text) is not None
    match = INTERVAL_RE.fullmatch(text) if not digits else None
    if digits and len(text) <= 7:
        seconds = int(text)
    elif match:
        seconds = int(match[1]) * UNITS[match[2]]
    else:
        raise ValidationError(field_name, raw, accepted)
    if not low <= seconds <= high:
        raise ValidationError(field_name, raw, accepted)
    return seconds


def parse_test_duration(raw: str, *, field_name: Text | str | None = None) -> int:
    """A test run's duration, however it is given (a command, a typed answer, a button, the
    project's setting): one parser, one range (TEST_SECONDS)."""
    low, high = TEST_SECONDS
    name = tr("test duration") if field_name is None else field_name
    return parse_duration(raw, field_name=name, low=low, high=high)


def parse_interval(raw: str) -> int:
    """A poll interval: off (0) or 1m to 7d."""
    if str(raw).strip().lower() in ("off", "0", "never"):
        return 0
    return parse_duration(raw, field_name=tr("poll interval"), low=60)


def format_interval(seconds: int, zero: str = "off") -> str:
    """0 → 'off', 300 → '5m', 3600 → '1h'."""
    if seconds == 0:
        return zero
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def interval_text(seconds: int) -> Text:
    """format_interval in the reader's language: 0 → 'off', 300 → '5m' / '5 мин'."""
    if seconds == 0:
        return Text(N_("off"))
    for unit, size in ((N_("{n}d"), 86400), (N_("{n}h"), 3600), (N_("{n}m"), 60)):
        if seconds % size == 0:
            return Text(unit, {"n": seconds // size})
    return Text(N_("{n}s"), {"n": seconds})


def validate_entry(raw: str) -> str:
    """The app's entry file, relative to the project root: a .py file inside it."""
    accepted = tr("use a .py file inside the repository, such as main.py or app/bot.py")
    if not isinstance(raw, str) or not raw.endswith(".py") or raw.startswith(("/", "-")):
        raise ValidationError(tr(ENTRY), raw, accepted)
    _no_control(tr(ENTRY), raw, accepted)
    if any(p in ("", ".", "..") or p.startswith("-") for p in raw.split("/")) or "\\" in raw:
        raise ValidationError(tr(ENTRY), raw, accepted)
    if len(raw.encode("utf-8", "surrogatepass")) > 1000 or any(
        len(p.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for p in raw.split("/")
    ):
        raise ValidationError(
            tr(ENTRY),
            raw,
            tr(
                "use a .py file inside the repository, such as main.py or app/bot.py "
                "(names of at most {n} bytes)",
                n=MAX_NAME_BYTES,
            ),
        )
    return raw


def validate_policy(raw: str) -> str:
    """What a new commit does: notify, test, or promote (test, then promote if it passed)."""
    if raw not in POLICIES:
        raise ValidationError(tr("policy"), raw, tr("use notify, test or promote"))
    return raw


def validate_installer(raw: str) -> str:
    """What builds a release: uv (the default), or pip with the classic steps."""
    value = str(raw).strip().lower()
    if value not in INSTALLERS:
        raise ValidationError(tr("installer"), raw, tr("use uv or pip"))
    return value


RUNNERS = ("local", "swarm")
PLACEMENT_RE = re.compile(
    r"node\.(id|hostname|role|platform\.os|platform\.arch|labels\.[A-Za-z0-9][\w.-]{0,62})"
    r"\s*(==|!=)\s*[\w.:/-]{1,128}"
)


def validate_runner(raw: str) -> str:
    """Where a project's slots run: local (supervisord on this box) or swarm."""
    value = str(raw).strip().lower()
    if value == "this-box":
        value = "local"
    if value not in RUNNERS:
        raise ValidationError(tr("runner"), raw, tr("use local or swarm"))
    return value


def validate_placement(raw: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Swarm placement constraints, each node.(id|hostname|role|platform.os|platform.arch|
    labels.KEY) == or != VALUE; a lone "-" clears them."""
    values = [str(v).strip() for v in raw if str(v).strip()]
    if values == ["-"]:
        return ()
    for value in values:
        if not PLACEMENT_RE.fullmatch(value):
            raise ValidationError(
                tr("placement"),
                value,
                tr(
                    "use node.labels.KEY==VALUE, node.hostname!=NAME, node.role==manager, "
                    "node.platform.arch==aarch64 (== or !=), or - to clear"
                ),
            )
    return tuple(values)


def parse_switch(field_name: Text | str, raw: str) -> bool:
    """on/off."""
    value = str(raw).strip().lower()
    if value in ("on", "1", "true", "yes"):
        return True
    if value in ("off", "0", "false", "no"):
        return False
    raise ValidationError(field_name, raw, tr("use on or off"))


def parse_int(field_name: Text | str, raw: str, low: int, high: int) -> int:
    """A whole number within [low, high]."""
    text = str(raw).strip()
    if not DIGITS_RE.fullmatch(text) or len(text) > 6 or not low <= int(text) <= high:
        raise ValidationError(
            field_name, raw, tr("use a whole number from {low} to {high}", low=low, high=high)
        )
    return int(text)


def validate_check(raw: str) -> str | None:
    """A check command run in the release (split like a shell would, never run by one)."""
    if raw.strip().lower() in ("", "off", "none"):
        return None
    accepted = tr("use a command such as 'pytest -q', or off")
    _no_control(tr(CHECK), raw, accepted)
    try:
        argv = shlex.split(raw)
    except ValueError:
        raise ValidationError(tr(CHECK), raw, accepted) from None
    if not argv or len(raw) > 500:
        raise ValidationError(tr(CHECK), raw, accepted)
    return raw


@dataclass(frozen=True)
class Project:
    """A project as the store keeps it (secrets live beside it, encrypted)."""

    name: str
    repo: str
    path: str
    branch: str = "main"
    entry: str = "main.py"
    poll: int = 0
    policy: str = "notify"
    output: bool = True
    keep: int = 5
    check: str | None = None
    health_window: int = 30
    test_duration: int = 60
    installer: str = "uv"  # or pip: the classic venv, pip install -U pip, pip install
    kind: str = "own"
    created: float = field(default_factory=time.time)
    # Bumped whenever what a slot's app sees changes; rendered into the slot's program
    # file (never the values), so applying the config restarts exactly that slot.
    env_rev_prod: int = 0
    env_rev_test: int = 0
    runner: str = "local"  # where its slots run: "local" (supervisord here) or "swarm"
    placement: tuple[str, ...] = ()  # Swarm constraints, e.g. node.labels.site==home

    def env_rev(self, slot: str) -> int:
        return self.env_rev_test if slot == "test" else self.env_rev_prod

    @property
    def third_party(self) -> bool:
        """A third-party repository run with `launch` (🌍 in the lists and on its menu)."""
        return self.kind == "launch"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Project:
        known = {f.name for f in fields(cls)}
        clean = {k: v for k, v in data.items() if k in known}
        if "placement" in clean:
            clean["placement"] = tuple(clean["placement"] or ())
        return cls(**clean)

    def with_(self, **changes: Any) -> Project:
        return replace(self, **changes)


def convert_setting(key: str, raw: str) -> tuple[str, Any]:
    """`project set NAME KEY VALUE`: the field it changes and its clean value."""
    converters: dict[str, tuple[str, Any]] = {
        "branch": ("branch", validate_branch),
        "entry": ("entry", validate_entry),
        "policy": ("policy", validate_policy),
        "output": ("output", lambda v: parse_switch(tr("output"), v)),
        "keep": ("keep", lambda v: parse_int(tr("releases kept"), v, 1, 50)),
        "check": ("check", validate_check),
        "installer": ("installer", validate_installer),
        "health-window": (
            "health_window",
            lambda v: (
                parse_duration(v, field_name=tr("health window"), low=0, high=3600)
                if str(v).strip() != "0"
                else 0
            ),
        ),
        "poll": ("poll", parse_interval),
        "test-duration": (
            "test_duration",
            parse_test_duration,
        ),
    }
    if key not in converters:
        raise ValidationError(
            tr("setting"), key, tr("use one of {keys}", keys=", ".join(sorted(converters)))
        )
    name, convert = converters[key]
    return name, convert(raw)
