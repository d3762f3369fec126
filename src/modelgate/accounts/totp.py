"""Time-based one-time passwords (RFC 6238: HOTP of RFC 4226 over 30-second steps, HMAC-SHA1, six
digits, what authenticator apps expect) and recovery codes. Pure functions; the sealed secret and
the codes' digests are kept by ``store/totp.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

STEP = 30
DIGITS = 6
# Codes of the step before and after are accepted too (clocks drift, people type slowly).
WINDOW = 1
RECOVERY_CODES = 10


def new_secret() -> str:
    """160 random bits in base32 (RFC 4226's recommended length), as apps take them."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _key(secret: str) -> bytes:
    padded = secret.upper() + "=" * (-len(secret) % 8)
    return base64.b32decode(padded)


def hotp(secret: str, counter: int) -> str:
    mac = hmac.new(_key(secret), struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**DIGITS).zfill(DIGITS)


def step_at(when: float | None = None) -> int:
    return int((time.time() if when is None else when) // STEP)


def totp(secret: str, when: float | None = None) -> str:
    return hotp(secret, step_at(when))


def matching_step(secret: str, code: str, *, after: int = 0, when: float | None = None) -> int | None:
    """The time step ``code`` is valid for (within the window), if later than ``after`` (the last step
    accepted: a code works once); else None."""
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isdigit():
        return None
    now = step_at(when)
    for step in range(now - WINDOW, now + WINDOW + 1):
        if step > after and hmac.compare_digest(hotp(secret, step), code):
            return step
    return None


def provisioning_uri(secret: str, *, account: str, issuer: str = "modelgate") -> str:
    """The ``otpauth://`` URI authenticator apps import (also shown as text to type in)."""
    query = urlencode(
        {"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS, "period": STEP}
    )
    return f"otpauth://totp/{quote(issuer)}:{quote(account)}?{query}"


def new_recovery_codes(count: int = RECOVERY_CODES) -> list[str]:
    """Ten codes like ``k7qm-2xwd-9hfa`` (60 random bits each)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(alphabet) for _ in range(12))
        codes.append(f"{raw[:4]}-{raw[4:8]}-{raw[8:]}")
    return codes


def normalise_recovery_code(code: str) -> str:
    return "".join(c for c in code.lower() if c.isalnum())


def recovery_digest(code: str) -> str:
    return hashlib.sha256(normalise_recovery_code(code).encode()).hexdigest()
