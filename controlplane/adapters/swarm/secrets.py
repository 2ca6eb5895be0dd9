"""A slot's variables as a versioned swarm secret, never environment in the service spec.

The variables become one JSON object in a secret named cp-NAME-SLOT-env-VERSION; the
image's entrypoint (images.py) reads it from /run/secrets and lays it over the app's
environment before it execs the app. Secrets cannot be read back, so each carries a
keyed digest of its content as a label: the same variables reuse the secret, changed ones
make the next version (and the service update that follows runs the app with them).
Versions no service uses any more are removed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from pathlib import Path
from typing import Any

from controlplane.adapters.swarm.client import LABEL_SLOT, engine_error
from controlplane.adapters.swarm.images import APP_USER, SECRET_FILE
from controlplane.domain.runner import program_name

LABEL_DIGEST = "controlplane.env-digest"


def digest_key(path: Path) -> bytes:
    """The key of the variables' digests, made once (0600) and kept: the same variables
    then find their secret again after a restart of the control plane."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def secret_prefix(name: str, slot: str) -> str:
    return f"cp-{program_name(name, slot)}-env-"


def content(variables: dict[str, str]) -> bytes:
    return json.dumps(variables, sort_keys=True, ensure_ascii=False).encode()


def slot_secrets(client: Any, name: str, slot: str) -> list[Any]:
    """The slot's secret versions, oldest first."""
    try:
        found = client.secrets.list(filters={"label": f"{LABEL_SLOT}={program_name(name, slot)}"})
    except Exception as exc:  # APIError, connection
        raise engine_error(exc) from exc
    return sorted(found, key=lambda s: version_of(s.name))


def version_of(secret_name: str) -> int:
    match = re.search(r"-env-(\d+)$", secret_name)
    return int(match[1]) if match else 0


def env_secret(client: Any, key: bytes, name: str, slot: str, variables: dict[str, str]) -> Any:
    """The secret holding these variables for the slot: the newest version when its
    content is the same, else a new version."""
    data = content(variables)
    digest = hmac.new(key, data, hashlib.sha256).hexdigest()[:32]
    versions = slot_secrets(client, name, slot)
    if versions and versions[-1].attrs["Spec"]["Labels"].get(LABEL_DIGEST) == digest:
        return versions[-1]
    number = version_of(versions[-1].name) + 1 if versions else 1
    labels = {LABEL_SLOT: program_name(name, slot), LABEL_DIGEST: digest}
    try:
        return client.secrets.create(
            name=f"{secret_prefix(name, slot)}{number}", data=data, labels=labels
        )
    except Exception as exc:
        raise engine_error(exc) from exc


def secret_reference(secret: Any) -> Any:
    """How a service mounts the secret: the file the entrypoint reads, for the app's user."""
    from docker.types import SecretReference

    uid, gid = APP_USER.split(":")
    return SecretReference(
        secret.id, secret.name, filename=SECRET_FILE, uid=uid, gid=gid, mode=0o400
    )


def prune_secrets(client: Any, name: str, slot: str, keep: set[str]) -> int:
    """Remove the slot's versions other than `keep` (ids); one a task still uses stays."""
    removed = 0
    for secret in slot_secrets(client, name, slot):
        if secret.id in keep:
            continue
        try:
            secret.remove()
            removed += 1
        except Exception:  # noqa: S112 - in use by a task still shutting down: next time
            continue
    return removed
