"""What one batch of the PostgreSQL ledger writer sends: a single statement, always.

A general batch is one call of ``modelgate_ledger_apply`` (migration 0006): settles, then holds in
order under the row locks, then log rows. A batch of one operation, what a quiet gateway sends,
takes a plain statement instead (measured: a third of the server CPU of the function call and half
of the client's), with the same guard and the same effect:

- one hold without a key limit: ``UPDATE accounts ... WHERE balance >= :h`` (and the key live, the
  account enabled) and ``INSERT holds`` in one statement (the insert only happens if the guarded
  update did); a refusal then reads why (the balance, or a revoked key: a rare, second statement);
- one settle or release of a hold without a key limit, with the log rows queued with it;
- log rows alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

HOLD_OK, HOLD_NO_CREDITS, HOLD_OVER_LIMIT = 0, 1, 2
# A hold refused because its key was revoked since the instance cached it (migration 0010).
HOLD_KEY_GONE, HOLD_ACCOUNT_DISABLED, HOLD_KEY_DISABLED = 3, 4, 5
# A hold refused by the i-th of its budget buckets (migration 0012): HOLD_OVER_BUDGET + i.
HOLD_OVER_BUDGET = 10

# The columns of the request-log rows the gateway records, sorted. Rows with exactly these columns
# use static statements (planned once); other rows go through the function's dynamic insert.
LOG_COLUMNS = [
    "account_id",
    "attempts",
    "audio_tokens",
    "cache",
    "cache_saved_credits",
    "cache_write_1h_tokens",
    "cache_write_5m_tokens",
    "cached_tokens",
    "client_request_id",
    "completion_tokens",
    "created_at",
    "credits",
    "door",
    "error_message",
    "finish_reason",
    "http_status",
    "inference_id",
    "key_id",
    "key_prefix",
    "latency_ms",
    "model",
    "origin",
    "overage_credits",
    "prompt_tokens",
    "provider",
    "reasoning_tokens",
    "route",
    "status",
    "stream",
    "tier",
    "ttft_ms",
    "uses",
]
_COLS = ", ".join(LOG_COLUMNS)
_INSERT_LOGS = (
    f"INSERT INTO request_logs ({_COLS}) SELECT {_COLS}"
    " FROM jsonb_populate_recordset(NULL::request_logs, $1::jsonb) ON CONFLICT DO NOTHING"
)

APPLY = (
    "SELECT settled, codes FROM modelgate_ledger_apply("
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::jsonb, $18::text[])"
)
HOLD_ONE = (
    "WITH taken AS (UPDATE accounts SET balance_credits = balance_credits - $3"
    " WHERE id = $2 AND (balance_credits >= $3 OR postpaid) AND NOT disabled"
    " AND ($4::integer IS NULL OR EXISTS"
    " (SELECT 1 FROM api_keys WHERE id = $4 AND NOT disabled AND deleted_at IS NULL)) RETURNING id)"
    " INSERT INTO holds (inference_id, account_id, key_id, period, credits, created_at, owner)"
    " SELECT $1, id, $4, NULL, $3, now(), $5 FROM taken"
)
# Why a single hold was refused: the key's state (in migration 0010's order), else the balance.
HOLD_REFUSAL = (
    "SELECT CASE WHEN $2::integer IS NOT NULL AND (k.id IS NULL OR k.deleted_at IS NOT NULL) THEN 3"
    " WHEN a.disabled THEN 4 WHEN k.disabled THEN 5 ELSE 1 END"
    " FROM accounts a LEFT JOIN api_keys k ON k.id = $2 WHERE a.id = $1"
)
# The refund (the account's row lock, held until the commit) comes last: the WITH parts that the
# query does not read run in the order written, after it.
SETTLE_ONE = (
    "WITH d AS (DELETE FROM holds WHERE inference_id = $1 RETURNING account_id, key_id, credits,"
    " GREATEST($2::bigint, 0) AS charge),"
    f" logs AS ({_INSERT_LOGS.replace('$1', '$4')}),"
    " charge AS (INSERT INTO ledger"
    " (account_id, key_id, kind, credits, reference_id, description, model, created_at)"
    " SELECT d.account_id, d.key_id, 'charge', -d.charge, $1, $3::text, $3::text, now()"
    " FROM d WHERE d.charge > 0),"
    " refund AS (UPDATE accounts a SET balance_credits = a.balance_credits + d.credits - d.charge"
    " FROM d WHERE a.id = d.account_id AND d.credits <> d.charge)"
    " SELECT coalesce((SELECT charge FROM d), -1)"
)


@dataclass(slots=True)
class HoldOp:
    inference_id: str
    account_id: int
    key_id: int | None
    period: str | None
    credits: int
    limit: int | None
    fut: asyncio.Future[int]
    after: int = 0  # the writer's settle-lane submissions before it (pg_writer.PGWriter.deliver)
    budgets: str | None = None  # its budget buckets (``holds.budgets``)


@dataclass(slots=True)
class SettleOp:
    """A settle (``charge`` > 0 writes a charge) or a release (``charge`` 0): the hold's credits go
    back to the balance, less the charge."""

    inference_id: str
    account_id: int
    limited: bool  # the hold counts against a key limit or budgets (its ticket has a period or buckets)
    charge: int
    model: str | None
    fut: asyncio.Future[int] | None


async def execute(
    conn: Any,
    *,
    owner: int,
    holds: list[HoldOp],
    settles: list[SettleOp],
    logs: list[dict[str, Any]],
    retry: bool,
) -> tuple[Sequence[int], Sequence[int]]:
    """Apply one batch in one statement (autocommit: one round trip, one commit); returns what was
    charged per settle (-1: its hold was gone) and the outcome of each hold."""
    standard = not logs or sorted(logs[0]) == LOG_COLUMNS
    rows = orjson.dumps([clean(r) for r in logs]).decode() if logs else None
    if (
        len(holds) == 1
        and not settles
        and not logs
        and holds[0].limit is None
        and holds[0].budgets is None
        and not retry
    ):
        h = holds[0]
        status = await conn.execute(HOLD_ONE, h.inference_id, h.account_id, h.credits, h.key_id, owner)
        if status == "INSERT 0 1":
            return (), (HOLD_OK,)
        code = await conn.fetchval(HOLD_REFUSAL, h.account_id, h.key_id)
        return (), (HOLD_NO_CREDITS if code is None else int(code),)
    if not holds and len(settles) == 1 and not settles[0].limited and standard:
        s = settles[0]
        charged = await conn.fetchval(SETTLE_ONE, s.inference_id, s.charge, s.model, rows or "[]")
        return (charged,), ()
    if not holds and not settles and standard:
        await conn.execute(_INSERT_LOGS, rows)
        return (), ()
    accounts = {s.account_id for s in settles}
    accounts.update(h.account_id for h in holds)
    settles_limited = any(s.limited for s in settles)
    row = await conn.fetchrow(
        APPLY,
        owner,
        retry,
        # Lock the accounts first (in id order) when the batch has several, or when a settle touches
        # key_spend rows (the settle statement's parts run in no set order): a key_spend row is only
        # ever locked after its account, so two batches never wait on each other in a cycle.
        len(accounts) > 1 or settles_limited,
        [s.inference_id for s in settles],
        [s.account_id for s in settles],
        [s.charge for s in settles],
        [s.model for s in settles],
        settles_limited,
        [h.inference_id for h in holds],
        [h.account_id for h in holds],
        [h.key_id for h in holds],
        [h.period for h in holds],
        [h.credits for h in holds],
        [h.limit for h in holds],
        any(h.limit is not None for h in holds),
        sorted(logs[0]) if logs else None,
        rows,
        [h.budgets for h in holds],
    )
    return row["settled"] or (), row["codes"] or ()


def clean(row: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL text cannot hold NUL characters."""
    for k, v in row.items():
        if isinstance(v, str) and "\x00" in v:
            row[k] = v.replace("\x00", "")
    return row
