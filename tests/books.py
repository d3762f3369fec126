"""The books of one account, read straight from the database in one snapshot: the single reader the
exactness tests share (balance, ledger entries, log rows and open holds)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy import func, select

from modelgate.store.db import Database
from modelgate.store.leases import LEASE_PREFIX
from modelgate.store.schema import Account, Hold, LedgerEntry, RequestLog


@dataclass(frozen=True)
class Books:
    account_id: int
    balance: int
    topups: int  # every entry that is not a charge (top-ups, grants, corrections)
    charged: int  # the sum of the charges, as a positive number
    charges: dict[str | None, int] = field(repr=False)  # reference (inference id) -> credits charged
    logged: dict[str, int] = field(repr=False)  # inference id -> credits logged, rows with a cost only
    statuses: dict[str, int] = field(repr=False)  # inference id -> HTTP status, every row
    log_rows: int
    holds: int  # open holds of requests (leases not counted)
    leased: int = 0  # credits an instance holds as leases (store/leases.py): reserved, not spent

    @property
    def logged_total(self) -> int:
        return sum(self.logged.values())

    def assert_exact(self) -> None:
        """Nothing held; balance == top-ups - charges; every charge has its log row with the same
        credits, and no log row claims credits that were not charged."""
        assert self.holds == 0, self
        assert self.balance >= 0, self
        assert self.balance + self.leased == self.topups - self.charged, self
        assert self.charges == self.logged, (self.charges, self.logged)


async def read_books(url: str, *, email: str | None = None, account_id: int | None = None) -> Books:
    """The account's books, every figure from one REPEATABLE READ snapshot on PostgreSQL (read
    statement by statement, a settle committing between the balance and the ledger reads made the
    books look unbalanced on a loaded machine)."""
    if (email is None) == (account_id is None):
        raise ValueError("give exactly one of email and account_id")
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            if not url.startswith("sqlite"):
                conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            await conn.begin()
            where = Account.email == email if email is not None else Account.id == account_id
            acc = (await conn.execute(select(Account.id, Account.balance_credits).where(where))).one()
            aid = int(acc.id)
            entries = (
                await conn.execute(
                    select(LedgerEntry.kind, LedgerEntry.credits, LedgerEntry.reference_id).where(
                        LedgerEntry.account_id == aid
                    )
                )
            ).all()
            logs = (
                await conn.execute(
                    select(RequestLog.inference_id, RequestLog.credits, RequestLog.http_status).where(
                        RequestLog.account_id == aid
                    )
                )
            ).all()
            leases = Hold.inference_id.startswith(LEASE_PREFIX)
            holds = (
                await conn.execute(
                    select(func.count()).select_from(Hold).where(Hold.account_id == aid, ~leases)
                )
            ).scalar_one()
            leased = (
                await conn.execute(
                    select(func.coalesce(func.sum(Hold.credits), 0)).where(Hold.account_id == aid, leases)
                )
            ).scalar_one()
    finally:
        await db.aclose()
    charges: dict[str | None, int] = {}
    for kind, credits, ref in entries:
        if kind == "charge":
            charges[ref] = charges.get(ref, 0) - int(credits)
    return Books(
        account_id=aid,
        balance=int(acc.balance_credits),
        topups=sum(int(c) for kind, c, _ in entries if kind != "charge"),
        charged=sum(charges.values()),
        charges=charges,
        logged={iid: int(c) for iid, c, _ in logs if c},
        statuses={iid: int(status) for iid, _, status in logs},
        log_rows=len(logs),
        holds=int(holds),
        leased=int(leased),
    )


def books(url: str, *, email: str | None = None, account_id: int | None = None) -> Books:
    """``read_books`` from synchronous test code."""
    return asyncio.run(read_books(url, email=email, account_id=account_id))
