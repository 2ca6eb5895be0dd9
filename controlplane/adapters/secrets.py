"""The master key, encryption of secret values, masking, and redaction of outgoing text.

Keys are Fernet keys, newest first: MultiFernet encrypts with the first and decrypts with
any, so a rotation is "put a new key first, re-encrypt everything, drop the old ones".
"""

from __future__ import annotations

import base64
import functools
import html
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from controlplane.adapters.files import write_atomic
from controlplane.errors import KeyMissing, KeyringError
from controlplane.i18n import tr
from controlplane.settings import Settings

MIN_REDACT_LEN = 4
MASK = "***"
# A form at least this long is masked wherever it occurs, even inside a longer word (a
# token glued to '%3D' or to a prefix); a shorter one only as a whole word: not next to a
# letter, a digit or '_' (a 5-letter password never eats a word that holds its letters).
WHOLE_WORD_BELOW = 8


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
                tr(
                    "key {n} in {origin} is not a Fernet key (32 url-safe base64-encoded "
                    "bytes; make one with `controlplane key generate`)",
                    n=i,
                    origin=origin,
                )
            ) from None
    if not fernets:
        raise KeyringError(tr("{origin} holds no key", origin=origin))
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
        """CONTROLPLANE_KEY when set; else $DATA/secret.key, generated (0600) on first use:
        only while there is no store yet (a new key never opens an existing store, and
        making one would turn a lost key into a wrong one)."""
        if settings.keys:
            return cls(list(settings.keys), "CONTROLPLANE_KEY")
        path = settings.key_path
        if not path.exists() and settings.store_path.exists():
            raise KeyMissing(
                tr(
                    "the store's key is missing: neither {path} nor CONTROLPLANE_KEY",
                    path=str(path),
                )
            )
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
                tr(
                    "the key in {origin} does not decrypt the store; use the key the store "
                    "was written with (keys are tried newest first)",
                    origin=self.origin,
                )
            ) from None

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the newest key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise KeyringError(
                tr("the key in {origin} does not decrypt the store", origin=self.origin)
            ) from None


def secret_forms(value: str, min_len: int = MIN_REDACT_LEN) -> set[str]:
    """Every form a value can take in text we send, each at least `min_len` long.

    The value itself, URL-encoded and base64 (standard and URL-safe, with and without
    padding); as `repr()` and JSON print it (escaped quotes, newlines and non-ASCII); and
    each line of a multi-line value, alone and escaped (a PEM key whose first line has
    scrolled out of a 30-line window)."""
    forms = {value, quote(value, safe=""), quote_plus(value)}
    raw = value.encode()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        encoded = encode(raw).decode()
        forms.add(encoded)
        forms.add(encoded.rstrip("="))
    forms |= _escaped(value)
    lines = value.splitlines()
    if len(lines) > 1:
        for line in lines:
            line = line.strip()
            if len(line) >= min_len:
                forms.add(line)
                forms |= _escaped(line)
    return {f for f in forms if len(f) >= min_len}


def _escaped(value: str) -> set[str]:
    """The inside of repr() and of JSON (ASCII-only and not): it matches whether or not
    the quotes are printed, and the quotes stay ('***', "***")."""
    quoted = (repr(value), json.dumps(value), json.dumps(value, ensure_ascii=False))
    return {q[1:-1] for q in quoted}


