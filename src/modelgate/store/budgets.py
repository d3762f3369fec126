"""Budgets at the organisation, project and member-within-project levels (a key's own limit stays on
``api_keys``), and what a key falls under: every statement about them.

The hold itself (``store/sqlite_writer`` ledger path and ``modelgate_ledger_apply``, migration 0012)
checks each budget's live ``limit_credits`` against its ``budget_spend`` bucket, under the pool
account's row lock; what is read here for a key is cached with the key (its budgets' ids and
periods), and changing a budget revokes the keys it covers (``keys_under``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema import ApiKey, Budget, BudgetSpend, KeySpend, OrgMember, Project

PERIODS = ("day", "week", "month", "none")
LEVELS = ("organisation", "project", "member")


@dataclass(frozen=True, slots=True)
class BudgetRef:
    """A budget a key falls under, as cached with the key."""

    id: int
    level: str  # organisation | project | member
    period: str  # day | week | month | none
    limit_credits: int  # when the key was loaded (for messages; holds read the live limit)


@dataclass(frozen=True, slots=True)
class KeyScope:
    budgets: tuple[BudgetRef, ...]
    project_models: tuple[str, ...] | None
    project_rpm: int | None
    project_tpm: int | None
    org_role: str | None  # the key's member's role in its organisation


@dataclass(frozen=True, slots=True)
class BudgetInfo:
    id: int
    org_id: int
    project_id: int | None
    member_id: int | None
    level: str
    period: str
    limit_credits: int
    spent_credits: int  # in the current period
    held_credits: int
    alert_thresholds: list[int] | None
    alert_webhook: str | None


def level_of(project_id: int | None, member_id: int | None) -> str:
    if project_id is None:
        return "organisation"
    return "project" if member_id is None else "member"


async def key_scope(
    conn: AsyncConnection, *, org_id: int, project_id: int | None, member_id: int | None
) -> KeyScope:
    """The budgets a key of this project and member falls under (organisation first), and its
    project's allow-list and rate limits."""
    levels = [and_(Budget.project_id.is_(None), Budget.member_id.is_(None))]
    if project_id is not None:
        levels.append(and_(Budget.project_id == project_id, Budget.member_id.is_(None)))
        if member_id is not None:
            levels.append(and_(Budget.project_id == project_id, Budget.member_id == member_id))
    rows = (
        await conn.execute(
            select(Budget.id, Budget.project_id, Budget.member_id, Budget.period, Budget.limit_credits)
            .where(Budget.org_id == org_id, or_(*levels))
            .order_by(Budget.id)
        )
    ).all()
    refs = sorted(
        (BudgetRef(int(r[0]), level_of(r[1], r[2]), str(r[3]), int(r[4])) for r in rows),
        key=lambda b: (LEVELS.index(b.level), b.id),
    )
    models, rpm, tpm = None, None, None
    if project_id is not None:
        p = (
            await conn.execute(
                select(Project.allowed_models, Project.rpm, Project.tpm).where(Project.id == project_id)
            )
        ).first()
        if p is not None:
            models = tuple(p[0]) if p[0] is not None else None
            rpm, tpm = p[1], p[2]
    role = None
    if member_id is not None:
        r = (
            await conn.execute(
                select(OrgMember.role).where(OrgMember.org_id == org_id, OrgMember.account_id == member_id)
            )
        ).first()
        role = str(r[0]) if r is not None else None
    elif project_id is None:
        role = "owner"  # a key from before organisations, or made outside them: its account's own
    return KeyScope(tuple(refs), models, rpm, tpm, role)


async def set_budget(
    conn: AsyncConnection,
    *,
    org_id: int,
    project_id: int | None = None,
    member_id: int | None = None,
    period: str,
    limit_credits: int,
    alert_thresholds: list[int] | None = None,
    alert_webhook: str | None = None,
) -> int:
    """Create or replace the budget of one level; returns its id. Spend already counted in the
    current period stays counted (a changed period starts new buckets)."""
    existing = (
        await conn.execute(
            select(Budget.id).where(
                Budget.org_id == org_id,
                Budget.project_id.is_(None) if project_id is None else Budget.project_id == project_id,
                Budget.member_id.is_(None) if member_id is None else Budget.member_id == member_id,
            )
        )
    ).first()
    values = {
        "period": period,
        "limit_credits": limit_credits,
        "alert_thresholds": alert_thresholds,
        "alert_webhook": alert_webhook,
    }
    if existing is not None:
        await conn.execute(update(Budget).where(Budget.id == existing[0]).values(**values))
        return int(existing[0])
    res = await conn.execute(
        insert(Budget)
        .values(org_id=org_id, project_id=project_id, member_id=member_id, **values)
        .returning(Budget.id)
    )
    return int(res.scalar_one())


async def delete_budget(conn: AsyncConnection, *, org_id: int, budget_id: int) -> bool:
    res = await conn.execute(delete(Budget).where(Budget.id == budget_id, Budget.org_id == org_id))
    return bool(res.rowcount)


