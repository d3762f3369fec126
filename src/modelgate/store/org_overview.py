"""Organisations across the gateway (the operator console's Organisations page): each one's
members, projects, balance and spend over a period, from the request log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema import Account, Organisation, OrgMember, Project, RequestLog


@dataclass(frozen=True, slots=True)
class OrgSummary:
    id: int
    name: str
    personal: bool
    postpaid: bool
    balance_credits: int
    members: int
    projects: int
    requests: int
    spent_credits: int


async def org_summaries(
    conn: AsyncConnection,
    *,
    since: datetime,
    until: datetime,
    personal: bool,
    limit: int = 500,
    org_id: int | None = None,
) -> list[OrgSummary]:
    """Team organisations (and personal ones with ``personal``), the largest spend first, with
    their spend and requests in ``[since, until)``."""
    members = select(OrgMember.org_id, func.count().label("n")).group_by(OrgMember.org_id).subquery()
    projects = (
        select(Project.org_id, func.count().label("n"))
        .where(Project.archived_at.is_(None))
        .group_by(Project.org_id)
        .subquery()
    )
    spend = (
        select(
            RequestLog.account_id.label("org_id"),
            func.count().label("requests"),
            func.coalesce(func.sum(RequestLog.credits), 0).label("credits"),
        )
        .where(RequestLog.created_at >= since, RequestLog.created_at < until)
        .group_by(RequestLog.account_id)
        .subquery()
    )
    q = (
        select(
            Organisation.id,
            Organisation.name,
            Organisation.personal,
            Account.postpaid,
            Account.balance_credits,
            func.coalesce(members.c.n, 0).label("members"),
            func.coalesce(projects.c.n, 0).label("projects"),
            func.coalesce(spend.c.requests, 0).label("requests"),
            func.coalesce(spend.c.credits, 0).label("credits"),
        )
        .join(Account, Account.id == Organisation.id)
        .outerjoin(members, members.c.org_id == Organisation.id)
        .outerjoin(projects, projects.c.org_id == Organisation.id)
        .outerjoin(spend, spend.c.org_id == Organisation.id)
        .order_by(func.coalesce(spend.c.credits, 0).desc(), Organisation.name, Organisation.id)
        .limit(limit)
    )
    if not personal:
        q = q.where(Organisation.personal.is_(False))
    if org_id is not None:
        q = q.where(Organisation.id == org_id)
    return [
        OrgSummary(
            int(r.id),
            str(r.name),
            bool(r.personal),
            bool(r.postpaid),
            int(r.balance_credits or 0),
            int(r.members),
            int(r.projects),
            int(r.requests),
            int(r.credits),
        )
        for r in await conn.execute(q)
    ]


async def org_summary(
    conn: AsyncConnection, *, org_id: int, since: datetime, until: datetime
) -> OrgSummary | None:
    found = await org_summaries(conn, since=since, until=until, personal=True, limit=1, org_id=org_id)
    return found[0] if found else None
