"""A project's variables as the admin sees them: secret or plain, read by the app or only
by the build.

A variable is a secret when the admin marked it so, or, unmarked, when its name or its value
says it is one (`default_secret`): names holding any of `SECRET_NAME_PARTS`, values holding
credentials inside a URL. Secrets are masked wherever text leaves the control plane; plain
values are shown as they are. A variable only the build reads (`build_only`: pip's and
uv's settings) never restarts the app.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A name holding any of these (in any case) is a secret unless marked plain: API_KEY,
# GITHUB_TOKEN, DB_PASSWORD, SENTRY_DSN, AUTH_HEADER, PRIVATE_PEM …
SECRET_NAME_PARTS = (
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASS",
    "PWD",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
    "DSN",
    "COOKIE",
    "SIGNATURE",
)
# credentials inside a URL, anywhere in a value: scheme://user:password@, scheme://:password@
# or http(s)://TOKEN@
URL_PASSWORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*:[^\s/?#@]+@")
URL_TOKEN_RE = re.compile(r"https?://[^\s/?#@:]+@", re.IGNORECASE)
# read by the build steps only (pip and uv read their settings from the environment): a
# change applies at the next build and never restarts the app
BUILD_ONLY_PREFIXES = ("PIP_", "UV_")


def mask(value: str) -> str:
    """'sk-live-1234abcd' → 'sk-…abcd'; short values show nothing of themselves."""
    if len(value) >= 12:
        return f"{value[:3]}…{value[-4:]}"
    if len(value) >= 6:
        return f"…{value[-2:]}"
    return "•••"


def secret_by_name(name: str) -> bool:
    upper = name.upper()
    return any(part in upper for part in SECRET_NAME_PARTS)


def has_url_credentials(value: str) -> bool:
    """A password or a token inside a URL ('postgres://app:pw@db/x', 'https://TOKEN@host')."""
    return bool(URL_PASSWORD_RE.search(value) or URL_TOKEN_RE.search(value))


def default_secret(name: str, value: str) -> bool:
    """Whether an unmarked variable is a secret: by its name or its value."""
    return secret_by_name(name) or has_url_credentials(value)


def build_only(name: str) -> bool:
    """A variable only the build reads (PIP_INDEX_URL, UV_INDEX_URL, PIP_*, UV_*)."""
    return name.upper().startswith(BUILD_ONLY_PREFIXES)


@dataclass(frozen=True)
class Variable:
    """One variable of a slot: its value, whether it is a secret, and whether the admin
    marked it so (False: `default_secret` decided)."""

    name: str
    value: str
    secret: bool
    marked: bool = False

    @property
    def build_only(self) -> bool:
        return build_only(self.name)


def variable(name: str, value: str, mark: str | None) -> Variable:
    """A variable from its stored mark ('secret', 'plain', or None: by default)."""
    if mark in ("secret", "plain"):
        return Variable(name, value, mark == "secret", marked=True)
    return Variable(name, value, default_secret(name, value))
