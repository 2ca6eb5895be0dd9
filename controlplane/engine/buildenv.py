"""The environment a build step runs in, and where its tools are.

A build gets a small environment, not the control plane's whole one: `PATH`, `HOME`,
`TMPDIR`, the box's network settings (proxies, certificates, pip's and uv's index
settings: `NETWORK_VARS`, so a box behind a proxy or a TLS-inspecting gateway builds
without setting them on every project), our cache and quiet defaults, then the project's
own variables, which override all of it. uv reads the system's certificate store
(`UV_SYSTEM_CERTS`, `UV_NATIVE_TLS` for older uv) unless a project says otherwise.
Credentials inside those settings (`http://user:pass@proxy`) are secrets: the build's
redactor hides them wherever they would be printed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from controlplane.adapters.files import chown_tree

_PROXIES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")
# what a build inherits from the control plane's environment
NETWORK_VARS = (
    *_PROXIES,
    *(name.lower() for name in _PROXIES),
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "PIP_CERT",
    "PIP_CLIENT_CERT",
    "PIP_PROXY",
    "PIP_DEFAULT_TIMEOUT",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_FIND_LINKS",
    "UV_NO_INDEX",
    "UV_INSECURE_HOST",
    "UV_NATIVE_TLS",
    "UV_SYSTEM_CERTS",
    "UV_HTTP_TIMEOUT",
    "UV_PYTHON_INSTALL_MIRROR",
)


def find_uv() -> str | None:
    """uv installed with our package (next to our interpreter) first, then on PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


def inherited(base: Mapping[str, str]) -> dict[str, str]:
    """The network settings of `base` (the control plane's environment) a build takes."""
    return {k: base[k] for k in NETWORK_VARS if base.get(k)}


def build_env(
    env: Mapping[str, str], cache_dir: Path, *, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """PATH, HOME, TMPDIR and the network settings of `base`, our cache and quiet
    defaults, then the project's variables (which win)."""
    base = os.environ if base is None else base
    merged = {k: base[k] for k in ("PATH", "HOME", "TMPDIR") if k in base}
    merged.update(
        UV_SYSTEM_CERTS="1",
        UV_NATIVE_TLS="1",
    )
    merged.update(inherited(base))
    merged.update(
        LANG="C.UTF-8",
        UV_CACHE_DIR=str(cache_dir / "uv"),
        UV_PYTHON_INSTALL_DIR=str(cache_dir / "python"),
        UV_COMPILE_BYTECODE="1",
        UV_NO_PROGRESS="1",
        PIP_CACHE_DIR=str(cache_dir / "pip"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PIP_PROGRESS_BAR="off",
        NO_COLOR="1",
    )
    merged.update(env)
    return merged


def url_secrets(values: Mapping[str, str]) -> list[str]:
    """Passwords inside URL values (`http://user:pass@proxy:3128`), for the redactor (which
    hides a URL's user-info wherever it prints one; this hides the password alone too)."""
    found: list[str] = []
    for value in values.values():
        for word in value.replace(",", " ").split():
            try:
                password = urlsplit(word).password
            except ValueError:
                continue
            if password:
                found += [password, unquote(password)]
    return found


def shown_settings(base: Mapping[str, str], env: Mapping[str, str]) -> list[str]:
    """The inherited network settings a build uses (those the project did not override),
    as 'NAME=value' lines; the caller redacts them."""
    taken = inherited(base)
    return [f"{k}={v}" for k, v in sorted(taken.items()) if k not in env]


def builder_dirs(cache_dir: Path, user: str) -> None:
    """The shared caches, fetched interpreters and a home for the builder, owned by it."""
    for sub in ("uv", "pip", "home", "python"):
        path = cache_dir / sub
        path.mkdir(parents=True, exist_ok=True)
        if path.stat().st_uid != pwd.getpwnam(user).pw_uid:
            chown_tree(path, user)
