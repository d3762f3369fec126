"""Account and key administration (keyword-only service functions).

Every function takes an open ``AsyncConnection`` and runs inside the caller's transaction, so a
caller (API router, web UI, CLI) composes them atomically with ``async with engine.begin()``.

Accounts:  ``create_account``, ``verify_password``, ``set_password``, ``get_account``,
           ``get_or_create_account``, ``top_up``.
Keys:      ``create_key`` here; listing, updating and deleting in ``accounts.manage``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.accounts.hashing import hash_password, needs_rehash, password_matches
from modelgate.accounts.keys import KEY_SCOPES, generate_key, key_digest
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.errors import ConflictError, InvalidRequestError
from modelgate.store.organisations import create_personal_org, default_project
from modelgate.store.schema import Account, ApiKey, LedgerEntry

MIN_PASSWORD_LENGTH = 8
LIMIT_RETENTIONS = ("no_reset", "day", "week", "month")


@dataclass(frozen=True, slots=True)
class AccountInfo:
    id: int
    email: str
    is_admin: bool
    balance_credits: int
    created_at: datetime


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


async def create_account(conn: AsyncConnection, *, email: str, password: str, is_admin: bool = False) -> int:
    """Sign up: a new account with an argon2id password hash and a zero balance; returns its id.

    Raises ``InvalidRequestError`` (400) for a malformed email or a password shorter than
    ``MIN_PASSWORD_LENGTH``, and ``ConflictError`` (409) when the email is taken. An account created
    earlier without a password (CLI ``admin create-key``) is claimed by its first sign-up instead.
    """
    email = normalise_email(email)
    _check_password(password)
    row = (
        await conn.execute(select(Account.id, Account.password_hash).where(Account.email == email))
    ).first()
    if row is not None:
        if row[1] is not None:
            raise ConflictError("An account with this email already exists.", param="email")
        await conn.execute(
            update(Account).where(Account.id == row[0]).values(password_hash=hash_password(password))
        )
        return int(row[0])
    result = await conn.execute(
        insert(Account)
        .values(email=email, password_hash=hash_password(password), is_admin=is_admin, balance_credits=0)
        .returning(Account.id)
    )
    account_id = int(result.scalar_one())
    await create_personal_org(conn, account_id=account_id, name=email)
    return account_id


async def verify_password(conn: AsyncConnection, *, email: str, password: str) -> int | None:
    """The account id when ``password`` is right for ``email``, else None (unknown email included).

    Takes about the same time whether or not the account exists, and upgrades the stored hash when
    argon2's parameters have changed.
    """
    email = email.strip().lower()
    row = (
        await conn.execute(select(Account.id, Account.password_hash).where(Account.email == email))
    ).first()
    stored = row[1] if row is not None and row[1] else None
    if not password_matches(stored, password) or row is None or stored is None:
        return None
    if needs_rehash(stored):
        await conn.execute(
            update(Account).where(Account.id == row[0]).values(password_hash=hash_password(password))
        )
    return int(row[0])


async def set_password(conn: AsyncConnection, *, account_id: int, password: str) -> None:
    """Replace an account's password (400 when too short)."""
    _check_password(password)
    await conn.execute(
        update(Account).where(Account.id == account_id).values(password_hash=hash_password(password))
    )


async def get_account(conn: AsyncConnection, *, account_id: int) -> AccountInfo | None:
    """The account's email, admin flag and available balance (credits not held by requests in flight)."""
    row = (
        await conn.execute(
            select(
                Account.id, Account.email, Account.is_admin, Account.balance_credits, Account.created_at
            ).where(Account.id == account_id)
        )
    ).first()
    if row is None:
        return None
    return AccountInfo(int(row[0]), row[1], bool(row[2]), int(row[3]), row[4])


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


async def get_or_create_account(conn: AsyncConnection, *, email: str, is_admin: bool = False) -> int:
    email = email.strip().lower()
    row = (await conn.execute(select(Account.id).where(Account.email == email))).first()
    if row is not None:
        return int(row[0])
    result = await conn.execute(
        insert(Account).values(email=email, is_admin=is_admin, balance_credits=0).returning(Account.id)
    )
    account_id = int(result.scalar_one())
    await create_personal_org(conn, account_id=account_id, name=email)
    return account_id


async def create_key(
    conn: AsyncConnection,
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
) -> NewKey:
    """A new key (the raw value is returned only here). ``scopes=None`` allows every scope;
    ``limit_credits`` with ``limit_retention`` (no_reset|day|week|month) caps its spend per period.
    ``account_id`` is the organisation (its pool); the key joins ``project_id`` (default: the
    organisation's default project) as ``member_id``'s key (default: the account itself, the owner
    of a personal organisation)."""
    check_key_settings(scopes=scopes, limit_retention=limit_retention)
    if limit_credits is not None and limit_retention is None:
        limit_retention = "no_reset"
    for _ in range(5):
        raw = generate_key()
        prefix = raw[:8]
        taken = (await conn.execute(select(ApiKey.id).where(ApiKey.prefix == prefix))).first()
        if taken is None:
            break
    else:  # pragma: no cover - 2^32 prefixes
        raise RuntimeError("could not find a free key prefix")
    result = await conn.execute(
        insert(ApiKey)
        .values(
            account_id=account_id,
            prefix=prefix,
            digest=key_digest(raw),
            name=name,
            is_management=management,
            scopes=scopes,
            limit_retention=limit_retention,
            limit_credits=limit_credits,
            project_id=project_id
            if project_id is not None
            else await default_project(conn, org_id=account_id),
            member_id=member_id if member_id is not None else account_id,
            allowed_models=allowed_models,
            rpm=rpm,
            tpm=tpm,
            expires_at=expires_at,
            cache_mode=cache_mode,
        )
        .returning(ApiKey.id)
    )
    return NewKey(key=raw, key_id=int(result.scalar_one()), prefix=prefix, account_id=account_id)


async def top_up(
    conn: AsyncConnection,
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
    await conn.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(balance_credits=Account.balance_credits + credits)
    )
    await conn.execute(
        insert(LedgerEntry).values(
            account_id=account_id,
            kind=kind,
            credits=credits,
            description=description,
            reference_id=reference_id,
        )
    )
    return credits


async def account_count(conn: AsyncConnection) -> int:
    return len((await conn.execute(select(Account.id).limit(1))).all())
