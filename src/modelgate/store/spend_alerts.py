"""Spend alerts raised and delivered (``mail/spend_alerts.py``, docs/organisations.md): the budgets
whose spend in their current period crossed a threshold (a percentage of the limit, or an amount of
OpenAI's Admin API), the claim that raises each alert once across every instance (the unique
``ref``), the webhook deliveries with every attempt, and the recent alerts a console shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.budgets import PERIODS, level_of
from modelgate.store.db import dialect_insert
from modelgate.store.ledger import period_key
from modelgate.store.schema import Budget, BudgetSpend
from modelgate.store.schema_alerts import SpendAlertEvent, SpendAlertRule, WebhookAttempt, WebhookDelivery

# A budget created only to count a level's spend for OpenAI's amount alerts: it limits nothing.
NO_LIMIT = 10**18


@dataclass(frozen=True, slots=True)
class Crossing:
    """A threshold a budget's spend has reached in its current period (not yet known to be raised)."""

    ref: str
    budget_id: int
    org_id: int
    project_id: int | None
    member_id: int | None
    level: str
    period: str  # the bucket
    limit_credits: int | None  # None: the budget only counts (NO_LIMIT)
    spent_credits: int
    threshold_percent: int | None
    threshold_credits: int
    webhook: str | None
    webhook_secret: str | None  # sealed
    recipients: tuple[str, ...] | None  # an amount alert's own; None: the organisation's managers
    subject_prefix: str | None
    key_id: int | None = None  # level key: the key whose own limit it is
    key_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class AlertRow:
    """An alert raised, as the consoles and the API show it."""

    id: int
    org_id: int
    project_id: int | None
    member_id: int | None
    level: str
    period: str
    threshold_percent: int | None
    threshold_credits: int
    limit_credits: int | None
    spent_credits: int
    created_at: datetime
    webhook_state: str | None  # pending | delivered | failed; None: no webhook
    webhook_attempts: int
    key_id: int | None = None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    id: str
    url: str
    body: str
    secret_sealed: str
    attempts: int


async def crossings(
    conn: AsyncConnection, *, now: datetime, more: list[Crossing] | None = None
) -> list[Crossing]:
    """Every threshold reached by a budget in its current period (and ``more``: the keys') not yet
    raised."""
    current = [and_(Budget.period == p, BudgetSpend.period == period_key(p, now)) for p in PERIODS]
    rows: list[tuple[Any, ...]] = [
        tuple(r)
        for r in await conn.execute(
            select(
                Budget.id,
                Budget.org_id,
                Budget.project_id,
                Budget.member_id,
                Budget.limit_credits,
                Budget.alert_thresholds,
                Budget.alert_webhook,
                Budget.alert_webhook_secret,
                BudgetSpend.period,
                BudgetSpend.spent_credits,
            )
            .join(BudgetSpend, and_(BudgetSpend.budget_id == Budget.id, or_(*current)))
            .where(BudgetSpend.spent_credits > 0)
        )
    ]
    spend = {int(r[0]): r for r in rows}
    rules = (
        (
            await conn.execute(
                select(
                    SpendAlertRule.id,
                    SpendAlertRule.budget_id,
                    SpendAlertRule.threshold_credits,
                    SpendAlertRule.recipients,
                    SpendAlertRule.subject_prefix,
                ).where(SpendAlertRule.budget_id.in_(list(spend)))
            )
        ).all()
        if spend
        else []
    )
    found: list[Crossing] = []

    def add(
        r: tuple[Any, ...], ref: str, pct: int | None, amount: int, to: list[str] | None, prefix: str | None
    ) -> None:
        bid, org, proj, member, limit, _t, hook, secret, bucket, spent = r
        found.append(
            Crossing(
                ref=ref,
                budget_id=int(bid),
                org_id=int(org),
                project_id=proj,
                member_id=member,
                level=level_of(proj, member),
                period=str(bucket),
                limit_credits=None if int(limit) >= NO_LIMIT else int(limit),
                spent_credits=int(spent),
                threshold_percent=pct,
                threshold_credits=amount,
                webhook=hook,
                webhook_secret=secret,
                recipients=tuple(to) if to is not None else None,
                subject_prefix=prefix,
            )
        )

    for r in rows:
        limit, spent = int(r[4]), int(r[9])
        for t in r[5] or []:
            if isinstance(t, int) and 0 < t <= 100 and limit < NO_LIMIT and spent * 100 >= limit * t:
                add(r, f"b{r[0]}:{t}%:{r[8]}", t, -(-limit * t // 100), None, None)
    for rule_id, budget_id, amount, to, prefix in rules:
        r = spend[int(budget_id)]
        if int(r[9]) >= int(amount):
            add(r, f"r{rule_id}:{r[8]}", None, int(amount), list(to or []), prefix)
    found.extend(more or [])
    if not found:
        return []
    raised = set(
        (
            await conn.execute(
                select(SpendAlertEvent.ref).where(SpendAlertEvent.ref.in_([c.ref for c in found]))
            )
        ).scalars()
    )
    return [c for c in found if c.ref not in raised]


async def claim(conn: AsyncConnection, c: Crossing, *, now: datetime) -> int | None:
    """Raise the alert: its id for the one caller that records it first, else None."""
    ins = dialect_insert(conn.dialect.name, SpendAlertEvent)
    res = await conn.execute(
        ins.values(
            ref=c.ref,
            org_id=c.org_id,
            project_id=c.project_id,
            member_id=c.member_id,
            budget_id=c.budget_id or None,
            key_id=c.key_id,
            level=c.level,
            period=c.period,
            threshold_percent=c.threshold_percent,
            threshold_credits=c.threshold_credits,
            limit_credits=c.limit_credits,
            spent_credits=c.spent_credits,
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(SpendAlertEvent.id)
    )
    row = res.first()
    return int(row[0]) if row is not None else None


async def add_delivery(
    conn: AsyncConnection,
    *,
    delivery_id: str,
    event_id: int,
    url: str,
    body: str,
    secret_sealed: str,
    now: datetime,
) -> None:
    await conn.execute(
        insert(WebhookDelivery).values(
            id=delivery_id,
            event_id=event_id,
            url=url,
            body=body,
            secret_sealed=secret_sealed,
            state="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


async def due_deliveries(conn: AsyncConnection, *, now: datetime, limit: int = 20) -> list[DueDelivery]:
    rows = (
        await conn.execute(
            select(
                WebhookDelivery.id,
                WebhookDelivery.url,
                WebhookDelivery.body,
                WebhookDelivery.secret_sealed,
                WebhookDelivery.attempts,
            )
            .where(
                WebhookDelivery.state == "pending",
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
    ).all()
    return [DueDelivery(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4])) for r in rows]


async def lease(conn: AsyncConnection, d: DueDelivery, *, now: datetime, until: datetime) -> bool:
    """Take one attempt of a delivery (one instance wins it): its attempt count moves on."""
    res = await conn.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == d.id,
            WebhookDelivery.state == "pending",
            WebhookDelivery.attempts == d.attempts,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now),
        )
        .values(attempts=d.attempts + 1, lease_until=until)
    )
    return bool(res.rowcount)


async def record_attempt(
    conn: AsyncConnection,
    *,
    delivery_id: str,
    attempt: int,
    started_at: datetime,
    status_code: int | None,
    latency_ms: int,
    error: str | None,
    state: str,
    next_attempt_at: datetime | None,
) -> None:
    """One attempt's outcome; the delivery is ``delivered``, ``failed`` or tried at ``next_attempt_at``."""
    await conn.execute(
        insert(WebhookAttempt).values(
            delivery_id=delivery_id,
            attempt=attempt,
            started_at=started_at,
            status_code=status_code,
            latency_ms=latency_ms,
            error=error[:500] if error else None,
        )
    )
    values: dict[str, object] = {"state": state, "lease_until": None}
    if state == "pending" and next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    else:
        values["finished_at"] = started_at
    # Only while this attempt holds the lease (an instance whose lease ran out records, changes nothing).
    await conn.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.attempts == attempt)
        .values(**values)
    )


