"""OpenAI's spend alerts on modelgate's budgets (``api/admin_spend.py``): an amount alert is a
``spend_alert_rules`` row on its level's monthly budget. A level without a budget gets a counting
one (limit ``NO_LIMIT``: it refuses nothing, it counts the level's spend for its alerts), dropped
with its last alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema import Budget
from modelgate.store.schema_alerts import SpendAlertRule
from modelgate.store.spend_alerts import NO_LIMIT


@dataclass(frozen=True, slots=True)
class RuleRow:
    id: int
    budget_id: int
    org_id: int
    project_id: int | None
    member_id: int | None
    threshold_credits: int
    recipients: list[str]
    subject_prefix: str | None
    created_at: datetime


_COLUMNS = (
    SpendAlertRule.id,
    SpendAlertRule.budget_id,
    Budget.org_id,
    Budget.project_id,
    Budget.member_id,
    SpendAlertRule.threshold_credits,
    SpendAlertRule.recipients,
    SpendAlertRule.subject_prefix,
    SpendAlertRule.created_at,
)


def _row(r: Any) -> RuleRow:
    return RuleRow(
        int(r[0]), int(r[1]), int(r[2]), r[3], r[4], int(r[5]), [str(x) for x in r[6] or []], r[7], r[8]
    )


async def rules_page(
    conn: AsyncConnection, *, budget_id: int, after: int | None, before: int | None, limit: int, desc: bool
) -> list[RuleRow]:
    """Up to ``limit`` alerts of a budget, by id (``desc``: newest first), after/before an id."""
    q = (
        select(*_COLUMNS)
        .join(Budget, Budget.id == SpendAlertRule.budget_id)
        .where(SpendAlertRule.budget_id == budget_id)
    )
    if after is not None:
        q = q.where(SpendAlertRule.id < after if desc else SpendAlertRule.id > after)
    if before is not None:
        q = q.where(SpendAlertRule.id > before if desc else SpendAlertRule.id < before)
    q = q.order_by(SpendAlertRule.id.desc() if desc else SpendAlertRule.id).limit(limit)
    return [_row(r) for r in (await conn.execute(q)).all()]


async def rule_of(conn: AsyncConnection, *, rule_id: int) -> RuleRow | None:
    row = (
        await conn.execute(
            select(*_COLUMNS)
            .join(Budget, Budget.id == SpendAlertRule.budget_id)
            .where(SpendAlertRule.id == rule_id)
        )
    ).first()
    return _row(row) if row is not None else None


async def create_rule(
    conn: AsyncConnection,
    *,
    budget_id: int,
    threshold_credits: int,
    recipients: list[str],
    subject_prefix: str | None,
) -> int:
    res = await conn.execute(
        insert(SpendAlertRule)
        .values(
            budget_id=budget_id,
            threshold_credits=threshold_credits,
            recipients=recipients,
            subject_prefix=subject_prefix,
        )
        .returning(SpendAlertRule.id)
    )
    return int(res.scalar_one())


async def update_rule(
    conn: AsyncConnection,
    *,
    rule_id: int,
    threshold_credits: int,
    recipients: list[str],
    subject_prefix: str | None,
) -> None:
    await conn.execute(
        update(SpendAlertRule)
        .where(SpendAlertRule.id == rule_id)
        .values(threshold_credits=threshold_credits, recipients=recipients, subject_prefix=subject_prefix)
    )


async def delete_rule(conn: AsyncConnection, *, rule_id: int) -> None:
    await conn.execute(delete(SpendAlertRule).where(SpendAlertRule.id == rule_id))


async def count_rules(conn: AsyncConnection, *, budget_id: int) -> int:
    res = await conn.execute(
        select(func.count()).select_from(SpendAlertRule).where(SpendAlertRule.budget_id == budget_id)
    )
    return int(res.scalar_one())


async def drop_if_only_counting(conn: AsyncConnection, *, budget_id: int) -> bool:
    """Delete a counting budget (``NO_LIMIT``) left with no alert of any kind; True if deleted."""
    if await count_rules(conn, budget_id=budget_id):
        return False
    row = (
        await conn.execute(
            select(Budget.limit_credits, Budget.alert_thresholds, Budget.alert_webhook).where(
                Budget.id == budget_id
            )
        )
    ).first()
    if row is None or int(row[0]) < NO_LIMIT or row[1] or row[2]:
        return False
    await conn.execute(delete(Budget).where(Budget.id == budget_id))
    return True
