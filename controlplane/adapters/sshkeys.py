"""Deploy keys for ssh repositories, and the host keys pinned for them.

A project's deploy key is an Ed25519 key pair made here (cryptography), its private half
kept encrypted in the store and handed to ssh only through an in-memory file (see
`git.Access`). The admin adds the public half to the repository as a read-only deploy key.
ssh pins a host's key on first use in the project's own known_hosts; what is pinned is
shown to the admin as SHA256 fingerprints, the form GitHub and `ssh-keygen -l` print.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.errors import ControlPlaneError
from controlplane.i18n import tr


@dataclass(frozen=True)
class HostKey:
    """One pinned host key: the host as ssh wrote it, the key type, its fingerprint."""

    host: str
    kind: str
    fingerprint: str


def generate(comment: str) -> tuple[str, str]:
    """A new key pair: (OpenSSH private key text, 'ssh-ed25519 AAAA… comment')."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    return private, public_of(private, comment)


def public_of(private: str, comment: str) -> str:
    """The public line of a stored private key."""
    try:
        key = serialization.load_ssh_private_key(private.encode(), password=None)
    except (ValueError, TypeError):
        raise ControlPlaneError(
            tr("the stored deploy key cannot be read; make a new one")
        ) from None
    line = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return f"{line} {comment}"


def fingerprint(blob_b64: str) -> str:
    """'SHA256:…' of a base64 key blob, as `ssh-keygen -l` prints it."""
    digest = hashlib.sha256(base64.b64decode(blob_b64)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def pinned(known_hosts: Path) -> list[HostKey]:
    """The host keys ssh pinned in a known_hosts file (none when it does not exist)."""
    try:
        text = known_hosts.read_text(errors="replace")
    except OSError:
        return []
    keys = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or line.startswith("#"):
            continue
        host, kind, blob = parts[:3]
        try:
            keys.append(HostKey(host=host, kind=kind, fingerprint=fingerprint(blob)))
        except ValueError:
            continue
    return keys
