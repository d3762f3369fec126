"""Sign-up and password check (argon2id via argon2-cffi), keyword-only like ``accounts.service``.

Used by the web UI's sign-up and log-in forms; they only touch ``accounts.password_hash``.
"""

from __future__ import annotations

import re
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.accounts.service import get_or_create_account
from modelgate.store.schema import Account

MIN_PASSWORD = 8
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")

_hasher = PasswordHasher()  # stateless parameters object; no per-app state


@cache
def _dummy_hash() -> str:
    """Verified against when the email is unknown, so both paths take an argon2 verification."""
    return _hasher.hash("modelgate-timing-equaliser")


class SignUpError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def normalise_email(email: str) -> str:
    return email.strip().lower()


def validate_sign_up(email: str, password: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not EMAIL_RE.match(normalise_email(email)):
        errors["email"] = "Enter a valid email address, like name@example.com."
    if len(password) < MIN_PASSWORD:
        errors["password"] = f"Use at least {MIN_PASSWORD} characters."
    elif len(password) > 1024:
        errors["password"] = "Use at most 1024 characters."
    return errors


async def sign_up(conn: AsyncConnection, *, email: str, password: str) -> int:
    """Create an account with a password; raises ``SignUpError`` if the email is taken."""
    email = normalise_email(email)
    row = (await conn.execute(select(Account.id).where(Account.email == email))).first()
    if row is not None:
        raise SignUpError("email", "An account with this email already exists. Log in instead.")
    account_id = await get_or_create_account(conn, email=email)
    await conn.execute(
        update(Account).where(Account.id == account_id).values(password_hash=_hasher.hash(password))
    )
    return account_id


async def verify_password(conn: AsyncConnection, *, email: str, password: str) -> int | None:
    """The account id when ``password`` is right; None otherwise (same cost either way)."""
    row = (
        await conn.execute(
            select(Account.id, Account.password_hash).where(Account.email == normalise_email(email))
        )
    ).first()
    stored = row.password_hash if row is not None and row.password_hash else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or not row.password_hash:
        return None
    if _hasher.check_needs_rehash(stored):
        await conn.execute(
            update(Account).where(Account.id == row.id).values(password_hash=_hasher.hash(password))
        )
    return int(row.id)
