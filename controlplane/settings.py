"""Environment → one frozen Settings object; platform detection.

The data directory's paths are named in controlplane.layout (`settings.layout`).
"""

from __future__ import annotations

import os
import platform as _platform
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from controlplane.errors import SettingsError
from controlplane.i18n import LANGS, Text, tr
from controlplane.layout import Layout

DEFAULT_API_URL = "https://api.telegram.org"


@dataclass(frozen=True)
class Platform:
    """Where we run: OS, CPU architecture, and whether inside a container."""

    os: str
    arch: str
    in_container: bool

    def describe(self) -> Text:
        if self.in_container:
            return tr("{os}/{arch}, in a container", os=self.os, arch=self.arch)
        return tr("{os}/{arch}, on the host", os=self.os, arch=self.arch)


def detect_platform(root: Path = Path("/")) -> Platform:
    """Read the OS, the architecture and container markers (Docker, Podman, cgroup names)."""
    system = sys.platform
    name = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(system, system)
    arch = _platform.machine().lower() or "unknown"
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armv7"}.get(arch, arch)
    in_container = False
    if name == "linux":
        if (root / ".dockerenv").exists() or (root / "run/.containerenv").exists():
            in_container = True
        else:
            try:
                cgroup = (root / "proc/1/cgroup").read_text(errors="replace")
            except OSError:
                cgroup = ""
            in_container = any(m in cgroup for m in ("docker", "containerd", "kubepods", "lxc"))
    return Platform(os=name, arch=arch, in_container=in_container)


def default_data_dir(plat: Platform, env: Mapping[str, str]) -> Path:
    """The platform's per-user data folder (the image sets CONTROLPLANE_DATA_DIR=/data)."""
    home = Path(env.get("HOME") or Path.home())
    if plat.os == "windows":
        base = env.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(base) / "controlplane"
    if plat.os == "macos":
        return home / "Library" / "Application Support" / "controlplane"
    return Path(env.get("XDG_DATA_HOME") or home / ".local" / "share") / "controlplane"


def default_python() -> str:
    """An interpreter other users can execute: Debian's first, never one in root's home."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("python3") or sys.executable


def parse_admin_ids(raw: str) -> frozenset[int]:
    """'123, -100456' → {123, -100456}; anything but whole numbers is refused."""
    ids: set[int] = set()
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ids.add(int(part))
        except ValueError:
            raise SettingsError(
                tr(
                    "{variable}: {value} is not a chat id; give whole numbers separated by "
                    "commas, like 123456789,-1001234567890",
                    variable="ADMIN_CHAT_IDS",
                    value=repr(part),
                ),
                variable="ADMIN_CHAT_IDS",
                value=part,
            ) from None
    return frozenset(ids)


def parse_bool(name: str, raw: str) -> bool:
    """1/true/yes/on and 0/false/no/off (any case); empty is off."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise SettingsError(
        tr("{variable}: {value} is not a switch; use 1 or 0", variable=name, value=repr(raw)),
        variable=name,
        value=raw,
    )


def either(words: tuple[str, ...]) -> Text | str:
    """'a or b or c', in the reader's language."""
    shown: Text | str = words[0]
    for word in words[1:]:
        shown = tr("{a} or {b}", a=shown, b=word)
    return shown


def parse_url(name: str, raw: str, schemes: tuple[str, ...]) -> str:
    """An absolute URL with one of `schemes` and a host."""
    parts = urlsplit(raw.strip())
    if parts.scheme not in schemes or not parts.netloc:
        raise SettingsError(
            tr(
                "{variable}: {value} is not a URL; use {schemes}://host",
                variable=name,
                value=repr(raw),
                schemes=either(schemes),
            ),
            variable=name,
            value=raw,
        )
    return raw.strip().rstrip("/")


MIB = 2**20
LOG_SIZE_RANGE = (1, 1000)  # MB
LOG_BACKUPS_RANGE = (0, 50)
LOG_SIZE_RE = re.compile(r"(\d+)\s*(k|kb|m|mb)?", re.IGNORECASE)
LOG_UNITS = {"k": 2**10, "m": MIB}


