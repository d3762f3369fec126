"""Reads of an account's money movements (the ``ledger`` table): the service API's
``/v2/billing/transactions``, the Billing page and its CSV export. Writes are the ledgers'
(``store/ledger*.py``) and top-ups' (``store/accounts.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from modelgate.store.db import Conn
from modelgate.store.organisations import in_keys_of
from modelgate.store.schema import LedgerEntry


@dataclass(frozen=True, slots=True)
class TxFilter:
    account_id: int
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    direction: str | None = None  # TOPUP (credits in) | CHARGE (credits out)
    kind: str | None = None  # a ledger kind: charge, topup, bonus, ...
    before_id: int | None = None  # the page after this row (cursor)
    project_id: int | None = None  # the rows of this project's keys only
    member_id: int | None = None  # the rows of this member's keys only


async def transactions(conn: Conn, f: TxFilter, *, limit: int, offset: int = 0) -> list[Any]:
    """Ledger rows, newest first, every column."""
    q = select(LedgerEntry).where(
        LedgerEntry.account_id == f.account_id,
        *in_keys_of(LedgerEntry.key_id, project_id=f.project_id, member_id=f.member_id),
    )
    if f.since is not None:
        q = q.where(LedgerEntry.created_at >= f.since)
    if f.until is not None:
        q = q.where(LedgerEntry.created_at < f.until)
    if f.direction == "TOPUP":
        q = q.where(LedgerEntry.credits > 0)
    elif f.direction == "CHARGE":
        q = q.where(LedgerEntry.credits < 0)
    if f.kind is not None:
        q = q.where(LedgerEntry.kind == f.kind)
    if f.before_id is not None:
        q = q.where(LedgerEntry.id < f.before_id)
    q = q.order_by(LedgerEntry.id.desc()).limit(limit).offset(offset)
    return list((await conn.execute(q)).all())
