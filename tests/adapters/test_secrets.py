"""Masking and the redactor that every outgoing text passes through."""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from controlplane.adapters.secrets import Redactor, mask


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


PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ\n"
    "-----END PRIVATE KEY-----\n"
)


def test_each_line_of_a_multi_line_secret_is_hidden_alone() -> None:
    redact = Redactor([PEM])
    body = PEM.splitlines()[1:3]
    shown = redact("\n".join(["app started", *body, "app ready"]))
    assert shown.splitlines() == ["app started", "***", "***", "app ready"]


def test_repr_and_json_forms_are_hidden_and_their_quotes_stay() -> None:
    secret = "tok\"en's\nline-two ✓"
    redact = Redactor([secret])
    for printed in (repr(secret), json.dumps(secret), json.dumps(secret, ensure_ascii=False)):
        shown = redact(f"config: {printed} done")
        assert shown == f"config: {printed[0]}***{printed[-1]} done", (printed, shown)
    assert redact(json.dumps({"key": PEM})) == json.dumps({"key": PEM})  # not a secret here
    assert "MIIEvQ" not in Redactor([PEM])(json.dumps({"key": PEM}))
    assert "MIIEvQ" not in Redactor([PEM])(repr({"key": PEM}))


def test_a_secret_cut_short_before_a_cut_mark_is_hidden() -> None:
    secret = "sk-prod-VerySecret-0123"
    redact = Redactor([secret])
    assert redact("#3 abc1234 rotate sk-prod-Ve…") == "#3 abc1234 rotate ***…"
    assert redact(f"bad value '{secret[:12]}...") == "bad value '***..."
    assert redact("building… sk-p") == "building… sk-p"  # no cut right after it
    assert redact("loading…") == "loading…"


def test_html_redaction_leaves_tags_and_entities_alone() -> None:
    redact = Redactor(["code", "a<b&c", "https://x.example/tok3n"])
    text = (
        '<b>Config</b>\n<code>API=•••</code> <pre><code class="language-code">code</code></pre>'
        ' a&lt;b&amp;c &amp; <a href="https://x.example/tok3n">link</a>'
    )
    shown = redact.html(text)
    assert shown == (
        '<b>Config</b>\n<code>API=•••</code> <pre><code class="language-code">***</code></pre>'
        ' *** &amp; <a href="***">link</a>'
    )


def test_a_longer_form_wins_over_a_shorter_one_inside_it() -> None:
    redact = Redactor(["abcdef", "abcdefghij"])
    assert redact("xx abcdefghij yy abcdef") == "xx *** yy ***"


@given(
    st.lists(st.text(min_size=4, max_size=12), min_size=1, max_size=3),
    st.lists(st.text(max_size=30), max_size=5),
)
def test_html_redaction_never_touches_a_tag_and_hides_every_value(
    secrets: list[str], words: list[str]
) -> None:
    tags = ["<b>", "</b>", "<code>", "</code>", '<pre><code class="language-py">', "</code></pre>"]
    pieces = [html.escape(w, quote=False) for w in [*words, *secrets]]
    text = "".join(tag + piece for tag, piece in zip(tags * 3, pieces, strict=False))
    shown = Redactor(secrets).html(text)
    assert re.findall(r"<[^<>]*>", shown) == re.findall(r"<[^<>]*>", text)
    plain = html.unescape(re.sub(r"<[^<>]*>", "\x00", shown))
    for secret in secrets:
        assert all(secret not in part for part in plain.split("\x00")) or secret in "***"
