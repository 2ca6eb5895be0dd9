"""A release as an image: built once from the release folder on the base image, pushed.

`REGISTRY/cp-NAME:N-SHA7` (the release folder's name is the tag): the folder's files
under /app, its venv made inside the build (so its paths and architecture are the
image's, not this box's), and a small entrypoint that lays the slot's variables (a swarm
secret, secrets.py) over the environment and execs the app. Labels carry the project,
the release number, the commit and a digest of the folder: an image whose digest
matches is reused (a rollback builds nothing), one that does not is rebuilt.
Without a registry the image stays on the engine that built it: a one-node swarm.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import tarfile
from pathlib import Path
from typing import Any

from controlplane.adapters.swarm.client import LABEL_PROJECT, engine_error
from controlplane.errors import ControlPlaneError
from controlplane.i18n import tr

logger = logging.getLogger(__name__)

LABEL_RELEASE = "controlplane.release"
LABEL_COMMIT = "controlplane.commit"
LABEL_DIGEST = "controlplane.digest"
SKIP = {".venv", "__pycache__", ".git"}  # made again inside the build, or not needed
ENTRY_PATH = "/usr/local/lib/controlplane/entry.py"
SECRET_FILE = "controlplane-env"  # noqa: S105 - a file name under /run/secrets
SECRET_PATH = f"/run/secrets/{SECRET_FILE}"
APP_USER = "65534:65534"  # nobody: the app never runs as root in its container

# The entrypoint: the slot's variables (a JSON object in the secret file) under the
# names the service sets, then exec the release's venv Python (or the image's) on the entry.
ENTRYPOINT = f"""\
import json, os, sys
env = {{}}
try:
    with open({SECRET_PATH!r}, encoding="utf-8") as f:
        env = json.load(f)
except FileNotFoundError:
    pass
env.update(os.environ)
venv = "/app/.venv/bin/python"
python = venv if os.path.exists(venv) else sys.executable
os.execve(python, [python, *sys.argv[1:]], env)
"""

DOCKERFILE = """\
FROM {base}
COPY app /app
COPY entry.py {entry}
RUN set -e; cd /app; \\
    if [ -f requirements.txt ]; then python3 -m venv .venv && \\
        .venv/bin/pip install --no-cache-dir -r requirements.txt; \\
    elif [ -f pyproject.toml ]; then python3 -m venv .venv && \\
        .venv/bin/pip install --no-cache-dir .; fi; \\
    mkdir -p /data && chown {user} /data && chmod -R a+rX /app
WORKDIR /app
ENTRYPOINT ["python3", "{entry}"]
"""


def image_tag(release: Path) -> str:
    """The release folder's name as a tag (N-SHA7), kept to the characters a tag allows."""
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", release.name)[:128]
    return tag if tag and tag[0] not in ".-" else f"r{tag}"[:128]


def image_ref(registry: str, name: str, release: Path) -> str:
    """REGISTRY/cp-NAME:TAG (cp-NAME:TAG without a registry)."""
    repo = f"cp-{name}"
    return (
        f"{registry.rstrip('/')}/{repo}:{image_tag(release)}"
        if registry
        else (f"{repo}:{image_tag(release)}")
    )


def release_labels(name: str, release: Path) -> dict[str, str]:
    """The project, and the number and commit the folder's name N-SHA7 carries."""
    labels = {LABEL_PROJECT: name, LABEL_DIGEST: release_digest(release)}
    match = re.fullmatch(r"(\d+)-([0-9a-f]{7,40})", release.name)
    if match:
        labels |= {LABEL_RELEASE: match[1], LABEL_COMMIT: match[2]}
    return labels


def release_files(release: Path) -> list[Path]:
    """The folder's files that go into the image, sorted (no venv, caches or .git)."""
    found: list[Path] = []
    for root, dirs, files in os.walk(release):
        dirs[:] = sorted(d for d in dirs if d not in SKIP)
        found.extend(Path(root) / f for f in sorted(files))
    return found


def release_digest(release: Path) -> str:
    """What the folder holds (names, sizes, modification times), as a short digest."""
    digest = hashlib.sha256()
    for path in release_files(release):
        stat = path.lstat()
        digest.update(f"{path.relative_to(release)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def build_context(release: Path, base: str) -> io.BytesIO:
    """The build's context as a tar: Dockerfile, entry.py and app/ (the release)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for arcname, text in (
            ("Dockerfile", DOCKERFILE.format(base=base, entry=ENTRY_PATH, user=APP_USER)),
            ("entry.py", ENTRYPOINT),
        ):
            data = text.encode()
            info = tarfile.TarInfo(arcname)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for path in release_files(release):
            tar.add(path, arcname=f"app/{path.relative_to(release)}", recursive=False)
    buffer.seek(0)
    return buffer


def ensure_image(client: Any, *, registry: str, base: str, name: str, release: Path) -> str:
    """The release's image reference, built (and pushed) unless an image with the same
    digest is there already."""
    import docker.errors

    ref = image_ref(registry, name, release)
    labels = release_labels(name, release)
    try:
        if client.images.get(ref).labels.get(LABEL_DIGEST) == labels[LABEL_DIGEST]:
            return ref
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        raise engine_error(exc) from exc
    build(client, ref, base, release, labels)
    if registry:
        push(client, ref)
    return ref


def remove_image(client: Any, ref: str) -> bool:
    """Remove one image by reference from the engine; True when it went. Never raises:
    an image in use (a task, or a stopped task Swarm keeps) or an engine that does not
    answer is logged and left."""
    from docker.errors import ImageNotFound

    try:
        client.images.remove(ref)
        return True
    except ImageNotFound:
        return False
    except Exception as exc:  # the engine's refusal or its absence: a prune goes on
        logger.info("image %s kept: %s", ref, exc)
        return False


def build(client: Any, ref: str, base: str, release: Path, labels: dict[str, str]) -> None:
    """docker build of the release; a failure says which step and why."""
    import docker.errors

    try:
        client.images.build(
            fileobj=build_context(release, base),
            custom_context=True,
            tag=ref,
            labels=labels,
            network_mode="host",  # the engine may have no bridge; pip needs the index
            rm=True,
            forcerm=True,
            pull=False,
        )
    except docker.errors.BuildError as exc:
        tail = " ".join(str(c.get("stream", c.get("error", ""))).strip() for c in exc.build_log)
        raise ControlPlaneError(
            tr("building the image {image} failed: {reason}", image=ref, reason=tail[-600:])
        ) from exc
    except docker.errors.APIError as exc:
        raise engine_error(exc) from exc


def push(client: Any, ref: str) -> None:
    """Push to the registry; the local tag goes when the push fails (so the next switch
    tries again instead of trusting an image the nodes cannot get)."""
    repo, tag = ref.rsplit(":", 1)
    reason = ""
    try:
        for chunk in client.images.push(repo, tag=tag, stream=True, decode=True):
            reason = str(chunk.get("error", "")) or reason
    except Exception as exc:  # APIError, a dropped connection
        reason = str(exc)
    if reason:
        with contextlib.suppress(Exception):  # the push's failure is what matters
            client.images.remove(ref)
        raise ControlPlaneError(
            tr(
                "pushing the image {image} to the registry failed: {reason}",
                image=ref,
                reason=reason,
            )
        )
