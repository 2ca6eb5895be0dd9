"""Masking and the redactor that every outgoing text passes through."""

from __future__ import annotations

import base64
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from controlplane.secrets import Redactor, mask


def test_mask_shows_little() -> None:
    assert mask("sk-live-1234abcd") == "sk-…abcd"
    assert mask("abcdefgh") == "…gh"
    assert mask("abc") == "•••"


def test_redactor_hides_plain_url_encoded_and_base64_forms() -> None:
    secret = "p@ss w/rd+42!"
    redact = Redactor([secret, "xy"])  # "xy" is too short to hide without mangling text
    text = (
        f"plain {secret} url {quote(secret, safe='')} "
        f"b64 {base64.b64encode(secret.encode()).decode()} "
        f"b64url {base64.urlsafe_b64encode(secret.encode()).decode().rstrip('=')} xy"
    )
    shown = redact(text)
    assert secret not in shown and quote(secret, safe="") not in shown
    assert base64.b64encode(secret.encode()).decode() not in shown
    assert shown.endswith("xy") and shown.count("***") == 4


@given(st.text(min_size=4, max_size=40), st.text(max_size=80), st.text(max_size=80))
def test_a_secret_never_survives(secret: str, before: str, after: str) -> None:
    assert secret not in Redactor([secret])(before + secret + after) or secret in "***"
