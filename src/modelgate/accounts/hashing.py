"""argon2id password hashes (argon2-cffi), loaded on first use: a gateway process that never sees a
password (an API-only deployment) never loads the library."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher


@cache
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()  # a stateless parameters object


@cache
def _dummy_hash() -> str:
    """Verified against when there is no stored hash, so both paths cost one verification."""
    return _hasher().hash("modelgate-timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def password_matches(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; takes the same time when there is no hash."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        _hasher().verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


def needs_rehash(stored: str) -> bool:
    return _hasher().check_needs_rehash(stored)
