"""The ledger on the embedded SQLite database, through the process's group-commit writer.

Same contract and same SQL guards as ``Ledger`` (``UPDATE ... WHERE balance_credits >= :amount``),
but every operation is a function run by ``SQLiteWriter`` inside one batch transaction, so a busy
gateway commits hundreds of holds and settles at once instead of queueing on SQLite's write lock.
Request-log rows go through the same writer, usually in the very transaction of their charge.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from modelgate.errors import InsufficientCreditsError
from modelgate.store.budget_holds import sqlite_hold_budgets, sqlite_unhold_budgets
from modelgate.store.holds_owners import FileOwners, owners_of, select_stale
from modelgate.store.keys import KeyIdentity, KeyRevokedError, revoked_key_error
from modelgate.store.ledger import (
    OUT_OF_CREDITS_MESSAGE,
    HoldTicket,
    LedgerBase,
    budget_buckets,
    budget_error,
    period_key,
    spend_limit_error,
    split_buckets,
)
from modelgate.store.sqlite_wal import sqlite_timestamp
from modelgate.store.sqlite_writer import SQLiteWriter

log = logging.getLogger("modelgate.billing")


class SQLiteLedger(LedgerBase):
    def __init__(self, writer: SQLiteWriter, owners: FileOwners | None = None) -> None:
        super().__init__()
        self._writer = writer
        self._owners = owners
        self._me = owners.me if owners is not None else None

    async def hold(self, *, ident: KeyIdentity, inference_id: str, credits: int) -> HoldTicket:
        period = period_key(ident.limit_retention) if ident.limit_credits is not None else None
        buckets = budget_buckets(ident)
        parts = split_buckets(buckets)
        now = sqlite_timestamp(datetime.now(UTC))
        owner = self._me

        def op(conn: sqlite3.Connection) -> HoldTicket:
            # Refusals must leave nothing written (the writer's contract; a zero key_spend row is
            # neutral): the key's period limit is reserved first and given back if the balance
            # then refuses.
            limited = period is not None and ident.limit_credits is not None
            if limited:
                conn.execute(
                    "INSERT OR IGNORE INTO key_spend (key_id, period, spent_credits, held_credits)"
                    " VALUES (?, ?, 0, 0)",
                    (ident.key_id, period),
                )
                cur = conn.execute(
                    "UPDATE key_spend SET held_credits = held_credits + ? WHERE key_id = ? AND period = ?"
                    " AND spent_credits + held_credits + ? <= ?",
                    (credits, ident.key_id, period, credits, ident.limit_credits),
                )
                if cur.rowcount != 1:
                    raise _revoked(conn, ident) or spend_limit_error(ident, credits)
            # Every budget the key falls under (organisation, project, member), all or none.
            refused = sqlite_hold_budgets(conn, parts, credits) if parts else None
            if refused is not None:
                if limited:
                    _unhold_key(conn, ident.key_id, period, credits)
                raise _revoked(conn, ident) or budget_error(ident, refused)
            # The guard also requires the key live and its account enabled: a key revoked through
            # another instance or worker is refused here, on the next request (no Redis needed).
            cur = conn.execute(
                "UPDATE accounts SET balance_credits = balance_credits - ?"
                " WHERE id = ? AND (balance_credits >= ? OR postpaid) AND NOT disabled AND EXISTS (SELECT 1"
                " FROM api_keys WHERE id = ? AND NOT disabled AND deleted_at IS NULL)",
                (credits, ident.account_id, credits, ident.key_id),
            )
            if cur.rowcount != 1:
                if limited:
                    _unhold_key(conn, ident.key_id, period, credits)
                if parts:
                    sqlite_unhold_budgets(conn, parts, held=credits, spent=0)
                raise _revoked(conn, ident) or InsufficientCreditsError(OUT_OF_CREDITS_MESSAGE)
            conn.execute(
                "INSERT INTO holds (inference_id, account_id, key_id, period, credits, created_at, owner,"
                " budgets) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (inference_id, ident.account_id, ident.key_id, period, credits, now, owner, buckets),
            )
            return HoldTicket(inference_id, ident.account_id, ident.key_id, period, credits, buckets)

        # Not shielded: if the caller is cancelled, or stops waiting after the writer's timeout (the
        # database is locked or failing: 503), the writer hands the hold, once committed, to
        # _release_orphan (nobody will settle it).
        return await self._writer.submit(
            op, orphan=self._release_orphan, at_once=True, deadline=self._writer.timeout
        )

    def _release_orphan(self, ticket: HoldTicket) -> None:
        self._spawn(self.release(ticket))

    def settle(
        self, ticket: HoldTicket, *, credits: int, description: str | None = None
    ) -> asyncio.Future[int]:
        charge = max(0, credits)  # the whole real cost (overdraft rule, docs/pricing.md)
        now = sqlite_timestamp(datetime.now(UTC))

        def op(conn: sqlite3.Connection) -> int:
            if not _take_hold(conn, ticket):
                return 0
            conn.execute(
                "UPDATE accounts SET balance_credits = balance_credits + ? WHERE id = ?",
                (ticket.credits - charge, ticket.account_id),
            )
            if charge:
                conn.execute(
                    "INSERT INTO ledger (account_id, key_id, kind, credits, reference_id, description, model,"
                    " created_at) VALUES (?, ?, 'charge', ?, ?, ?, ?, ?)",
                    (
                        ticket.account_id,
                        ticket.key_id,
                        -charge,
                        ticket.inference_id,
                        description,
                        description,
                        now,
                    ),
                )
            _unhold_spend(conn, ticket, spent=charge)
            return charge

        # Queued, not at once: the settle is submitted before its response is written, and its work
        # belongs after that write (the batch runs in the next loop iteration).
        return self._spawn(self._writer.submit(op))

    async def release(self, ticket: HoldTicket) -> None:
        def op(conn: sqlite3.Connection) -> None:
            if _take_hold(conn, ticket):
                conn.execute(
                    "UPDATE accounts SET balance_credits = balance_credits + ? WHERE id = ?",
                    (ticket.credits, ticket.account_id),
                )
                _unhold_spend(conn, ticket, spent=0)

        await self._tracked(self._writer.submit(op, at_once=True))

    async def release_stale(self, *, older_than: timedelta) -> int:
        """Release the holds of processes that are gone (``store/holds_owners.py``), and any hold older
        than ``older_than``."""
        cutoff = sqlite_timestamp(datetime.now(UTC) - older_than)
        me = self._me

        def op(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT inference_id, account_id, key_id, period, credits, owner, created_at < ?, budgets"
                " FROM holds WHERE owner IS NOT ? OR created_at < ?",
                (cutoff, me, cutoff),
            ).fetchall()

        rows = await self._writer.submit(op)
        if not rows:
            return 0
        others = owners_of(rows, me)
        gone = await self._owners.gone(others) if self._owners is not None else set()
        stale = select_stale(rows, me=me, gone=gone)
        for row in stale:
            await self.release(HoldTicket(row[0], row[1], row[2], row[3], row[4], row[7]))
        if self._owners is not None:
            self._owners.forget(gone)
        if stale:
            log.warning(
                "released %d holds left by %d stopped processes or past their deadline", len(stale), len(gone)
            )
        return len(stale)

    def writes_failing(self) -> bool:
        return self._writer.failing()

    async def flush(self) -> None:
        await super().flush()
        await self._writer.flush()


def _revoked(conn: sqlite3.Connection, ident: KeyIdentity) -> KeyRevokedError | None:
    """Why a hold was refused, if its key is no longer live (else None: the balance or limit)."""
    row = conn.execute(
        "SELECT k.id IS NULL OR k.deleted_at IS NOT NULL, a.disabled, k.disabled FROM accounts a"
        " LEFT JOIN api_keys k ON k.id = ? AND k.account_id = a.id WHERE a.id = ?",
        (ident.key_id, ident.account_id),
    ).fetchone()
    if row is None:
        return revoked_key_error(key_id=ident.key_id, gone=True, account_disabled=False, key_disabled=False)
    return revoked_key_error(
        key_id=ident.key_id, gone=bool(row[0]), account_disabled=bool(row[1]), key_disabled=bool(row[2])
    )


def _take_hold(conn: sqlite3.Connection, ticket: HoldTicket) -> bool:
    cur = conn.execute("DELETE FROM holds WHERE inference_id = ?", (ticket.inference_id,))
    return cur.rowcount == 1


def _unhold_key(conn: sqlite3.Connection, key_id: int, period: str | None, credits: int) -> None:
    conn.execute(
        "UPDATE key_spend SET held_credits = held_credits - ? WHERE key_id = ? AND period = ?",
        (credits, key_id, period),
    )


def _unhold_spend(conn: sqlite3.Connection, ticket: HoldTicket, *, spent: int) -> None:
    if ticket.budgets:
        sqlite_unhold_budgets(conn, split_buckets(ticket.budgets), held=ticket.credits, spent=spent)
    if ticket.period is None or ticket.key_id is None:
        return
    conn.execute(
        "UPDATE key_spend SET held_credits = held_credits - ?, spent_credits = spent_credits + ?"
        " WHERE key_id = ? AND period = ?",
        (ticket.credits, spent, ticket.key_id, ticket.period),
    )