async def attempts_of(
    conn: AsyncConnection, *, delivery_id: str
) -> list[tuple[int, int | None, int, str | None]]:
    """(attempt, status, latency ms, error) of a delivery's attempts, in order."""
    rows = (
        await conn.execute(
            select(
                WebhookAttempt.attempt,
                WebhookAttempt.status_code,
                WebhookAttempt.latency_ms,
                WebhookAttempt.error,
            )
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        )
    ).all()
    return [(int(r[0]), r[1], int(r[2]), r[3]) for r in rows]


async def recent_alerts(
    conn: AsyncConnection,
    *,
    org_id: int | None = None,
    project_ids: list[int] | None = None,
    limit: int = 20,
) -> list[AlertRow]:
    """The latest alerts, newest first: of one organisation (``org_id``; with ``project_ids``, only
    the organisation's own and those projects'), or of every organisation (the operator's console)."""
    q = (
        select(
            SpendAlertEvent.id,
            SpendAlertEvent.org_id,
            SpendAlertEvent.project_id,
            SpendAlertEvent.member_id,
            SpendAlertEvent.level,
            SpendAlertEvent.period,
            SpendAlertEvent.threshold_percent,
            SpendAlertEvent.threshold_credits,
            SpendAlertEvent.limit_credits,
            SpendAlertEvent.spent_credits,
            SpendAlertEvent.created_at,
            WebhookDelivery.state,
            WebhookDelivery.attempts,
            SpendAlertEvent.key_id,
        )
        .outerjoin(WebhookDelivery, WebhookDelivery.event_id == SpendAlertEvent.id)
        .order_by(SpendAlertEvent.id.desc())
        .limit(limit)
    )
    if org_id is not None:
        q = q.where(SpendAlertEvent.org_id == org_id)
    if project_ids is not None:
        q = q.where(or_(SpendAlertEvent.project_id.is_(None), SpendAlertEvent.project_id.in_(project_ids)))
    return [
        AlertRow(
            id=int(r[0]),
            org_id=int(r[1]),
            project_id=r[2],
            member_id=r[3],
            level=str(r[4]),
            period=str(r[5]),
            threshold_percent=r[6],
            threshold_credits=int(r[7]),
            limit_credits=r[8],
            spent_credits=int(r[9]),
            created_at=r[10],
            webhook_state=r[11],
            webhook_attempts=int(r[12] or 0),
            key_id=r[13],
        )
        for r in (await conn.execute(q)).all()
    ]
