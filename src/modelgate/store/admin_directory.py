"""Rows of OpenAI's Admin API views of an organisation (``api/admin_*.py``, docs/admin-api.md):
projects with their creation and archive times, organisation and project users with the time they
were added, pages of them after an id. Functions take an open connection and run inside the
caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema import Account, ApiKey, OrgMember, Project, ProjectMember


@dataclass(frozen=True, slots=True)
class ProjectRow:
    id: int
    org_id: int
    name: str
    is_default: bool
    created_at: datetime
    archived_at: datetime | None


@dataclass(frozen=True, slots=True)
class MemberRow:
    account_id: int
    email: str
    role: str
    added_at: datetime


def _project(m: object) -> ProjectRow:
    r = m._mapping  # type: ignore[attr-defined]
    return ProjectRow(
        int(r["id"]),
        int(r["org_id"]),
        str(r["name"]),
        bool(r["is_default"]),
        r["created_at"],
        r["archived_at"],
    )


async def projects_page(
    conn: AsyncConnection, *, org_id: int, after: int, limit: int, include_archived: bool
) -> list[ProjectRow]:
    """Up to ``limit`` projects of an organisation with an id above ``after``, oldest first."""
    q = select(Project).where(Project.org_id == org_id, Project.id > after)
    if not include_archived:
        q = q.where(Project.archived_at.is_(None))
    rows = (await conn.execute(q.order_by(Project.id).limit(limit))).all()
    return [_project(r) for r in rows]


async def project_row(conn: AsyncConnection, *, project_id: int) -> ProjectRow | None:
    row = (await conn.execute(select(Project).where(Project.id == project_id))).first()
    return _project(row) if row is not None else None


async def archive_project(conn: AsyncConnection, *, project_id: int) -> list[int]:
    """Archive a project (once: its first archive time stays) and disable its keys; returns the
    ids of the keys disabled (to revoke from the caches)."""
    await conn.execute(
        update(Project)
        .where(Project.id == project_id, Project.archived_at.is_(None))
        .values(archived_at=datetime.now(UTC))
    )
    keys = [
        int(r[0])
        for r in (
            await conn.execute(
                select(ApiKey.id).where(ApiKey.project_id == project_id, ApiKey.disabled.is_(False))
            )
        ).all()
    ]
    if keys:
        await conn.execute(update(ApiKey).where(ApiKey.id.in_(keys)).values(disabled=True))
    return keys


async def org_users_page(
    conn: AsyncConnection, *, org_id: int, after: int, limit: int, emails: list[str] | None = None
) -> list[MemberRow]:
    """Up to ``limit`` members of an organisation with an account id above ``after``."""
    q = (
        select(OrgMember.account_id, Account.email, OrgMember.role, OrgMember.created_at)
        .join(Account, Account.id == OrgMember.account_id)
        .where(OrgMember.org_id == org_id, OrgMember.account_id > after)
    )
    if emails is not None:
        q = q.where(Account.email.in_(emails))
    rows = (await conn.execute(q.order_by(OrgMember.account_id).limit(limit))).all()
    return [MemberRow(int(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]


async def org_user(conn: AsyncConnection, *, org_id: int, account_id: int) -> MemberRow | None:
    found = await org_users_page(conn, org_id=org_id, after=account_id - 1, limit=1)
    return found[0] if found and found[0].account_id == account_id else None


async def remove_org_member(conn: AsyncConnection, *, org_id: int, account_id: int) -> None:
    """Take a person out of an organisation and all of its projects."""
    projects = select(Project.id).where(Project.org_id == org_id)
    await conn.execute(
        delete(ProjectMember).where(
            ProjectMember.account_id == account_id, ProjectMember.project_id.in_(projects)
        )
    )
    await conn.execute(
        delete(OrgMember).where(OrgMember.org_id == org_id, OrgMember.account_id == account_id)
    )


async def count_owners(conn: AsyncConnection, *, org_id: int) -> int:
    rows = (
        await conn.execute(
            select(OrgMember.account_id).where(OrgMember.org_id == org_id, OrgMember.role == "owner")
        )
    ).all()
    return len(rows)


async def project_users_page(
    conn: AsyncConnection, *, project_id: int, after: int, limit: int
) -> list[MemberRow]:
    rows = (
        await conn.execute(
            select(ProjectMember.account_id, Account.email, ProjectMember.role, ProjectMember.created_at)
            .join(Account, Account.id == ProjectMember.account_id)
            .where(ProjectMember.project_id == project_id, ProjectMember.account_id > after)
            .order_by(ProjectMember.account_id)
            .limit(limit)
        )
    ).all()
    return [MemberRow(int(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]


async def project_user(conn: AsyncConnection, *, project_id: int, account_id: int) -> MemberRow | None:
    found = await project_users_page(conn, project_id=project_id, after=account_id - 1, limit=1)
    return found[0] if found and found[0].account_id == account_id else None


async def remove_project_member(conn: AsyncConnection, *, project_id: int, account_id: int) -> None:
    await conn.execute(
        delete(ProjectMember).where(
            ProjectMember.project_id == project_id, ProjectMember.account_id == account_id
        )
    )


async def disable_keys(conn: AsyncConnection, *, key_ids: list[int]) -> None:
    """Disable keys (a member removed from the organisation: their keys in it stop working)."""
    if key_ids:
        await conn.execute(update(ApiKey).where(ApiKey.id.in_(key_ids)).values(disabled=True))
