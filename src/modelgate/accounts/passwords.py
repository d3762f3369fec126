"""Sign-up (argon2id hashes from ``accounts.hashing``), keyword-only like ``accounts.service``.

Used by the web UI's sign-up form; log-in checks go through ``accounts.service.verify_password``.
"""

from __future__ import annotations

import re

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.accounts.hashing import hash_password
from modelgate.accounts.service import get_or_create_account
from modelgate.store.schema import Account

MIN_PASSWORD = 8
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


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
        update(Account).where(Account.id == account_id).values(password_hash=hash_password(password))
    )
    return account_id