class Redactor:
    """Replaces every form of the secret values it is given with a mask, in one pass: a
    form of `WHOLE_WORD_BELOW` characters or more wherever it occurs, a shorter one only
    where it stands as a whole word (`secret abcd`: 'key abcd.' → 'key ***.', 'xabcdx' and
    'abcd_1' stay).

    The values come from outside (the store decides which values are secret). Finding which
    forms occur is one `in` per form (C speed); only the forms found go into a regular
    expression, longest first, so a value is never half-replaced by a shorter form inside
    it and a replacement never creates a new match. One alternation of every form would be
    20-25 times slower (Python's `re` tries each alternative at each position)."""

    def __init__(
        self, values: Iterable[str] = (), *, min_len: int = MIN_REDACT_LEN, mask: str = MASK
    ) -> None:
        self.min_len = min_len
        self.mask = mask
        self._forms: tuple[str, ...] = ()
        self._grams: frozenset[str] = frozenset()
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        forms = set(self._forms)
        for value in values:
            if value and len(value) >= self.min_len:
                forms |= secret_forms(value, self.min_len)
        self._forms = tuple(sorted(forms, key=lambda f: (-len(f), f)))
        # every run of min_len characters in a form: a cut form ends with one of them
        n = self.min_len
        self._grams = frozenset(f[i : i + n] for f in self._forms for i in range(len(f) - n + 1))

    def __call__(self, text: str) -> str:
        found = tuple(form for form in self._forms if form in text)
        if found:
            text = _pattern(found).sub(self.mask, text)
        if self._forms and ("…" in text or "..." in text):
            out, pos = [], 0
            for cut in CUT_RE.finditer(text):
                out += [self._cut_end(text[pos : cut.start()]), cut.group()]
                pos = cut.end()
            text = "".join(out) + text[pos:]
        return text

    def _cut_end(self, before: str) -> str:
        """A value cut short and marked with '…' or '...' (a clipped commit subject, a long
        line, an error quoting a value): the start of a form just before the mark is masked
        too."""
        if before[-self.min_len :] not in self._grams:
            return before  # the usual case ("Loading..."): no form ends a cut here
        longest = 0
        for form in self._forms:
            if len(form) <= max(longest, self.min_len):
                break  # forms are longest first: none left that could cut longer
            head, window = form[: self.min_len], before[-(len(form) - 1) :]
            start = window.find(head)
            while start != -1:
                at = start - len(window)
                if form.startswith(window[start:]) and _starts_word(form, before, at):
                    longest = max(longest, len(window) - start)
                    break  # the leftmost start is the longest cut of this form
                start = window.find(head, start + 1)
        return before[: len(before) - longest] + self.mask if longest else before

    def html(self, text: str) -> str:
        """The same for Telegram HTML: only text and link targets are redacted, never a tag
        (a secret `code` must not turn `<code>` into `<***>`); entities are decoded first, so
        a secret holding `<` or `&` is found, and the result is escaped again."""
        if not self._forms:
            return text
        out: list[str] = []
        pos = 0
        for tag in TAG_RE.finditer(text):
            out.append(self._html_text(text[pos : tag.start()]))
            out.append(HREF_RE.sub(self._href, tag.group()))
            pos = tag.end()
        out.append(self._html_text(text[pos:]))
        return "".join(out)

    def _html_text(self, part: str) -> str:
        plain = html.unescape(part)
        hidden = self(plain)
        return part if hidden == plain else html.escape(hidden, quote=False)

    def _href(self, match: re.Match[str]) -> str:
        plain = html.unescape(match["value"])
        hidden = self(plain)
        if hidden == plain:
            return match.group()
        return f"{match['attr']}{match['q']}{html.escape(hidden)}{match['q']}"


TAG_RE = re.compile(r"<[^<>]*>")
CUT_RE = re.compile(r"…|\.\.\.")  # how texts mark a cut (history.clip, render, errors)
HREF_RE = re.compile(r"""(?P<attr>\bhref\s*=\s*)(?P<q>["'])(?P<value>.*?)(?P=q)""", re.IGNORECASE)


def _starts_word(form: str, text: str, at: int) -> bool:
    """Whether `form` may start at `text[at]` (negative: from the end): a long form
    anywhere, a short one not right after a letter, a digit or '_'."""
    if len(form) >= WHOLE_WORD_BELOW or not _WORD_RE.match(form[0]):
        return True
    index = at % len(text) if text else 0
    return index == 0 or not _WORD_RE.match(text[index - 1])


_WORD_RE = re.compile(r"\w")


def _whole(form: str) -> str:
    """A form's expression: a short one must not touch a word character on the side where
    it starts or ends with one (see WHOLE_WORD_BELOW)."""
    escaped = re.escape(form)
    if len(form) >= WHOLE_WORD_BELOW:
        return escaped
    before = r"(?<!\w)" if _WORD_RE.match(form[0]) else ""
    after = r"(?!\w)" if _WORD_RE.match(form[-1]) else ""
    return f"{before}{escaped}{after}"


@functools.lru_cache(maxsize=256)
def _pattern(forms: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(_whole(f) for f in forms))
