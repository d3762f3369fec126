"""Rows of OpenAI's Admin API views of keys (``api/admin_keys.py``, ``api/admin_api_keys.py``,
docs/admin-api.md): a project's inference keys with their owner (a member or a service account),
an organisation's management (admin) keys, a project's service accounts. Functions take an open
connection and run inside the caller's transaction; every query is bounded by the organisation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema import Account, ApiKey, OrgMember, ProjectMember
from modelgate.store.schema_admin import ServiceAccount
from modelgate.store.schema_web import PlaygroundKey


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: int
    prefix: str
    name: str | None
    disabled: bool
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    member_id: int | None
    member_email: str | None
    member_role: str | None  # the member's project role (or organisation role for an admin key)
    member_added_at: datetime | None
    service_account_id: int | None


@dataclass(frozen=True, slots=True)
class ServiceAccountRow:
    id: int
    project_id: int
    name: str
    role: str
    created_at: datetime


def _hidden() -> Any:
    return select(PlaygroundKey.key_id)


def _key(r: Any) -> KeyRow:
    m = r._mapping
    return KeyRow(
        int(m["id"]),
        str(m["prefix"]),
        m["name"],
        bool(m["disabled"]),
        m["created_at"],
        m["last_used_at"],
        m["expires_at"],
        m["member_id"],
        m["email"],
        m["role"],
        m["added_at"],
        m["service_account_id"],
    )


_KEY_COLUMNS = (
    ApiKey.id,
    ApiKey.prefix,
    ApiKey.name,
    ApiKey.disabled,
    ApiKey.created_at,
    ApiKey.last_used_at,
    ApiKey.expires_at,
    ApiKey.member_id,
    ApiKey.service_account_id,
    Account.email,
)


async def project_keys_page(
    conn: AsyncConnection,
    *,
    org_id: int,
    project_id: int,
    after: int,
    limit: int,
    disabled: bool | None = None,
    key_id: int | None = None,
) -> list[KeyRow]:
    """Up to ``limit`` live inference keys of a project with an id above ``after`` (``disabled``:
    only keys in that state; ``key_id``: that key only), with their member's project role."""
    q = (
        select(*_KEY_COLUMNS, ProjectMember.role.label("role"), ProjectMember.created_at.label("added_at"))
        .outerjoin(Account, Account.id == ApiKey.member_id)
        .outerjoin(
            ProjectMember,
            (ProjectMember.project_id == ApiKey.project_id) & (ProjectMember.account_id == ApiKey.member_id),
        )
        .where(
            ApiKey.account_id == org_id,
            ApiKey.project_id == project_id,
            ApiKey.is_management.is_(False),
            ApiKey.deleted_at.is_(None),
            ApiKey.id.not_in(_hidden()),
            ApiKey.id > after,
        )
    )
    if disabled is not None:
        q = q.where(ApiKey.disabled.is_(disabled))
    if key_id is not None:
        q = q.where(ApiKey.id == key_id)
    rows = (await conn.execute(q.order_by(ApiKey.id).limit(limit))).all()
    return [_key(r) for r in rows]


async def admin_keys_page(
    conn: AsyncConnection,
    *,
    org_id: int,
    after: int | None,
    limit: int,
    newest_first: bool = False,
    key_id: int | None = None,
) -> list[KeyRow]:
    """Up to ``limit`` live management keys of an organisation after the key ``after`` in the
    order asked, with their member's organisation role."""
    q = (
        select(*_KEY_COLUMNS, OrgMember.role.label("role"), OrgMember.created_at.label("added_at"))
        .outerjoin(Account, Account.id == ApiKey.member_id)
        .outerjoin(
            OrgMember, (OrgMember.org_id == ApiKey.account_id) & (OrgMember.account_id == ApiKey.member_id)
        )
        .where(ApiKey.account_id == org_id, ApiKey.is_management.is_(True), ApiKey.deleted_at.is_(None))
    )
    if after is not None:
        q = q.where(ApiKey.id < after if newest_first else ApiKey.id > after)
    if key_id is not None:
        q = q.where(ApiKey.id == key_id)
    q = q.order_by(ApiKey.id.desc() if newest_first else ApiKey.id)
    return [_key(r) for r in (await conn.execute(q.limit(limit))).all()]


async def delete_key(conn: AsyncConnection, *, key_id: int) -> None:
    """Delete a key (its row stays for the logs; it never authenticates again)."""
    now = datetime.now(UTC)
    await conn.execute(
        update(ApiKey).where(ApiKey.id == key_id).values(deleted_at=now, disabled=True, updated_at=now)
    )


# -- service accounts ---------------------------------------------------------------------------


def _account(r: Any) -> ServiceAccountRow:
    return ServiceAccountRow(int(r[0]), int(r[1]), str(r[2]), str(r[3]), r[4])


_SA = (
    ServiceAccount.id,
    ServiceAccount.project_id,
    ServiceAccount.name,
    ServiceAccount.role,
    ServiceAccount.created_at,
)


async def service_accounts_page(
    conn: AsyncConnection, *, project_id: int, after: int, limit: int, account_id: int | None = None
) -> list[ServiceAccountRow]:
    q = select(*_SA).where(
        ServiceAccount.project_id == project_id,
        ServiceAccount.deleted_at.is_(None),
        ServiceAccount.id > after,
    )
    if account_id is not None:
        q = q.where(ServiceAccount.id == account_id)
    rows = (await conn.execute(q.order_by(ServiceAccount.id).limit(limit))).all()
    return [_account(r) for r in rows]


async def service_account(
    conn: AsyncConnection, *, project_id: int, account_id: int
) -> ServiceAccountRow | None:
    found = await service_accounts_page(conn, project_id=project_id, after=0, limit=1, account_id=account_id)
    return found[0] if found else None


async def service_accounts_by_id(conn: AsyncConnection, *, ids: set[int]) -> dict[int, ServiceAccountRow]:
    if not ids:
        return {}
    rows = (await conn.execute(select(*_SA).where(ServiceAccount.id.in_(ids)))).all()
    return {int(r[0]): _account(r) for r in rows}


async def create_service_account(conn: AsyncConnection, *, org_id: int, project_id: int, name: str) -> int:
    result = await conn.execute(
        insert(ServiceAccount)
        .values(org_id=org_id, project_id=project_id, name=name, role="member")
        .returning(ServiceAccount.id)
    )
    return int(result.scalar_one())


async def update_service_account(
    conn: AsyncConnection, *, account_id: int, name: str | None, role: str | None
) -> None:
    values: dict[str, str] = {}
    if name is not None:
        values["name"] = name
    if role is not None:
        values["role"] = role
    if values:
        await conn.execute(update(ServiceAccount).where(ServiceAccount.id == account_id).values(**values))


async def delete_service_account(conn: AsyncConnection, *, account_id: int) -> list[int]:
    """Delete a service account and disable its keys; the ids of the keys disabled."""
    now = datetime.now(UTC)
    await conn.execute(update(ServiceAccount).where(ServiceAccount.id == account_id).values(deleted_at=now))
    keys = [
        int(r[0])
        for r in (
            await conn.execute(
                select(ApiKey.id).where(ApiKey.service_account_id == account_id, ApiKey.disabled.is_(False))
            )
        ).all()
    ]
    if keys:
        await conn.execute(update(ApiKey).where(ApiKey.id.in_(keys)).values(disabled=True, updated_at=now))
    return keys
