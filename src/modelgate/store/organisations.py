"""Organisations, projects and their members (docs/organisations.md): every statement about them.

An organisation is a credit pool: its id is the id of the ``accounts`` row holding its balance, so
the ledger, holds, request logs and stored responses name it in ``account_id``. A personal
organisation's pool is its person's own account; a team organisation's pool is an account row that
cannot sign in (its ``email``, ``organisation:<n>``, has no ``@``: no sign-in form can reach it).

Roles: in an organisation ``owner`` | ``admin`` | ``member`` | ``billing`` (reads billing and usage
only); in a project ``owner`` | ``member``. Functions take an open connection and run inside the
caller's transaction (compose them with ``async with engine.begin()``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema import Account, ApiKey, Organisation, OrgMember, Project, ProjectMember

ORG_ROLES = ("owner", "admin", "member", "billing")
PROJECT_ROLES = ("owner", "member")
ORG_MANAGERS = ("owner", "admin")  # may manage projects, members and budgets of the organisation
ORG_WIDE_ROLES = ("owner", "admin", "billing")  # see every project (billing: read only)
DEFAULT_PROJECT = "Default project"


@dataclass(frozen=True, slots=True)
class Membership:
    org_id: int
    name: str
    personal: bool
    role: str
    postpaid: bool


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    id: int
    org_id: int
    name: str
    is_default: bool
    allowed_models: list[str] | None
    rpm: int | None
    tpm: int | None
    role: str | None  # the viewer's project role (None: sees it as an organisation owner/admin)


async def create_personal_org(conn: AsyncConnection, *, account_id: int, name: str) -> int:
    """The personal organisation of a new account (its own pool) with its default project;
    returns the project's id. Does nothing (returns the existing default) if it exists."""
    existing = await default_project(conn, org_id=account_id)
    if existing is not None:
        return existing
    await conn.execute(insert(Organisation).values(id=account_id, name=name, personal=True))
    await conn.execute(insert(OrgMember).values(org_id=account_id, account_id=account_id, role="owner"))
    return await create_project(
        conn, org_id=account_id, name=DEFAULT_PROJECT, owner_id=account_id, default=True
    )


async def create_org(conn: AsyncConnection, *, name: str, owner_id: int, postpaid: bool = False) -> int:
    """A team organisation owned by ``owner_id``, with a pool account of its own and a default
    project; returns its id."""
    res = await conn.execute(
        insert(Account)
        .values(email=f"organisation:{secrets.token_hex(8)}", balance_credits=0, postpaid=postpaid)
        .returning(Account.id)
    )
    org_id = int(res.scalar_one())
    await conn.execute(update(Account).where(Account.id == org_id).values(email=f"organisation:{org_id}"))
    await conn.execute(insert(Organisation).values(id=org_id, name=name, personal=False))
    await conn.execute(insert(OrgMember).values(org_id=org_id, account_id=owner_id, role="owner"))
    await create_project(conn, org_id=org_id, name=DEFAULT_PROJECT, owner_id=owner_id, default=True)
    return org_id


async def set_postpaid(conn: AsyncConnection, *, org_id: int, postpaid: bool) -> None:
    await conn.execute(update(Account).where(Account.id == org_id).values(postpaid=postpaid))


async def create_project(
    conn: AsyncConnection,
    *,
    org_id: int,
    name: str,
    owner_id: int | None = None,
    default: bool = False,
    allowed_models: list[str] | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
) -> int:
    res = await conn.execute(
        insert(Project)
        .values(org_id=org_id, name=name, is_default=default, allowed_models=allowed_models, rpm=rpm, tpm=tpm)
        .returning(Project.id)
    )
    project_id = int(res.scalar_one())
    if owner_id is not None:
        await conn.execute(
            insert(ProjectMember).values(project_id=project_id, account_id=owner_id, role="owner")
        )
    return project_id


async def update_project(conn: AsyncConnection, *, project_id: int, **values: Any) -> None:
    """Change ``name``, ``allowed_models``, ``rpm`` or ``tpm`` of a project."""
    allowed = {k: v for k, v in values.items() if k in ("name", "allowed_models", "rpm", "tpm")}
    if allowed:
        await conn.execute(update(Project).where(Project.id == project_id).values(**allowed))


async def default_project(conn: AsyncConnection, *, org_id: int) -> int | None:
    row = (
        await conn.execute(
            select(Project.id)
            .where(Project.org_id == org_id, Project.is_default)
            .order_by(Project.id)
            .limit(1)
        )
    ).first()
    return int(row[0]) if row is not None else None


async def add_org_member(conn: AsyncConnection, *, org_id: int, account_id: int, role: str) -> None:
    """Add a person to an organisation, or change their role."""
    found = await org_role(conn, org_id=org_id, account_id=account_id)
    if found is None:
        await conn.execute(insert(OrgMember).values(org_id=org_id, account_id=account_id, role=role))
    else:
        await conn.execute(
            update(OrgMember)
            .where(OrgMember.org_id == org_id, OrgMember.account_id == account_id)
            .values(role=role)
        )


async def add_project_member(conn: AsyncConnection, *, project_id: int, account_id: int, role: str) -> None:
    found = await project_role(conn, project_id=project_id, account_id=account_id)
    if found is None:
        await conn.execute(
            insert(ProjectMember).values(project_id=project_id, account_id=account_id, role=role)
        )
    else:
        await conn.execute(
            update(ProjectMember)
            .where(ProjectMember.project_id == project_id, ProjectMember.account_id == account_id)
            .values(role=role)
        )


async def org_role(conn: AsyncConnection, *, org_id: int, account_id: int) -> str | None:
    row = (
        await conn.execute(
            select(OrgMember.role).where(OrgMember.org_id == org_id, OrgMember.account_id == account_id)
        )
    ).first()
    return str(row[0]) if row is not None else None


