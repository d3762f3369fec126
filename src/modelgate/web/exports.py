"""CSV exports of the Billing page: request logs and transactions, with the page's filters.

Rows are streamed in pages of ``BATCH`` (a year of logs never sits in memory), at most
``MAX_ROWS``. Cells that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@`` first)
are prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import StreamingResponse

from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.httpkit.deps import app_state, pending_writes_flushed
from modelgate.store.db import Conn, Database
from modelgate.store.keys import key_labels
from modelgate.store.transactions import transactions
from modelgate.store.usage import log_page
from modelgate.web.billing_data import parse_filter
from modelgate.web.sessions import CurrentUser

router = APIRouter(include_in_schema=False, dependencies=[Depends(pending_writes_flushed)])

BATCH = 1000
MAX_ROWS = 100_000
LOG_COLUMNS = (
    "created_at",
    "request_id",
    "client_request_id",
    "model",
    "provider",
    "origin",
    "key",
    "status",
    "http_status",
    "error_message",
    "stream",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "cache_write_5m_tokens",
    "cache_write_1h_tokens",
    "audio_tokens",
    "tier",
    "uses",
    "credits",
    "usd",
    "overage_credits",
    "finish_reason",
    "latency_ms",
)
TX_COLUMNS = ("created_at", "id", "type", "description", "model", "key", "credits", "usd", "reference_id")


NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def safe_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not NUMBER.match(value):
        return "'" + value
    return value


def _line(values: Iterable[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf).writerow([safe_cell(v) for v in values])
    return buf.getvalue()


def _usd(credits: int) -> str:
    return format(Decimal(credits) / CREDITS_PER_USD, "f")


def _when(value: datetime) -> str:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _rows(db: Database, page: Callable[[Conn, int], Awaitable[list[Any]]]) -> AsyncIterator[Any]:
    sent = 0
    async with db.engine.connect() as conn:
        while sent < MAX_ROWS:
            batch = await page(conn, sent)
            for row in batch:
                yield row
            sent += len(batch)
            if len(batch) < BATCH:
                return


def _attachment(name: str, body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/app/billing/logs.csv")
async def logs_csv(request: Request, user: CurrentUser) -> StreamingResponse:
    db = app_state(request).db
    f = parse_filter(request.query_params, datetime.now(UTC).date())
    async with db.engine.connect() as conn:
        keys = await key_labels(conn, account_id=user.org_id)
    logs = f.logs(user.org_id)

    async def body() -> AsyncIterator[str]:
        yield _line(LOG_COLUMNS)
        async for r in _rows(db, lambda conn, sent: log_page(conn, logs, limit=BATCH, offset=sent)):
            yield _line(
                (
                    _when(r.created_at),
                    r.inference_id,
                    r.client_request_id or "",
                    r.model,
                    r.provider or "",
                    r.origin,
                    keys.get(r.key_id, "") if r.key_id is not None else "",
                    r.status,
                    r.http_status,
                    r.error_message or "",
                    "true" if r.stream else "false",
                    r.prompt_tokens,
                    r.completion_tokens,
                    r.reasoning_tokens,
                    r.cached_tokens,
                    r.cache_write_5m_tokens,
                    r.cache_write_1h_tokens,
                    r.audio_tokens,
                    r.tier,
                    r.uses or "",
                    r.credits,
                    _usd(r.credits),
                    r.overage_credits,
                    r.finish_reason or "",
                    r.latency_ms,
                )
            )

    return _attachment(f"modelgate-logs-{f.start}-{f.end}.csv", body())


@router.get("/app/billing/transactions.csv")
async def transactions_csv(request: Request, user: CurrentUser) -> StreamingResponse:
    db = app_state(request).db
    f = parse_filter(request.query_params, datetime.now(UTC).date())
    async with db.engine.connect() as conn:
        keys = await key_labels(conn, account_id=user.org_id)
    txs = f.transactions(user.org_id)

    async def body() -> AsyncIterator[str]:
        yield _line(TX_COLUMNS)
        async for r in _rows(db, lambda conn, sent: transactions(conn, txs, limit=BATCH, offset=sent)):
            yield _line(
                (
                    _when(r.created_at),
                    r.id,
                    r.kind,
                    r.description or "",
                    r.model or "",
                    keys.get(r.key_id, "") if r.key_id is not None else "",
                    r.credits,
                    _usd(r.credits),
                    r.reference_id or "",
                )
            )

    return _attachment(f"modelgate-transactions-{f.start}-{f.end}.csv", body())
