"""Who is due an alert mail (``mail/alerts.py``): accounts whose balance fell below a threshold
since their last credit, keys past a share of their spending limit in the current period; and the
claim that makes one instance, once, send each (``mail_alerts``' primary key)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import String, and_, cast, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.db import dialect_insert
from modelgate.store.schema import Account, ApiKey, KeySpend, LedgerEntry
from modelgate.store.schema_self_service import MailAlert

LOW_BALANCE = "low_balance"
BUDGET = "budget"


@dataclass(frozen=True, slots=True)
class LowBalance:
    account_id: int
    email: str
    balance_credits: int
    ref: str  # the id of the account's last credit: one alert per top-up


@dataclass(frozen=True, slots=True)
class KeyBudget:
    account_id: int
    email: str
    key_name: str
    spent_credits: int
    limit_credits: int
    period: str
    ref: str  # key id and period: one alert per limit period


async def low_balances(conn: AsyncConnection, *, below_credits: int, limit: int = 500) -> list[LowBalance]:
    last_credit = (
        select(LedgerEntry.account_id, func.max(LedgerEntry.id).label("ref"))
        .where(LedgerEntry.credits > 0)
        .group_by(LedgerEntry.account_id)
        .subquery()
    )
    ref = cast(last_credit.c.ref, String)
    alerted = exists().where(
        and_(MailAlert.account_id == Account.id, MailAlert.kind == LOW_BALANCE, MailAlert.ref == ref)
    )
    query = (
        select(Account.id, Account.email, Account.balance_credits, ref.label("ref"))
        .join(last_credit, last_credit.c.account_id == Account.id)
        .where(Account.balance_credits < below_credits, Account.disabled.is_(False), ~alerted)
        .limit(limit)
    )
    return [
        LowBalance(int(r.id), str(r.email), int(r.balance_credits), str(r.ref))
        for r in await conn.execute(query)
    ]


async def key_budgets(
    conn: AsyncConnection, *, periods: list[str], percent: int, limit: int = 500
) -> list[KeyBudget]:
    """Keys whose spend in one of ``periods`` (the current period of each retention) is at least
    ``percent`` of their limit."""
    query = (
        select(
            Account.id,
            Account.email,
            ApiKey.id.label("key_id"),
            func.coalesce(ApiKey.name, ApiKey.prefix).label("key_name"),
            KeySpend.spent_credits,
            ApiKey.limit_credits,
            KeySpend.period,
        )
        .join(KeySpend, KeySpend.key_id == ApiKey.id)
        .join(Account, Account.id == ApiKey.account_id)
        .where(
            ApiKey.limit_credits > 0,
            ApiKey.deleted_at.is_(None),
            Account.disabled.is_(False),
            KeySpend.period.in_(periods),
            KeySpend.spent_credits * 100 >= ApiKey.limit_credits * percent,
        )
        .limit(limit)
    )
    return [
        KeyBudget(
            int(r.id),
            str(r.email),
            str(r.key_name),
            int(r.spent_credits),
            int(r.limit_credits),
            str(r.period),
            f"{r.key_id}:{r.period}"[:64],
        )
        for r in await conn.execute(query)
    ]


async def claim_alert(conn: AsyncConnection, *, account_id: int, kind: str, ref: str) -> bool:
    """True for the one caller that records this alert first (it then sends it)."""
    ins = dialect_insert(conn.dialect.name, MailAlert)
    result = await conn.execute(
        ins.values(account_id=account_id, kind=kind, ref=ref).on_conflict_do_nothing()
    )
    return result.rowcount == 1
