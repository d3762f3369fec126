"""The budget part of a hold, settle and release (migration 0012): one conditional update per budget
bucket, against the budget's live limit, inside the ledger's own transaction (the pool account's row
is locked or written in the same transaction, so concurrent holds of one organisation serialise).

Two forms of the same statements: ``sqlite3`` for the embedded writer (``billing/sqlite_ledger.py``)
and SQLAlchemy for the transactional ``Ledger``. PostgreSQL's group commit does the same inside
``modelgate_ledger_apply``.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.db import dialect_insert
from modelgate.store.schema import Budget, BudgetSpend

_SQLITE_ENSURE = (
    "INSERT OR IGNORE INTO budget_spend (budget_id, period, spent_credits, held_credits)"
    " SELECT id, ?, 0, 0 FROM budgets WHERE id = ?"
)
_SQLITE_TAKE = (
    "UPDATE budget_spend SET held_credits = held_credits + ? WHERE budget_id = ? AND period = ?"
    " AND spent_credits + held_credits + ? <= (SELECT limit_credits FROM budgets WHERE id = ?)"
)
_SQLITE_GONE = "SELECT 1 FROM budgets WHERE id = ?"
_SQLITE_UNHOLD = (
    "UPDATE budget_spend SET held_credits = held_credits - ?, spent_credits = spent_credits + ?"
    " WHERE budget_id = ? AND period = ?"
)


def sqlite_hold_budgets(conn: sqlite3.Connection, buckets: list[tuple[int, str]], credits: int) -> int | None:
    """Take ``credits`` from every bucket, or none of them: returns the index of the first bucket
    without room (what was taken before it is given back), or None when all had room. A budget
    deleted meanwhile no longer limits."""
    for i, (budget_id, period) in enumerate(buckets):
        conn.execute(_SQLITE_ENSURE, (period, budget_id))
        cur = conn.execute(_SQLITE_TAKE, (credits, budget_id, period, credits, budget_id))
        if cur.rowcount != 1 and conn.execute(_SQLITE_GONE, (budget_id,)).fetchone() is not None:
            sqlite_unhold_budgets(conn, buckets[:i], held=credits, spent=0)
            return i
    return None


def sqlite_unhold_budgets(
    conn: sqlite3.Connection, buckets: list[tuple[int, str]], *, held: int, spent: int
) -> None:
    for budget_id, period in buckets:
        conn.execute(_SQLITE_UNHOLD, (held, spent, budget_id, period))


async def hold_budget(
    conn: AsyncConnection, dialect: str, *, budget_id: int, period: str, credits: int
) -> bool:
    """Take ``credits`` from one bucket if it has room (True; also when the budget is gone)."""
    if (await conn.execute(select(Budget.id).where(Budget.id == budget_id))).first() is None:
        return True
    ins = dialect_insert(dialect, BudgetSpend)
    await conn.execute(
        ins.values(
            budget_id=budget_id, period=period, spent_credits=0, held_credits=0
        ).on_conflict_do_nothing()
    )
    limit = select(Budget.limit_credits).where(Budget.id == budget_id).scalar_subquery()
    res = await conn.execute(
        update(BudgetSpend)
        .where(
            BudgetSpend.budget_id == budget_id,
            BudgetSpend.period == period,
            BudgetSpend.spent_credits + BudgetSpend.held_credits + credits <= limit,
        )
        .values(held_credits=BudgetSpend.held_credits + credits)
    )
    return bool(res.rowcount == 1)


async def unhold_budget(conn: AsyncConnection, *, budget_id: int, period: str, held: int, spent: int) -> None:
    await conn.execute(
        update(BudgetSpend)
        .where(BudgetSpend.budget_id == budget_id, BudgetSpend.period == period)
        .values(
            held_credits=BudgetSpend.held_credits - held,
            spent_credits=BudgetSpend.spent_credits + spent,
        )
    )