async def project_role(conn: AsyncConnection, *, project_id: int, account_id: int) -> str | None:
    row = (
        await conn.execute(
            select(ProjectMember.role).where(
                ProjectMember.project_id == project_id, ProjectMember.account_id == account_id
            )
        )
    ).first()
    return str(row[0]) if row is not None else None


async def memberships(conn: AsyncConnection, *, account_id: int) -> list[Membership]:
    """The organisations a person belongs to, personal first."""
    rows = (
        await conn.execute(
            select(
                Organisation.id, Organisation.name, Organisation.personal, OrgMember.role, Account.postpaid
            )
            .join(OrgMember, OrgMember.org_id == Organisation.id)
            .join(Account, Account.id == Organisation.id)
            .where(OrgMember.account_id == account_id)
            .order_by(Organisation.personal.desc(), Organisation.id)
        )
    ).all()
    return [Membership(int(r[0]), str(r[1]), bool(r[2]), str(r[3]), bool(r[4])) for r in rows]


async def visible_projects(conn: AsyncConnection, *, org_id: int, account_id: int) -> list[ProjectInfo]:
    """The projects of an organisation a person may see: all of them for its owners and admins
    (and its billing role, read-only), else those they are a member of."""
    role = await org_role(conn, org_id=org_id, account_id=account_id)
    if role is None:
        return []
    q = (
        select(Project, ProjectMember.role.label("member_role"))
        .outerjoin(
            ProjectMember,
            and_(ProjectMember.project_id == Project.id, ProjectMember.account_id == account_id),
        )
        .where(Project.org_id == org_id)
        .order_by(Project.is_default.desc(), Project.id)
    )
    if role not in (*ORG_MANAGERS, "billing"):
        q = q.where(ProjectMember.account_id.is_not(None))
    rows = (await conn.execute(q)).all()
    return [
        ProjectInfo(
            id=m["id"],
            org_id=m["org_id"],
            name=m["name"],
            is_default=bool(m["is_default"]),
            allowed_models=m["allowed_models"],
            rpm=m["rpm"],
            tpm=m["tpm"],
            role=m["member_role"],
        )
        for m in (r._mapping for r in rows)
    ]


async def project_of(conn: AsyncConnection, *, project_id: int) -> ProjectInfo | None:
    row = (await conn.execute(select(Project).where(Project.id == project_id))).first()
    if row is None:
        return None
    m = row._mapping
    return ProjectInfo(
        m["id"], m["org_id"], m["name"], bool(m["is_default"]), m["allowed_models"], m["rpm"], m["tpm"], None
    )


async def key_projects(
    conn: AsyncConnection, *, key_ids: list[int]
) -> dict[int, tuple[int | None, int | None]]:
    """key id -> (project id, member id)."""
    if not key_ids:
        return {}
    rows = (
        await conn.execute(
            select(ApiKey.id, ApiKey.project_id, ApiKey.member_id).where(ApiKey.id.in_(key_ids))
        )
    ).all()
    return {int(r[0]): (r[1], r[2]) for r in rows}


async def project_keys(
    conn: AsyncConnection, *, project_ids: list[int], member_id: int | None = None
) -> list[int]:
    """The ids of the keys (deleted ones included: their logs stay) of some projects, or of one
    member within them."""
    if not project_ids:
        return []
    q = select(ApiKey.id).where(ApiKey.project_id.in_(project_ids))
    if member_id is not None:
        q = q.where(ApiKey.member_id == member_id)
    return [int(r[0]) for r in (await conn.execute(q)).all()]


async def count_orgs(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(Organisation))).scalar_one())


def in_keys_of(key_column: Any, *, project_id: int | None, member_id: int | None) -> tuple[Any, ...]:
    """Conditions keeping rows of the keys of one project and/or one member (filters of the usage
    and billing pages); none when neither is given."""
    if project_id is None and member_id is None:
        return ()
    keys = select(ApiKey.id)
    if project_id is not None:
        keys = keys.where(ApiKey.project_id == project_id)
    if member_id is not None:
        keys = keys.where(ApiKey.member_id == member_id)
    return (key_column.in_(keys),)


async def org_members(conn: AsyncConnection, *, org_id: int) -> list[tuple[int, str, str]]:
    """(account id, email, role) of an organisation's members."""
    rows = (
        await conn.execute(
            select(OrgMember.account_id, Account.email, OrgMember.role)
            .join(Account, Account.id == OrgMember.account_id)
            .where(OrgMember.org_id == org_id)
            .order_by(Account.email)
        )
    ).all()
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def in_project(key_column: Any, project_id: int | None) -> tuple[Any, ...]:
    """Conditions confining rows that name a key (``key_column``) to one project's keys; none for
    a caller who sees the whole organisation (``project_id`` None)."""
    if project_id is None:
        return ()
    return (key_column.in_(select(ApiKey.id).where(ApiKey.project_id == project_id)),)


async def team_org_named(conn: AsyncConnection, *, name: str) -> int | None:
    """The id of a team organisation whose name equals ``name`` ignoring case (names are unique
    among team organisations: SSO rules and the command line find them by name)."""
    q = select(Organisation.id).where(
        func.lower(Organisation.name) == func.lower(name), Organisation.personal.is_(False)
    )
    row = (await conn.execute(q.order_by(Organisation.id).limit(1))).first()
    return int(row[0]) if row is not None else None


async def organisation_name(conn: AsyncConnection, *, org_id: int) -> str | None:
    row = (await conn.execute(select(Organisation.name).where(Organisation.id == org_id))).first()
    return str(row[0]) if row is not None else None
