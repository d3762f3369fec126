"""Spend alerts at the key level (``mail/spend_alerts.py``): keys whose spend in their limit's
current period reached a share of their own spending limit (``MODELGATE_BUDGET_ALERT_PERCENT``, and
100%), each raised once per key, share and period like a budget's thresholds, and posted to the
webhook of the nearest budget above the key that has one (its member's, its project's, its
organisation's). The key's owner is mailed by ``mail/alerts.py`` as before."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.ledger import period_key
from modelgate.store.schema import ApiKey, Budget, KeySpend
from modelgate.store.spend_alerts import Crossing

RETENTIONS = ("day", "week", "month")


async def key_crossings(conn: AsyncConnection, *, now: datetime, percents: tuple[int, ...]) -> list[Crossing]:
    """Every share in ``percents`` a key's spend reached in its limit's current period."""
    if not percents:
        return []
    current = [and_(ApiKey.limit_retention == r, KeySpend.period == period_key(r, now)) for r in RETENTIONS]
    current.append(and_(ApiKey.limit_retention.is_(None), KeySpend.period == period_key(None, now)))
    rows = (
        await conn.execute(
            select(
                ApiKey.id,
                ApiKey.prefix,
                ApiKey.account_id,
                ApiKey.project_id,
                ApiKey.member_id,
                ApiKey.limit_credits,
                KeySpend.period,
                KeySpend.spent_credits,
            )
            .join(KeySpend, and_(KeySpend.key_id == ApiKey.id, or_(*current)))
            .where(
                ApiKey.limit_credits > 0,
                ApiKey.deleted_at.is_(None),
                KeySpend.spent_credits * 100 >= ApiKey.limit_credits * min(percents),
            )
            .limit(1000)
        )
    ).all()
    if not rows:
        return []
    hooks = (
        await conn.execute(
            select(
                Budget.org_id,
                Budget.project_id,
                Budget.member_id,
                Budget.alert_webhook,
                Budget.alert_webhook_secret,
            ).where(
                Budget.org_id.in_({int(r[2]) for r in rows}),
                Budget.alert_webhook.is_not(None),
                Budget.alert_webhook_secret.is_not(None),
            )
        )
    ).all()
    found = []
    for key_id, prefix, org, project, member, raw_limit, bucket, spent in rows:
        limit = int(raw_limit or 0)
        # The most specific budget with a webhook the key falls under: member, project, organisation.
        best: tuple[int, str | None, str | None] = (-1, None, None)
        for h_org, h_project, h_member, url, secret in hooks:
            if h_org != org or (h_project is not None and h_project != project):
                continue
            if h_member is not None and (h_member != member or h_project is None):
                continue
            rank = 2 if h_member is not None else 1 if h_project is not None else 0
            if rank > best[0]:
                best = (rank, url, secret)
        for pct in sorted(set(percents)):
            if int(spent) * 100 >= limit * pct:
                found.append(
                    Crossing(
                        ref=f"k{key_id}:{pct}%:{bucket}",
                        budget_id=0,
                        org_id=int(org),
                        project_id=project,
                        member_id=member,
                        level="key",
                        period=str(bucket),
                        limit_credits=limit,
                        spent_credits=int(spent),
                        threshold_percent=pct,
                        threshold_credits=-(-limit * pct // 100),
                        webhook=best[1],
                        webhook_secret=best[2],
                        recipients=(),  # mailed by mail/alerts.py (the key's owner)
                        subject_prefix=None,
                        key_id=int(key_id),
                        key_prefix=str(prefix),
                    )
                )
    return found
