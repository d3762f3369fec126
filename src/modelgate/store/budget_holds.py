"""The budget part of a hold, settle and release (migration 0012): one conditional update per budget
bucket, against the budget's live limit, inside the ledger's own transaction (the pool account's row
is locked or written in the same transaction, so concurrent holds of one organisation serialise).

Two forms of the same statements: ``sqlite3`` for the embedded writer (``billing/sqlite_ledger.py``)
and SQLAlchemy for the transactional ``Ledger``. PostgreSQL's group commit does the same inside
``modelgate_ledger_apply``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from functools import cache

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.db import dialect_insert
from modelgate.store.schema import Budget, BudgetSpend

_SQLITE_ENSURE = (
    "INSERT OR IGNORE INTO budget_spend (budget_id, period, spent_credits, held_credits)"
    " SELECT id, ?, 0, 0 FROM budgets WHERE id = ?"
)


@cache
def _sqlite_statements(n: int) -> tuple[str, str, str]:
    """(read, take, unhold) for ``n`` buckets: one statement each, whatever the number of levels."""
    values = f"IN (VALUES {', '.join(['(?, ?)'] * n)})"
    pairs = f"(budget_id, period) {values}"
    read = (
        "SELECT s.budget_id, s.spent_credits + s.held_credits, b.limit_credits FROM budget_spend s"
        f" JOIN budgets b ON b.id = s.budget_id WHERE (s.budget_id, s.period) {values}"
    )
    take = f"UPDATE budget_spend SET held_credits = held_credits + ? WHERE {pairs}"
    unhold = (
        "UPDATE budget_spend SET held_credits = held_credits - ?, spent_credits = spent_credits + ?"
        f" WHERE {pairs}"
    )
    return read, take, unhold


def sqlite_hold_budgets(
    conn: sqlite3.Connection, buckets: Sequence[tuple[int, str]], credits: int
) -> int | None:
    """Take ``credits`` from every bucket, or from none: returns the index of the first bucket
    without room, or None when all had room. The writer runs its operations one at a time on its
    one connection, so this read-then-write is atomic: one read of every bucket (with its budget's
    live limit), one update of all of them. A budget deleted meanwhile no longer limits."""
    read, take, _ = _sqlite_statements(len(buckets))
    flat = [x for bucket in buckets for x in bucket]
    rows = conn.execute(read, flat).fetchall()
    if len(rows) < len(buckets):  # a bucket's first hold of its period (or a budget deleted)
        conn.executemany(_SQLITE_ENSURE, [(period, budget_id) for budget_id, period in buckets])
        rows = conn.execute(read, flat).fetchall()
    used = {int(r[0]): (int(r[1]), int(r[2])) for r in rows}
    for i, (budget_id, _) in enumerate(buckets):
        found = used.get(budget_id)
        if found is not None and found[0] + credits > found[1]:
            return i
    conn.execute(take, [credits, *flat])
    return None


def sqlite_unhold_budgets(
    conn: sqlite3.Connection, buckets: Sequence[tuple[int, str]], *, held: int, spent: int
) -> None:
    if buckets:
        conn.execute(_sqlite_statements(len(buckets))[2], [held, spent, *(x for b in buckets for x in b)])


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
