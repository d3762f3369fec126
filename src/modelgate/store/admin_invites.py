"""Invitations into an organisation (``api/admin_invites.py``, ``web/invite.py``,
docs/admin-api.md): a one-time token kept as its SHA-256 digest, an expiry, a role and the
projects it joins. Accepting is one conditional update: an invite is used at most once, and never
once expired or deleted. Functions take an open connection and run inside the caller's
transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema import Organisation
from modelgate.store.schema_admin import OrgInvite


@dataclass(frozen=True, slots=True)
class InviteRow:
    id: int
    org_id: int
    email: str
    role: str
    projects: tuple[tuple[int, str], ...]
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    deleted_at: datetime | None
    org_name: str = ""


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _row(r: object, org_name: str = "") -> InviteRow:
    m = r._mapping  # type: ignore[attr-defined]
    projects = tuple((int(p[0]), str(p[1])) for p in (m["projects"] or []))
    return InviteRow(
        int(m["id"]),
        int(m["org_id"]),
        str(m["email"]),
        str(m["role"]),
        projects,
        _aware(m["created_at"]),
        _aware(m["expires_at"]),
        _aware(m["accepted_at"]) if m["accepted_at"] is not None else None,
        _aware(m["deleted_at"]) if m["deleted_at"] is not None else None,
        org_name,
    )


_COLUMNS = (
    OrgInvite.id,
    OrgInvite.org_id,
    OrgInvite.email,
    OrgInvite.role,
    OrgInvite.projects,
    OrgInvite.created_at,
    OrgInvite.expires_at,
    OrgInvite.accepted_at,
    OrgInvite.deleted_at,
)


async def create_invite(
    conn: AsyncConnection,
    *,
    org_id: int,
    email: str,
    role: str,
    projects: list[tuple[int, str]],
    digest: str,
    invited_by: int | None,
    expires_at: datetime,
) -> int:
    result = await conn.execute(
        insert(OrgInvite)
        .values(
            org_id=org_id,
            email=email,
            role=role,
            projects=[[p, r] for p, r in projects] or None,
            digest=digest,
            invited_by=invited_by,
            expires_at=expires_at,
        )
        .returning(OrgInvite.id)
    )
    return int(result.scalar_one())


async def invites_page(
    conn: AsyncConnection, *, org_id: int, after: int, limit: int, invite_id: int | None = None
) -> list[InviteRow]:
    """Up to ``limit`` undeleted invites of an organisation with an id above ``after``."""
    q = select(*_COLUMNS).where(
        OrgInvite.org_id == org_id, OrgInvite.deleted_at.is_(None), OrgInvite.id > after
    )
    if invite_id is not None:
        q = q.where(OrgInvite.id == invite_id)
    rows = (await conn.execute(q.order_by(OrgInvite.id).limit(limit))).all()
    return [_row(r) for r in rows]


async def invite(conn: AsyncConnection, *, org_id: int, invite_id: int) -> InviteRow | None:
    found = await invites_page(conn, org_id=org_id, after=0, limit=1, invite_id=invite_id)
    return found[0] if found else None


async def delete_invite(conn: AsyncConnection, *, invite_id: int) -> None:
    await conn.execute(
        update(OrgInvite)
        .where(OrgInvite.id == invite_id, OrgInvite.accepted_at.is_(None))
        .values(deleted_at=datetime.now(UTC))
    )


async def invite_by_digest(conn: AsyncConnection, *, digest: str) -> InviteRow | None:
    """The invite with this token digest, whatever its state, with its organisation's name."""
    row = (
        await conn.execute(
            select(*_COLUMNS, Organisation.name.label("org_name"))
            .join(Organisation, Organisation.id == OrgInvite.org_id)
            .where(OrgInvite.digest == digest)
        )
    ).first()
    return _row(row, str(row._mapping["org_name"])) if row is not None else None


async def claim_invite(conn: AsyncConnection, *, invite_id: int, account_id: int) -> bool:
    """Mark the invite accepted by ``account_id`` if it still is pending; False if it was used,
    deleted or expired meanwhile (of two concurrent accepts, one wins)."""
    now = datetime.now(UTC)
    result = await conn.execute(
        update(OrgInvite)
        .where(
            OrgInvite.id == invite_id,
            OrgInvite.accepted_at.is_(None),
            OrgInvite.deleted_at.is_(None),
            OrgInvite.expires_at > now,
        )
        .values(accepted_at=now, accepted_by=account_id)
    )
    return bool(result.rowcount == 1)
