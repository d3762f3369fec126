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

Stored Responses answers (``store``: true) ride in the settle lane's statement as two more WITH
parts (``STORED``): the response row and its items, written only if that id is new, so a client
waits for one round trip for its charge, its log row and its stored response together.
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
# The columns of a stored response and of its items (``store/responses.py``).
RESPONSE_COLUMNS = (
    "id, account_id, key_id, model, provider, native, previous_response_id, thread_id, body,"
    " created_at, expires_at"
)
ITEM_COLUMNS = "response_id, position, kind, item_id, account_id, data"


def _stored(first: int) -> str:
    """WITH parts writing a batch's stored responses (``$first``: the responses as a JSON array of
    rows, the next parameter their items): ``stored`` returns the ids written; an id already present
    writes nothing, nor its items (a retried batch, or an upstream's id seen before). JSON rather
    than one typed array per column: asyncpg checks every array element against several abstract
    base classes (~90 Python calls per stored request)."""
    return (
        f"stored AS (INSERT INTO responses ({RESPONSE_COLUMNS}) SELECT {RESPONSE_COLUMNS}"
        f" FROM jsonb_populate_recordset(NULL::responses, ${first}::jsonb)"
        " ON CONFLICT DO NOTHING RETURNING id),"
        f" stored_items AS (INSERT INTO response_items ({ITEM_COLUMNS}) SELECT {ITEM_COLUMNS}"
        f" FROM jsonb_populate_recordset(NULL::response_items, ${first + 1}::jsonb)"
        " WHERE response_id IN (SELECT id FROM stored))"
    )


