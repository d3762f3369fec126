"""sanitize.py: what the database stores and what the log (or a pass-through door) shows of an
upstream's text — valid UTF-8 without NUL, bounded, secrets redacted, binary bodies summarised."""

from __future__ import annotations

import gzip

import orjson
import pytest

from modelgate.sanitize import REDACTED, db_text, looks_binary, redact_secrets, upstream_text


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-Abc123def456ghi789",
        "sk-ant-api03-AAAAbbbbCCCCdddd",
        "sk-****************abcd",
        "AIzaSyA-1234567890abcdefghijkl",
        "3f0c9d2e8b1a4c7d9e6f5a4b3c2d1e0f",  # a modelgate key: 32 hex characters
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc",
    ],
)
def test_key_like_strings_are_redacted(secret: str) -> None:
    text = redact_secrets(f"Incorrect API key provided: {secret}. You can find your key elsewhere.")
    assert secret not in text and REDACTED in text
    assert text.startswith("Incorrect API key provided: ") and text.endswith("find your key elsewhere.")


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens: must be at most 4096",
        "Missing required key: messages",
        "The model `gpt-4o-2024-08-06` does not exist",
        "risk-free task-sk-like words stay",
        "Authorization header is missing",
    ],
)
def test_ordinary_wording_is_kept(text: str) -> None:
    assert redact_secrets(text) == text


def test_bearer_and_assignments_are_redacted() -> None:
    text = redact_secrets("sent Authorization: Bearer abcdefgh12345678 and api_key=hunter2hunter2")
    assert "abcdefgh12345678" not in text and "hunter2hunter2" not in text


def test_db_text_is_storable_everywhere() -> None:
    assert db_text("a\x00b") == "a\ufffdb"
    assert db_text("lone \ud800 surrogate") == "lone ? surrogate"
    assert db_text(b"\xff\xfebytes") == "\ufffd\ufffdbytes"
    assert db_text({"a": 1}) == "{'a': 1}"
    assert db_text(None) is None
    cut = db_text("x" * 5000, 100)
    assert cut is not None and len(cut) == 100 and cut.endswith("…")


def test_upstream_text_reads_the_message_and_hides_the_rest() -> None:
    body = orjson.dumps({"error": {"message": "Incorrect API key provided: sk-proj-abcd1234efgh"}})
    assert upstream_text(body) == f"Incorrect API key provided: {REDACTED}"
    assert upstream_text(b'[{"error": {"message": "quota\\nexceeded"}}]') == "quota exceeded"
    assert (
        upstream_text(b"<html>\n<h1>502 Bad Gateway</h1>\n</html>")
        == "<html> <h1>502 Bad Gateway</h1> </html>"
    )
    gz = gzip.compress(body)
    assert looks_binary(gz) and upstream_text(gz) == f"<{len(gz)} bytes of binary data>"
    assert upstream_text(b"") is None and upstream_text(b"  \n") is None
    long = upstream_text(b"y" * 10_000, limit=50)
    assert long is not None and len(long) == 50


def test_utf8_cut_at_the_sample_end_is_still_text() -> None:
    raw = ("é" * 300).encode()  # 600 bytes: the 512-byte sample ends inside no character, but...
    assert not looks_binary(raw)
    assert not looks_binary(("x" + "é" * 300).encode())  # ...here it ends in the middle of one
