"""The base image of the test swarm: a Debian minbase with Python 3 (python3, python3-venv,
ca-certificates), in the test registry as `REGISTRY/cp-base:SUITE-py3`.

Made once and cached in $CP_BASE_CACHE (default /var/tmp/cp-bases):
- `rootfs-SUITE-ARCH.tar`: the debootstrapped minbase, made by ci/docker-lib.sh
  `cp_make_base` (the same file the CI's Docker steps use with the same CP_BASE_CACHE);
- `swarm-registry-SUITE-ARCH-KEY.tar`: the registry's storage holding the base with
  Python, KEY a hash of the Dockerfile below. A warm start unpacks it into the new
  registry's folder (about a second); nothing is built or pushed.

Cold, on the dev machine (2 shared cores): debootstrap about 35 s when the rootfs tarball is
missing too, then `docker import` 3 s, apt-get of Python about 40 s, the push about 20 s:
about 100 s in all, against about 1 s warm.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from tests.support.swarm_parts import REPO, log, run

SUITE_RE = re.compile(r"^ARG BASE=debian:([a-z]+)-slim$", re.M)
PYTHON_LAYER = """FROM {bare}
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
    python3 python3-venv ca-certificates \\
 && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
"""


def cache_dir() -> Path:
    return Path(os.environ.get("CP_BASE_CACHE") or "/var/tmp/cp-bases")


def suite() -> str:
    found = SUITE_RE.search((REPO / "Dockerfile").read_text())
    return found.group(1) if found else "bookworm"


def arch() -> str:
    return run(["dpkg", "--print-architecture"]).stdout.strip()


def repository_path() -> str:
    """The base's name inside the registry (without the registry's address)."""
    return f"cp-base:{suite()}-py3"


def _registry_cache() -> Path:
    key = hashlib.sha256(PYTHON_LAYER.encode()).hexdigest()[:10]
    return cache_dir() / f"swarm-registry-{suite()}-{arch()}-{key}.tar"


def missing_tools() -> str | None:
    """Why the base cannot be had here (no cache and no debootstrap), or None."""
    if _registry_cache().is_file() or (cache_dir() / f"rootfs-{suite()}-{arch()}.tar").is_file():
        return None
    if shutil.which("debootstrap") or shutil.which("apt-get"):
        return None
    return f"no cached base in {cache_dir()} and neither debootstrap nor apt-get to make one"


def unpack_cached(storage: Path) -> bool:
    """The cached registry storage into `storage` (the registry is not running yet)."""
    cached = _registry_cache()
    if not cached.is_file():
        return False
    storage.mkdir(parents=True, exist_ok=True)
    run(["tar", "-C", str(storage), "-xf", str(cached)])
    log(f"base image from cache {cached}")
    return True


def build_and_push(registry: str, docker_env: dict[str, str], work: Path, storage: Path) -> None:
    """The cold path: minbase (cached rootfs or debootstrap), Python on it, pushed to the
    registry, and the registry's storage cached for the next run."""
    t0 = time.monotonic()
    if not (cache_dir() / f"rootfs-{suite()}-{arch()}.tar").is_file() and not shutil.which(
        "debootstrap"
    ):
        run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap"],
            timeout=600,
        )
    bare = f"cp-debian:{suite()}"
    env = {
        **docker_env,
        "CP_BASE_CACHE": str(cache_dir()),
        "CP_TMP": str(work),
        "CP_STEP": "swarm-base",
    }
    cache_dir().mkdir(parents=True, exist_ok=True)
    script = f'source "{REPO}/ci/docker-lib.sh" && cp_make_base "{arch()}" "{bare}"'
    proc = subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=1200
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cp_make_base failed: {proc.stdout}{proc.stderr}")
    context = work / "base-context"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(PYTHON_LAYER.format(bare=bare))
    tag = f"{registry}/{repository_path()}"
    build = ["docker", "build", "--network", "host", "--force-rm", "-t", tag, str(context)]
    run(build, env={**docker_env, "DOCKER_BUILDKIT": "0"}, timeout=900)
    run(["docker", "push", tag], env=docker_env, timeout=600)
    cached = _registry_cache()
    partial = cached.with_suffix(".part")
    run(["tar", "-C", str(storage), "-cf", str(partial), "."])
    partial.replace(cached)
    log(f"base image built and pushed in {time.monotonic() - t0:.0f} s, cached as {cached}")
