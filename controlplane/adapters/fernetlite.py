"""Fernet decryption for run-slot's start, without importing cryptography.

Every start of an app pays run-slot's start, and `cryptography.fernet` alone takes 30-50 ms
to import. A Fernet token is base64url(0x80 | 8-byte time | 16-byte IV | AES-128-CBC
ciphertext | HMAC-SHA256 of what precedes it); a key is base64url(16-byte signing key |
16-byte encryption key). Here the HMAC is checked with the standard library (hashlib is
OpenSSL's) and the ciphertext decrypted by OpenSSL's libcrypto through ctypes: the library
Python's own hashlib has loaded already. Only the standard library is imported.

Anything out of the ordinary answers None (no libcrypto, a malformed key, a token no key
opens): the caller then takes the full way (the store with cryptography's Fernet), which
decides and says what is wrong. Nothing here encrypts: tokens are only ever made by
adapters.secrets.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import functools
import hmac
from collections.abc import Sequence

LIBS = ("libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so", "libcrypto.3.dylib")
VERSION = 0x80
HEADER = 1 + 8 + 16  # version, time, IV
MAC = 32
BLOCK = 16

Key = tuple[bytes, bytes]  # (signing key, encryption key)


def parse_key(text: str) -> Key | None:
    """A Fernet key's two halves; None when it is not 32 url-safe base64-encoded bytes."""
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        return None
    return (raw[:16], raw[16:]) if len(raw) == 32 else None


def decrypt(token: str, keys: Sequence[Key]) -> str | None:
    """The text inside a Fernet token (keys tried in order); None when this way cannot
    tell (see the module's docstring)."""
    try:
        data = base64.urlsafe_b64decode(token.encode())
    except (binascii.Error, ValueError):
        return None
    size = len(data) - HEADER - MAC
    if data[:1] != bytes([VERSION]) or size < BLOCK or size % BLOCK:
        return None
    body, mac = data[:-MAC], data[-MAC:]
    for signing, encryption in keys:
        if hmac.compare_digest(hmac.digest(signing, body, "sha256"), mac):
            plain = aes_cbc_decrypt(encryption, data[9:HEADER], data[HEADER:-MAC])
            try:
                return plain.decode() if plain is not None else None
            except UnicodeDecodeError:
                return None
    return None


def aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes | None:
    """AES-128-CBC with PKCS#7 padding removed, by libcrypto; None when it is not there
    or the padding is wrong."""
    lib = libcrypto()
    if lib is None:
        return None
    ctx = lib.EVP_CIPHER_CTX_new()
    if not ctx:
        return None
    try:
        out = ctypes.create_string_buffer(len(data) + BLOCK)
        n, m = ctypes.c_int(0), ctypes.c_int(0)
        start = ctypes.addressof(out)
        if lib.EVP_DecryptInit_ex(ctx, lib.EVP_aes_128_cbc(), None, key, iv) != 1:
            return None
        if lib.EVP_DecryptUpdate(ctx, start, ctypes.byref(n), data, len(data)) != 1:
            return None
        if lib.EVP_DecryptFinal_ex(ctx, start + n.value, ctypes.byref(m)) != 1:
            return None
        return out.raw[: n.value + m.value]
    finally:
        lib.EVP_CIPHER_CTX_free(ctx)


@functools.cache
def libcrypto() -> ctypes.CDLL | None:
    """OpenSSL's libcrypto with the signatures used here (looked up once); None when no
    library of those names has them."""
    for name in LIBS:
        try:
            return _declare(ctypes.CDLL(name))
        except (OSError, AttributeError):
            continue
    return None


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    ptr, num = ctypes.c_void_p, ctypes.c_int
    lib.EVP_CIPHER_CTX_new.restype = ptr
    lib.EVP_CIPHER_CTX_new.argtypes = []
    lib.EVP_CIPHER_CTX_free.restype = None
    lib.EVP_CIPHER_CTX_free.argtypes = [ptr]
    lib.EVP_aes_128_cbc.restype = ptr
    lib.EVP_aes_128_cbc.argtypes = []
    lib.EVP_DecryptInit_ex.restype = num
    lib.EVP_DecryptInit_ex.argtypes = [ptr, ptr, ptr, ctypes.c_char_p, ctypes.c_char_p]
    lib.EVP_DecryptUpdate.restype = num
    lib.EVP_DecryptUpdate.argtypes = [ptr, ptr, ctypes.POINTER(num), ctypes.c_char_p, num]
    lib.EVP_DecryptFinal_ex.restype = num
    lib.EVP_DecryptFinal_ex.argtypes = [ptr, ptr, ctypes.POINTER(num)]
    return lib