# The refund (the account's row lock, held until the commit) comes last: the WITH parts that the
# query does not read run in the order written, after it (a stored response, read by the query
# for its ids, is written before them).
_SETTLE_PARTS = (
    " logs AS ({logs}),"
    " charge AS (INSERT INTO ledger"
    " (account_id, key_id, kind, credits, reference_id, description, model, created_at)"
    " SELECT d.account_id, d.key_id, 'charge', -d.charge, $1, $3::text, $3::text, now()"
    " FROM d WHERE d.charge > 0),"
    " refund AS (UPDATE accounts a SET balance_credits = a.balance_credits + d.credits - d.charge"
    " FROM d WHERE a.id = d.account_id AND d.credits <> d.charge)"
).format(logs=_INSERT_LOGS.replace("$1", "$4"))
_DELETE_HOLD = (
    "WITH d AS (DELETE FROM holds WHERE inference_id = $1 RETURNING account_id, key_id, credits,"
    " GREATEST($2::bigint, 0) AS charge),"
)
SETTLE_ONE = f"{_DELETE_HOLD}{_SETTLE_PARTS} SELECT coalesce((SELECT charge FROM d), -1)"
SETTLE_ONE_STORED = (
    f"{_DELETE_HOLD} {_stored(5)},{_SETTLE_PARTS}"
    " SELECT coalesce((SELECT charge FROM d), -1), ARRAY(SELECT id FROM stored)"
)
LOGS_STORED = f"WITH logs AS ({_INSERT_LOGS}), {_stored(2)} SELECT ARRAY(SELECT id FROM stored)"
STORED = f"WITH {_stored(1)} SELECT ARRAY(SELECT id FROM stored)"
APPLY_STORED = (
    f"WITH {_stored(19)} SELECT settled, codes, ARRAY(SELECT id FROM stored) AS stored"
    + APPLY.removeprefix("SELECT settled, codes")
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


@dataclass(slots=True)
class StoreOp:
    """A stored Responses answer: its row and its items' rows (column -> value, ``RESPONSE_COLUMNS``
    and ``ITEM_COLUMNS``); ``fut`` resolves once they are committed."""

    response: dict[str, Any]
    items: list[dict[str, Any]]
    fut: asyncio.Future[None]

    @property
    def id(self) -> str:
        """The id as stored (without NUL characters, like every text value)."""
        return str(self.response["id"]).replace("\x00", "")


def _stored_args(stored: Sequence[StoreOp]) -> tuple[str, str]:
    """The batch's responses and items as two JSON arrays (PostgreSQL text holds no NUL: an escaped
    one in the JSON means a value to clean first, which is rare)."""
    responses = orjson.dumps([op.response for op in stored])
    items = orjson.dumps([row for op in stored for row in op.items])
    if b"\\u0000" in responses or b"\\u0000" in items:
        responses = orjson.dumps([clean(dict(op.response)) for op in stored])
        items = orjson.dumps([clean(dict(row)) for op in stored for row in op.items])
    return responses.decode(), items.decode()


async def execute(
    conn: Any,
    *,
    owner: int,
    holds: list[HoldOp],
    settles: list[SettleOp],
    logs: list[dict[str, Any]],
    retry: bool,
    stored: Sequence[StoreOp] = (),
) -> tuple[Sequence[int], Sequence[int], Sequence[str]]:
    """Apply one batch in one statement (autocommit: one round trip, one commit); returns what was
    charged per settle (-1: its hold was gone), the outcome of each hold, and the ids of the
    stored responses written (one already present is not)."""
    standard = not logs or sorted(logs[0]) == LOG_COLUMNS
    rows = orjson.dumps([clean(r) for r in logs]).decode() if logs else None
    if stored:
        return await _execute_stored(conn, owner, holds, settles, logs, rows, standard, retry, stored)
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
            return (), (HOLD_OK,), ()
        code = await conn.fetchval(HOLD_REFUSAL, h.account_id, h.key_id)
        return (), (HOLD_NO_CREDITS if code is None else int(code),), ()
    if not holds and len(settles) == 1 and not settles[0].limited and standard:
        s = settles[0]
        charged = await conn.fetchval(SETTLE_ONE, s.inference_id, s.charge, s.model, rows or "[]")
        return (charged,), (), ()
    if not holds and not settles and standard:
        await conn.execute(_INSERT_LOGS, rows)
        return (), (), ()
    row = await conn.fetchrow(APPLY, *_apply_args(owner, holds, settles, logs, rows, retry))
    return row["settled"] or (), row["codes"] or (), ()


async def _execute_stored(
    conn: Any,
    owner: int,
    holds: list[HoldOp],
    settles: list[SettleOp],
    logs: list[dict[str, Any]],
    rows: str | None,
    standard: bool,
    retry: bool,
    stored: Sequence[StoreOp],
) -> tuple[Sequence[int], Sequence[int], Sequence[str]]:
    """``execute`` with stored responses: the same statements, with the ``stored`` WITH parts."""
    extra = _stored_args(stored)
    if not holds and len(settles) == 1 and not settles[0].limited and standard:
        s = settles[0]
        row = await conn.fetchrow(SETTLE_ONE_STORED, s.inference_id, s.charge, s.model, rows or "[]", *extra)
        return (row[0],), (), row[1]
    if not holds and not settles and standard:
        ids = await (conn.fetchval(LOGS_STORED, rows, *extra) if logs else conn.fetchval(STORED, *extra))
        return (), (), ids
    row = await conn.fetchrow(APPLY_STORED, *_apply_args(owner, holds, settles, logs, rows, retry), *extra)
    return row["settled"] or (), row["codes"] or (), row["stored"]


def _apply_args(
    owner: int,
    holds: list[HoldOp],
    settles: list[SettleOp],
    logs: list[dict[str, Any]],
    rows: str | None,
    retry: bool,
) -> list[Any]:
    """The arguments of ``modelgate_ledger_apply`` for a general batch."""
    accounts = {s.account_id for s in settles}
    accounts.update(h.account_id for h in holds)
    settles_limited = any(s.limited for s in settles)
    return [
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
    ]


def clean(row: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL text cannot hold NUL characters."""
    for k, v in row.items():
        if isinstance(v, str) and "\x00" in v:
            row[k] = v.replace("\x00", "")
    return row
