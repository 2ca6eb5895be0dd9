"""The master key, encryption of secret values, masking, and redaction of outgoing text.

Keys are Fernet keys, newest first: MultiFernet encrypts with the first and decrypts with
any, so a rotation is "put a new key first, re-encrypt everything, drop the old ones".
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from controlplane.errors import KeyringError
from controlplane.files import write_atomic
from controlplane.settings import Settings

MIN_REDACT_LEN = 4
MASK = "***"


def generate_key() -> str:
    """A new random Fernet key (url-safe base64 text)."""
    return Fernet.generate_key().decode()


def parse_keys(raw: Iterable[str], origin: str) -> list[Fernet]:
    """Text keys → Fernet objects; a malformed key is refused, naming where it came from."""
    fernets = []
    for i, key in enumerate(raw, start=1):
        try:
            fernets.append(Fernet(key.strip().encode()))
        except (ValueError, TypeError):
            raise KeyringError(
                f"key {i} in {origin} is not a Fernet key "
                "(32 url-safe base64-encoded bytes; make one with `controlplane key generate`)"
            ) from None
    if not fernets:
        raise KeyringError(f"{origin} holds no key")
    return fernets


def read_key_file(path: Path) -> list[str]:
    """The keys in the key file, newest first (one per line)."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def write_key_file(path: Path, keys: list[str]) -> None:
    """Atomically replace the key file with `keys`, mode 0600 from the first byte."""
    write_atomic(path, "\n".join(keys) + "\n", mode=0o600)


class KeyRing:
    """Encrypts and decrypts secret values with the configured keys."""

    def __init__(self, keys: list[str], origin: str) -> None:
        self.keys = keys
        self.origin = origin
        self._fernet = MultiFernet(parse_keys(keys, origin))

    @classmethod
    def load(cls, settings: Settings) -> KeyRing:
        """CONTROLPLANE_KEY when set; else $DATA/secret.key, generated (0600) on first use."""
        if settings.keys:
            return cls(list(settings.keys), "CONTROLPLANE_KEY")
        path = settings.key_path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first: use theirs
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(generate_key() + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
        return cls(read_key_file(path), str(path))

    @property
    def from_file(self) -> bool:
        return self.origin != "CONTROLPLANE_KEY"

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise KeyringError(
                f"the key in {self.origin} does not decrypt the store; "
                "use the key the store was written with (keys are tried newest first)"
            ) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the newest key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise KeyringError(f"the key in {self.origin} does not decrypt the store") from None


def mask(value: str) -> str:
    """'sk-live-1234abcd' → 'sk-…abcd'; short values show nothing of themselves."""
    if len(value) >= 12:
        return f"{value[:3]}…{value[-4:]}"
    if len(value) >= 6:
        return f"…{value[-2:]}"
    return "•••"


def secret_forms(value: str) -> set[str]:
    """The forms a value can take in text we send: plain, URL-encoded, base64."""
    forms = {value, quote(value, safe=""), quote_plus(value)}
    raw = value.encode()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(raw).decode()
        forms.add(encoded)
        forms.add(encoded.rstrip("="))
    return {f for f in forms if len(f) >= MIN_REDACT_LEN}


class Redactor:
    """Removes every known secret value (and its encoded forms) from outgoing text."""

    def __init__(
        self, values: Iterable[str] = (), *, min_len: int = MIN_REDACT_LEN, mask: str = MASK
    ) -> None:
        self.min_len = min_len
        self.mask = mask
        self._forms: list[str] = []
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        forms = set(self._forms)
        for value in values:
            if value and len(value) >= self.min_len:
                forms |= secret_forms(value)
        # longest first, so a value is never half-replaced by a shorter one inside it
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, self.mask)
        return text
