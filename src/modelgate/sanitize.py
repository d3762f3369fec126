"""Text that came from outside, made safe to store, log or relay.

- ``db_text``: what the database accepts in any text column on SQLite and PostgreSQL — valid UTF-8
  (lone surrogates replaced), no NUL, at most ``limit`` characters.
- ``redact_secrets``: key-like strings (``sk-…``, ``AIza…``, bearer tokens, long random tokens)
  replaced by ``[redacted]``; for upstream error text that goes to our log, or to a client whose door
  passes an upstream's wording through (the Anthropic Messages door).
- ``upstream_text``: an upstream error body (bytes) as one line of readable text: its JSON
  ``message`` if it has one, else its text; binary bodies (gzip, images) are summarised, never
  decoded into mojibake; secrets redacted; bounded.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

# Long enough for any message we write; the request_logs.error_message column is TEXT.
ERROR_TEXT_LIMIT = 2000
REDACTED = "[redacted]"

_SECRET_PATTERNS = re.compile(
    "|".join(
        [
            r"(?<![\w-])sk-[A-Za-z0-9_\-*]{4,}",  # OpenAI and Anthropic (sk-ant-…) keys, masked fragments
            r"\bAIza[0-9A-Za-z_\-]{10,}",  # Google API keys
            r"(?i:\bbearer)\s+[A-Za-z0-9_\-.~+/=]{8,}",  # Authorization header values
            r"(?i:\b(?:api[_-]?key|access[_-]?token|auth[_-]?token|secret|password))\s*[=:]\s*[^\s,;\"'&]{6,}",
            r"\bgh[pousr]_[A-Za-z0-9]{20,}",  # GitHub tokens
            r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",  # Slack tokens
            r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}(?:\.[A-Za-z0-9_\-]*)?",  # JWTs
            # Long random-looking tokens: 32+ characters mixing letters and digits (our own keys are
            # 32 hex characters; most providers' keys are longer).
            r"\b(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{32,}\b",
        ]
    )
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BINARY_MAGIC = (
    b"\x1f\x8b",
    b"PK\x03\x04",
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"%PDF",
    b"\x28\xb5\x2f\xfd",
)


def db_text(value: Any, limit: int = ERROR_TEXT_LIMIT) -> str | None:
    """``value`` as text any database column accepts: valid UTF-8, no NUL, at most ``limit``
    characters (cut with an ellipsis). None stays None; non-strings are converted with ``str``."""
    if value is None:
        return None
    if value.__class__ is str and len(value) <= limit and value.isascii() and "\x00" not in value:
        return value  # the common case (ASCII: no surrogates), first
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    else:
        text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (from JSON "\ud800"): not storable as UTF-8
        text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text


def redact_secrets(text: str) -> str:
    """``text`` with every key-like string replaced by ``[redacted]``."""
    return _SECRET_PATTERNS.sub(REDACTED, text)


def looks_binary(raw: bytes) -> bool:
    """Compressed or binary data rather than text (a gzip body an upstream forgot to declare)."""
    if raw.startswith(_BINARY_MAGIC):
        return True
    sample = raw[:512]
    if b"\x00" in sample:
        return True
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not merely a character cut at the sample's end
            return True
        text = sample[: exc.start].decode("utf-8")
    controls = len(_CONTROL.findall(text))
    return controls > max(2, len(text) // 20)


def one_line(text: str, limit: int) -> str:
    text = _CONTROL.sub(" ", text.replace("\r", " ").replace("\n", " ")).strip()
    text = re.sub(r"\s{2,}", " ", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def upstream_text(raw: bytes, *, limit: int = 500) -> str | None:
    """The readable message of an upstream error body, secrets redacted; None when it has none."""
    if not raw.strip():
        return None
    if looks_binary(raw):
        return f"<{len(raw)} bytes of binary data>"
    message = _json_message(raw)
    if message is None:
        message = raw.decode("utf-8", "replace")
    text = one_line(redact_secrets(message), limit)
    return db_text(text, limit) or None


def _json_message(raw: bytes) -> str | None:
    """The human message of an upstream error body (OpenAI, Gemini and Anthropic all nest it)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            msg = err.get("message")
            if isinstance(msg, str):
                return msg
        if isinstance(err, str):
            return err
        msg = body.get("message") if isinstance(body, dict) else None
        if isinstance(msg, str):
            return msg
    return raw.decode("utf-8", "replace")