async def get_budget(conn: AsyncConnection, *, budget_id: int) -> tuple[int, int | None, int | None] | None:
    """(org id, project id, member id) of a budget."""
    row = (
        await conn.execute(
            select(Budget.org_id, Budget.project_id, Budget.member_id).where(Budget.id == budget_id)
        )
    ).first()
    return (int(row[0]), row[1], row[2]) if row is not None else None


async def list_budgets(
    conn: AsyncConnection,
    *,
    org_id: int,
    bucket: Callable[[str], str],
    project_ids: list[int] | None = None,
) -> list[BudgetInfo]:
    """An organisation's budgets (only those of ``project_ids`` and the organisation's own when
    given) with their spend in the current period (``bucket(period)`` names it)."""
    q = select(Budget).where(Budget.org_id == org_id).order_by(Budget.id)
    if project_ids is not None:
        q = q.where(or_(Budget.project_id.is_(None), Budget.project_id.in_(project_ids)))
    budgets = [r._mapping for r in (await conn.execute(q)).all()]
    out = []
    for b in budgets:
        spend = (
            await conn.execute(
                select(BudgetSpend.spent_credits, BudgetSpend.held_credits).where(
                    BudgetSpend.budget_id == b["id"], BudgetSpend.period == bucket(b["period"])
                )
            )
        ).first()
        out.append(
            BudgetInfo(
                id=b["id"],
                org_id=b["org_id"],
                project_id=b["project_id"],
                member_id=b["member_id"],
                level=level_of(b["project_id"], b["member_id"]),
                period=b["period"],
                limit_credits=int(b["limit_credits"]),
                spent_credits=int(spend[0]) if spend else 0,
                held_credits=int(spend[1]) if spend else 0,
                alert_thresholds=b["alert_thresholds"],
                alert_webhook=b["alert_webhook"],
            )
        )
    return out


async def bucket_spend(conn: AsyncConnection, *, budget_id: int, period: str) -> tuple[int, int]:
    """(spent, held) of one budget bucket."""
    row = (
        await conn.execute(
            select(BudgetSpend.spent_credits, BudgetSpend.held_credits).where(
                BudgetSpend.budget_id == budget_id, BudgetSpend.period == period
            )
        )
    ).first()
    return (int(row[0]), int(row[1])) if row is not None else (0, 0)


async def key_bucket_spend(conn: AsyncConnection, *, key_id: int, period: str) -> tuple[int, int]:
    """(spent, held) of a key's own limit in one period bucket."""
    row = (
        await conn.execute(
            select(KeySpend.spent_credits, KeySpend.held_credits).where(
                KeySpend.key_id == key_id, KeySpend.period == period
            )
        )
    ).first()
    return (int(row[0]), int(row[1])) if row is not None else (0, 0)


async def keys_under(
    conn: AsyncConnection, *, org_id: int, project_id: int | None, member_id: int | None
) -> list[int]:
    """The keys a budget of this level covers (to revoke their cached scope when it changes)."""
    q = select(ApiKey.id).where(ApiKey.account_id == org_id, ApiKey.deleted_at.is_(None))
    if project_id is not None:
        q = q.where(ApiKey.project_id == project_id)
    if member_id is not None:
        q = q.where(ApiKey.member_id == member_id)
    return [int(r[0]) for r in (await conn.execute(q)).all()]


@dataclass(frozen=True, slots=True)
class BudgetRow:
    id: int
    period: str
    limit_credits: int
    alert_thresholds: list[int] | None
    alert_webhook: str | None
    alert_webhook_secret: str | None  # sealed


async def budget_at(
    conn: AsyncConnection, *, org_id: int, project_id: int | None, member_id: int | None = None
) -> BudgetRow | None:
    """The budget of one level, if there is one."""
    row = (
        await conn.execute(
            select(
                Budget.id,
                Budget.period,
                Budget.limit_credits,
                Budget.alert_thresholds,
                Budget.alert_webhook,
                Budget.alert_webhook_secret,
            ).where(
                Budget.org_id == org_id,
                Budget.project_id.is_(None) if project_id is None else Budget.project_id == project_id,
                Budget.member_id.is_(None) if member_id is None else Budget.member_id == member_id,
            )
        )
    ).first()
    if row is None:
        return None
    thresholds = [int(t) for t in row[3]] if row[3] is not None else None
    return BudgetRow(int(row[0]), str(row[1]), int(row[2]), thresholds, row[4], row[5])


async def set_limit(conn: AsyncConnection, *, budget_id: int, period: str, limit_credits: int) -> None:
    """Change a budget's limit and period only (its alerts stay)."""
    await conn.execute(
        update(Budget).where(Budget.id == budget_id).values(period=period, limit_credits=limit_credits)
    )


async def set_webhook(
    conn: AsyncConnection, *, budget_id: int, url: str | None, secret_sealed: str | None
) -> None:
    """A budget's alert webhook and its (sealed) signing secret."""
    await conn.execute(
        update(Budget)
        .where(Budget.id == budget_id)
        .values(alert_webhook=url, alert_webhook_secret=secret_sealed)
    )
