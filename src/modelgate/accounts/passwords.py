"""Sign-up (argon2id hashes from ``accounts.hashing``), keyword-only like ``accounts.service``.

Used by the web UI's sign-up form; log-in checks go through ``accounts.service.verify_password``.
Sign-up does not reveal whether an email is registered: for a taken email it costs the same
password hash and returns None, and the form answers both cases with the same page.
"""

from __future__ import annotations

import re

from modelgate.accounts.hashing import hash_password
from modelgate.accounts.service import get_or_create_account, top_up
from modelgate.store import accounts as store
from modelgate.store.db import Conn

MIN_PASSWORD = 8
MAX_EMAIL = 320
EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,255}\.[^@\s\x00-\x1f\x7f]{1,63}$")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def plausible_email(email: str) -> bool:
    """Short enough and free of control characters (NUL included): safe to look up."""
    return len(email) <= MAX_EMAIL and not any(ord(c) < 32 or ord(c) == 127 for c in email)


def validate_sign_up(email: str, password: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    normalised = normalise_email(email)
    if len(normalised) > MAX_EMAIL or not EMAIL_RE.match(normalised):
        errors["email"] = "Enter a valid email address, like name@example.com."
    if len(password) < MIN_PASSWORD:
        errors["password"] = f"Use at least {MIN_PASSWORD} characters."
    elif len(password) > 1024:
        errors["password"] = "Use at most 1024 characters."
    elif "\x00" in password:
        errors["password"] = "The password cannot contain a NUL character."
    return errors


async def sign_up(conn: Conn, *, email: str, password: str, credits_usd: float = 0.0) -> int | None:
    """Create an account with a password (and ``credits_usd`` of sign-up credits); None when the
    email is taken, after the same work (one password hash), so that timing does not tell."""
    email = normalise_email(email)
    hashed = hash_password(password)
    if await store.login_row(conn, email=email) is not None:
        return None
    account_id = await get_or_create_account(conn, email=email)
    await store.set_password_hash(conn, account_id=account_id, hashed=hashed)
    if credits_usd > 0:
        await top_up(
            conn, account_id=account_id, usd=credits_usd, description="sign-up credits", kind="bonus"
        )
    return account_id
