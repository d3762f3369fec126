"""Account and key administration (keyword-only service functions).

Every function takes an open ``Conn`` and runs inside the caller's transaction, so a
caller (API router, web UI, CLI) composes them atomically with ``async with engine.begin()``.

Accounts:  ``create_account``, ``verify_password``, ``set_password``, ``get_account``,
           ``get_or_create_account``, ``top_up``.
Keys:      ``create_key`` here; listing, updating and deleting in ``accounts.manage``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from modelgate.accounts.hashing import hash_password, needs_rehash, password_matches
from modelgate.accounts.keys import KEY_SCOPES, generate_key, key_digest
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.errors import ConflictError, InvalidRequestError
from modelgate.store import accounts as store
from modelgate.store import keys as key_rows
from modelgate.store.db import Conn
from modelgate.store.organisations import create_personal_org, default_project

MIN_PASSWORD_LENGTH = 8
LIMIT_RETENTIONS = ("no_reset", "day", "week", "month")


@dataclass(frozen=True, slots=True)
class NewKey:
    key: str
    key_id: int
    prefix: str
    account_id: int


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or email.startswith("@") or email.endswith("@"):
        raise InvalidRequestError("Enter a valid email address.", param="email")
    return email


async def create_account(conn: Conn, *, email: str, password: str, is_admin: bool = False) -> int:
    """Sign up: a new account with an argon2id password hash and a zero balance; returns its id.

    Raises ``InvalidRequestError`` (400) for a malformed email or a password shorter than
    ``MIN_PASSWORD_LENGTH``, and ``ConflictError`` (409) when the email is taken. An account created
    earlier without a password (CLI ``admin create-key``) is claimed by its first sign-up instead.
    """
    email = normalise_email(email)
    _check_password(password)
    row = await store.login_row(conn, email=email)
    if row is not None:
        if row[1] is not None:
            raise ConflictError("An account with this email already exists.", param="email")
        await store.set_password_hash(conn, account_id=row[0], hashed=hash_password(password))
        return row[0]
    account_id = await store.insert_account(
        conn, email=email, password_hash=hash_password(password), is_admin=is_admin
    )
    await create_personal_org(conn, account_id=account_id, name=email)
    return account_id


async def verify_password(conn: Conn, *, email: str, password: str) -> int | None:
    """The account id when ``password`` is right for ``email``, else None (unknown email included).

    Takes about the same time whether or not the account exists, and upgrades the stored hash when
    argon2's parameters have changed.
    """
    email = email.strip().lower()
    row = await store.login_row(conn, email=email)
    stored = row[1] if row is not None and row[1] else None
    if not password_matches(stored, password) or row is None or stored is None:
        return None
    if needs_rehash(stored):
        await store.set_password_hash(conn, account_id=row[0], hashed=hash_password(password))
    return row[0]


async def set_password(conn: Conn, *, account_id: int, password: str) -> None:
    """Replace an account's password (400 when too short)."""
    _check_password(password)
    await store.set_password_hash(conn, account_id=account_id, hashed=hash_password(password))


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequestError(
            f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.", param="password"
        )


def check_key_settings(*, scopes: list[str] | None, limit_retention: str | None) -> None:
    """400 for an unknown scope or limit retention."""
    for scope in scopes or ():
        if scope not in KEY_SCOPES:
            raise InvalidRequestError(
                f"Unknown scope {scope!r}; allowed: {', '.join(KEY_SCOPES)}", param="scopes"
            )
    if limit_retention is not None and limit_retention not in LIMIT_RETENTIONS:
        raise InvalidRequestError(
            f"Unknown limit retention {limit_retention!r}; allowed: {', '.join(LIMIT_RETENTIONS)}",
            param="limit.retention",
        )


async def get_or_create_account(conn: Conn, *, email: str, is_admin: bool = False) -> int:
    email = email.strip().lower()
    row = await store.login_row(conn, email=email)
    if row is not None:
        return row[0]
    account_id = await store.insert_account(conn, email=email, is_admin=is_admin)
    await create_personal_org(conn, account_id=account_id, name=email)
    return account_id


async def create_key(
    conn: Conn,
    *,
    account_id: int,
    name: str | None = None,
    management: bool = False,
    scopes: list[str] | None = None,
    limit_retention: str | None = None,
    limit_credits: int | None = None,
    project_id: int | None = None,
    member_id: int | None = None,
    allowed_models: list[str] | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    expires_at: datetime | None = None,
    cache_mode: str | None = None,
    service_account_id: int | None = None,
) -> NewKey:
    """A new key (the raw value is returned only here). ``scopes=None`` allows every scope;
    ``limit_credits`` with ``limit_retention`` (no_reset|day|week|month) caps its spend per period.
    ``account_id`` is the organisation (its pool); the key joins ``project_id`` (default: the
    organisation's default project) as ``member_id``'s key (default: the account itself, the owner
    of a personal organisation); a project service account's key (``service_account_id``) has no
    member."""
    check_key_settings(scopes=scopes, limit_retention=limit_retention)
    if limit_credits is not None and limit_retention is None:
        limit_retention = "no_reset"
    for _ in range(5):
        raw = generate_key()
        prefix = raw[:8]
        if not await key_rows.prefix_taken(conn, prefix=prefix):
            break
    else:  # pragma: no cover - 2^32 prefixes
        raise RuntimeError("could not find a free key prefix")
    key_id = await key_rows.insert_key(
        conn,
        account_id=account_id,
        prefix=prefix,
        digest=key_digest(raw),
        name=name,
        is_management=management,
        scopes=scopes,
        limit_retention=limit_retention,
        limit_credits=limit_credits,
        project_id=project_id if project_id is not None else await default_project(conn, org_id=account_id),
        member_id=None
        if service_account_id is not None
        else (member_id if member_id is not None else account_id),
        service_account_id=service_account_id,
        allowed_models=allowed_models,
        rpm=rpm,
        tpm=tpm,
        expires_at=expires_at,
        cache_mode=cache_mode,
    )
    return NewKey(key=raw, key_id=key_id, prefix=prefix, account_id=account_id)


async def top_up(
    conn: Conn,
    *,
    account_id: int,
    usd: float,
    description: str = "top-up",
    kind: str = "topup",
    reference_id: str | None = None,
) -> int:
    """Add credits to an account: one ledger row and the balance, in the caller's transaction.

    ``kind`` is ``topup`` (a payment), ``bonus`` (free credits) or ``adjustment``; ``reference_id``
    (e.g. a payment transaction id) must be unique, which makes a retried top-up fail instead of
    paying twice. Returns the credits added.
    """
    credits = round(usd * CREDITS_PER_USD)
    if credits <= 0:
        raise ValueError("a top-up must be positive")
    if kind not in ("topup", "bonus", "adjustment", "refund"):
        raise ValueError(f"unknown top-up kind {kind!r}")
    await store.add_credits(
        conn,
        account_id=account_id,
        credits=credits,
        kind=kind,
        description=description,
        reference_id=reference_id,
    )
    return credits


async def account_count(conn: Conn) -> int:
    return int(await store.any_account(conn))