@dataclass(frozen=True)
class LogLimit:
    """How supervisord rotates a log: at `size` bytes, keeping `backups` old files (so one
    log takes at most size × (backups + 1) on disk)."""

    size: int
    backups: int

    @property
    def most(self) -> int:
        return self.size * (self.backups + 1)


APP_LOGS = LogLimit(size=5 * MIB, backups=3)
OWN_LOGS = LogLimit(size=10 * MIB, backups=5)


def parse_log_size(name: str, raw: str, default: int) -> int:
    """'5MB', '5 mb', '5' (MB), '2048KB' → bytes (binary units, as supervisord counts),
    from 1 MB to 1000 MB; empty is the default."""
    found = LOG_SIZE_RE.fullmatch(raw.strip())
    size = default
    if found:
        unit = (found.group(2) or "m")[0].lower()
        size = int(found.group(1)) * LOG_UNITS[unit]
    low, high = LOG_SIZE_RANGE
    if raw.strip() and (not found or not low * MIB <= size <= high * MIB):
        raise SettingsError(
            tr(
                "{variable}: {value} is not a log size; use {low}MB to {high}MB, like 5MB",
                variable=name,
                value=repr(raw),
                low=low,
                high=high,
            ),
            variable=name,
            value=raw,
        )
    return size


def parse_log_backups(name: str, raw: str, default: int) -> int:
    """A number of rotated files to keep, 0 to 50; empty is the default."""
    low, high = LOG_BACKUPS_RANGE
    if not raw.strip():
        return default
    if raw.strip().isdigit() and low <= int(raw) <= high:
        return int(raw)
    raise SettingsError(
        tr(
            "{variable}: {value} is not a number of backups; use a whole number from {low} "
            "to {high}",
            variable=name,
            value=repr(raw),
            low=low,
            high=high,
        ),
        variable=name,
        value=raw,
    )


def parse_log_limit(env: Mapping[str, str], prefix: str, default: LogLimit) -> LogLimit:
    """PREFIX_SIZE and PREFIX_BACKUPS (CONTROLPLANE_APP_LOG_…, CONTROLPLANE_OWN_LOG_…)."""
    size, backups = f"{prefix}_SIZE", f"{prefix}_BACKUPS"
    return LogLimit(
        size=parse_log_size(size, env.get(size, ""), default.size),
        backups=parse_log_backups(backups, env.get(backups, ""), default.backups),
    )


