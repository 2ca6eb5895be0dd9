"""Masking and the redactor that every outgoing text passes through."""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from controlplane.adapters.secrets import Redactor
from controlplane.domain.variables import mask


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


@given(st.text(min_size=8, max_size=40), st.text(max_size=80), st.text(max_size=80))
def test_a_long_secret_never_survives_anywhere(secret: str, before: str, after: str) -> None:
    assert secret not in Redactor([secret])(before + secret + after) or secret in "***"


@given(st.text(min_size=4, max_size=7), st.text(max_size=80), st.text(max_size=80))
def test_a_short_secret_never_survives_as_a_word(secret: str, before: str, after: str) -> None:
    shown = Redactor([secret])(f"{before} {secret} {after}")
    assert f" {secret} " not in shown or secret in "***"


def test_a_short_secret_is_masked_as_a_word_never_inside_one() -> None:
    """The rule (adapters/secrets.py WHOLE_WORD_BELOW): under 8 characters, a secret is
    masked where it stands alone (between spaces, punctuation, inside a URL), never where
    it is part of a longer word; 8 and more, wherever it occurs."""
    redact = Redactor(["prod", "hunter2", "sk-live-1234abcd"])
    assert redact("Promote #2 of hello to production?") == "Promote #2 of hello to production?"
    assert redact("xprodx prod_1 products") == "xprodx prod_1 products"
    assert redact("mode: prod.") == "mode: ***."
    assert redact("postgres://app:hunter2@db/x") == "postgres://app:***@db/x"
    assert redact("pw=hunter2, again 'hunter2'") == "pw=***, again '***'"
    assert redact("hunter22 xhunter2") == "hunter22 xhunter2"
    # long: inside a longer token too (a URL-encoded '=' ends with a letter: '%3D')
    assert redact("token%3Dsk-live-1234abcdX") == "token%3D***X"
    assert redact("Bearer sk-live-1234abcd") == "Bearer ***"
    # its encoded forms, long enough, go anywhere
    b64 = base64.b64encode(b"hunter2").decode()
    assert redact(f"auth={b64}x") == "auth=***x"
    assert redact(f"q={quote('p@ss w')}") == f"q={quote('p@ss w')}"  # not a secret here
    assert Redactor(["p@ss w"])(f"q={quote('p@ss w')}&z") == "q=***&z"
    # a cut form: a short one only where its start is a word's start
    assert Redactor(["abcdef1"])("see abcde…") == "see ***…"
    assert Redactor(["abcdef1"])("see xabcde…") == "see xabcde…"


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
    st.lists(st.text(min_size=8, max_size=12), min_size=1, max_size=3),
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