@dataclass(frozen=True)
class Settings:
    """Everything the environment says, parsed once."""

    data_dir: Path
    platform: Platform
    telegram_token: str | None = None
    admin_chat_ids: frozenset[int] = frozenset()
    telegram_api_url: str = DEFAULT_API_URL
    telegram_proxy: str | None = None
    keys: tuple[str, ...] = ()
    lang: str | None = None
    run_as: str | None = None
    git_user: str | None = None
    python: str = field(default_factory=default_python)
    allow_file_urls: bool = False
    # each slot's stdout and stderr; supervisord's, serve's and the event listener's logs
    app_logs: LogLimit = APP_LOGS
    own_logs: LogLimit = OWN_LOGS

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, plat: Platform | None = None
    ) -> Settings:
        """Parse the CONTROLPLANE_*, TELEGRAM_* and ADMIN_CHAT_IDS variables."""
        env = os.environ if env is None else env
        plat = plat or detect_platform()
        lang = env.get("CONTROLPLANE_LANG", "").strip().lower() or None
        if lang is not None and lang not in LANGS:
            raise SettingsError(
                tr(
                    "{variable}: {value} is not a language; use en or ru",
                    variable="CONTROLPLANE_LANG",
                    value=repr(lang),
                ),
                variable="CONTROLPLANE_LANG",
                value=lang,
            )
        data = env.get("CONTROLPLANE_DATA_DIR", "").strip()
        data_dir = Path(data).expanduser() if data else default_data_dir(plat, env)
        if not data_dir.is_absolute():
            raise SettingsError(
                tr(
                    "{variable}: {value} must be an absolute path",
                    variable="CONTROLPLANE_DATA_DIR",
                    value=repr(data),
                ),
                variable="CONTROLPLANE_DATA_DIR",
                value=data,
            )
        keys = tuple(k.strip() for k in env.get("CONTROLPLANE_KEY", "").split(",") if k.strip())
        proxy = env.get("TELEGRAM_PROXY", "").strip()
        run_as = env.get("CONTROLPLANE_RUN_AS", "").strip() or None
        git_user = env.get("CONTROLPLANE_GIT_USER", "").strip() or None
        return cls(
            data_dir=data_dir,
            platform=plat,
            telegram_token=env.get("TELEGRAM_TOKEN", "").strip() or None,
            admin_chat_ids=parse_admin_ids(env.get("ADMIN_CHAT_IDS", "")),
            telegram_api_url=parse_url(
                "TELEGRAM_API_URL",
                env.get("TELEGRAM_API_URL") or DEFAULT_API_URL,
                ("https", "http"),
            ),
            telegram_proxy=parse_url("TELEGRAM_PROXY", proxy, ("http", "https", "socks5"))
            if proxy
            else None,
            keys=keys,
            lang=lang,
            run_as=run_as,
            git_user=git_user,
            python=env.get("CONTROLPLANE_PYTHON", "").strip() or default_python(),
            allow_file_urls=parse_bool(
                "CONTROLPLANE_ALLOW_FILE_URLS", env.get("CONTROLPLANE_ALLOW_FILE_URLS", "")
            ),
            app_logs=parse_log_limit(env, "CONTROLPLANE_APP_LOG", APP_LOGS),
            own_logs=parse_log_limit(env, "CONTROLPLANE_OWN_LOG", OWN_LOGS),
        )

    def trust_warnings(self, euid: int) -> list[Text]:
        """What weakens the trust boundary (docs/security.md), said at start: as root with
        no unprivileged user, a project's code and variables get root's rights; a bot token
        with no admin, the bot answers nobody."""
        warnings = []
        if self.telegram_token and not self.admin_chat_ids:
            warnings.append(
                tr(
                    "TELEGRAM_TOKEN is set but ADMIN_CHAT_IDS is empty: the bot answers nobody "
                    "and tells nobody; set ADMIN_CHAT_IDS to your chat id"
                )
            )
        if euid == 0 and self.run_as in (None, "root"):
            warnings.append(
                tr(
                    "CONTROLPLANE_RUN_AS is not set: apps, builds and checks run as root, so a "
                    "project's code and variables have root's rights; set it to an "
                    "unprivileged user (the image uses app)"
                )
            )
        return warnings

    @cached_property
    def layout(self) -> Layout:
        """Every path under the data directory (controlplane.layout)."""
        return Layout(self.data_dir)

    # Thin delegates to the layout, for the paths most call sites use.
    @property
    def store_path(self) -> Path:
        return self.layout.store

    @property
    def key_path(self) -> Path:
        return self.layout.key

    @property
    def supervisord_conf(self) -> Path:
        return self.layout.supervisord_conf

    @property
    def supervisor_dir(self) -> Path:
        return self.layout.supervisor_dir

    @property
    def confd(self) -> Path:
        return self.layout.confd

    @property
    def supervisor_sock(self) -> Path:
        return self.layout.supervisor_sock

    @property
    def supervisor_auth(self) -> Path:
        return self.layout.supervisor_auth

    @property
    def control_sock(self) -> Path:
        return self.layout.control_sock

    @property
    def logs_dir(self) -> Path:
        return self.layout.logs_dir

    @property
    def projects_dir(self) -> Path:
        return self.layout.projects_dir

    @property
    def apps_dir(self) -> Path:
        return self.layout.apps_dir

    def project_dir(self, name: str) -> Path:
        return self.layout.project_dir(name)

    def known_hosts(self, name: str) -> Path:
        return self.layout.known_hosts(name)
