"""Stored Responses API answers (``store``: true): save, the conversation behind a
``previous_response_id``, ``item_reference`` lookups, retrieval, deletion, input-item pages, and
the retention purge. Everything is scoped to the owning account: another account's id is unknown.

A response row keeps the response object as the client received it; its items (the request's
input, then the output) are rows of their own so that one query finds an item by id and one query
pages a response's input. A chain of ``previous_response_id``s shares a ``thread_id`` (its first
response), so the whole conversation behind a response is read in two queries however long it is.

The rows of a save are written by the process's batched writer, with the holds, settles and log rows
queued with them: on an SQLite file its group-commit writer (``store/sqlite_writer.py``), on
PostgreSQL the ledger writer's settle lane (``store/pg_writer.py``: the request's settle, its log row
and its response in one statement). One commit for many requests instead of a transaction per
response; the save still returns only once committed, so the answer that follows it names a
response every instance can read.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import orjson
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelgate.store.outage import bounded
from modelgate.store.pg_writer import PGWriter
from modelgate.store.schema import ApiKey, utcnow
from modelgate.store.schema_responses import StoredResponse, StoredResponseItem
from modelgate.store.sqlite_wal import sqlite_timestamp

if TYPE_CHECKING:
    from modelgate.store.sqlite_writer import SQLiteWriter

MAX_CHAIN = 10_000  # links followed back from a previous_response_id


@dataclass(slots=True)
class ResponseRecord:
    id: str
    account_id: int
    key_id: int | None
    model: str
    provider: str | None
    native: bool
    previous_response_id: str | None
    thread_id: str
    body: bytes  # the response object (JSON)
    inputs: list[tuple[str, dict[str, Any]]]  # (item id, item)
    outputs: list[dict[str, Any]]


@dataclass(slots=True)
class Chain:
    """The conversation behind a response: every item of every response up to it, in order."""

    thread_id: str
    items: list[dict[str, Any]] = field(default_factory=list)
    provider: str | None = None  # the route of the last response
    native: bool = False  # whether the upstream itself holds the last response


def item_id_of(item: dict[str, Any], fallback: str) -> str:
    value = item.get("id")
    return value if isinstance(value, str) and value else fallback


P = ParamSpec("P")
R = TypeVar("R")


def _within_timeout(
    fn: Callable[Concatenate[ResponseStore, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[ResponseStore, P], Coroutine[Any, Any, R]]:
    """A read on a request's path: an unreachable or frozen database is a 503 after ``timeout``
    seconds (``store/outage.py``), not a request that hangs."""

    @functools.wraps(fn)
    async def run(store: ResponseStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        async with bounded(store.timeout):
            return await fn(store, *args, **kwargs)

    return run


class ResponseStore:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        retention_days: float,
        writer: SQLiteWriter | PGWriter | None = None,
        timeout: float = 5.0,
    ) -> None:
        """``writer``: the batched writer of the same database (SQLite group commit, or the
        PostgreSQL ledger writer), which then writes saves. ``timeout``: seconds a read on a
        request's path, or a save on PostgreSQL, waits for the database (then 503)."""
        self.engine = engine
        self.retention = timedelta(days=retention_days)
        self.writer = writer
        self.timeout = timeout

    @property
    def enabled(self) -> bool:
        """A zero retention keeps nothing (``store`` is accepted and ignored)."""
        return self.retention > timedelta(0)

    async def save(self, rec: ResponseRecord) -> None:
        """Keep ``rec``; returns once committed."""
        await self.queue(rec)

    def queue(self, rec: ResponseRecord) -> Awaitable[None]:
        """Queue the save of ``rec`` at once, before the caller yields to the event loop: on a
        writer it joins the batch of the settle its request queued just before (one commit for
        both), and the awaitable is the writer's future (resolved once committed; a duplicate id
        raises; cancelling it does not stop the write). On PostgreSQL it fails with
        ``DatabaseUnavailableError`` after ``timeout`` seconds (the write goes on)."""
        now = utcnow()
        expires = now + self.retention
        writer = self.writer
        if isinstance(writer, PGWriter):
            return writer.store_response(*pg_rows(rec, now, expires), deadline=self.timeout)
        rows = item_rows(rec)
        if writer is not None:
            return writer.submit(_sqlite_save(rec, rows, now, expires))
        return self._save_in_transaction(rec, rows, now, expires)

    async def _save_in_transaction(
        self, rec: ResponseRecord, rows: list[tuple[Any, ...]], now: datetime, expires: datetime
    ) -> None:
        """Without a writer (an in-memory SQLite database): one SQLAlchemy transaction."""
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(StoredResponse).values(
                    id=rec.id,
                    account_id=rec.account_id,
                    key_id=rec.key_id,
                    model=rec.model,
                    provider=rec.provider,
                    native=rec.native,
                    previous_response_id=rec.previous_response_id,
                    thread_id=rec.thread_id,
                    body=rec.body.decode("utf-8"),
                    created_at=now,
                    expires_at=expires,
                )
            )
            if rows:
                await conn.execute(
                    insert(StoredResponseItem), [dict(zip(_ITEM_COLUMNS, r, strict=True)) for r in rows]
                )

    @_within_timeout
    async def chain(
        self, *, account_id: int, response_id: str, project_id: int | None = None
    ) -> Chain | None:
        """The items of ``response_id`` and of every response before it; None if unknown here.
        Two reads outside a transaction (``_autocommit``): the links of its thread, then the items."""
        t = StoredResponse
        now = utcnow()
        thread = select(t.thread_id).where(t.id == response_id, t.account_id == account_id).scalar_subquery()
        async with self.engine.connect() as conn:
            await _autocommit(conn)
            rows = await conn.execute(
                select(t.id, t.previous_response_id, t.thread_id, t.provider, t.native).where(
                    t.account_id == account_id, t.thread_id == thread, t.expires_at > now, *_in(project_id)
                )
            )
            links: dict[str, str | None] = {}
            head = None
            for row in rows:
                links[row.id] = row.previous_response_id
                if row.id == response_id:
                    head = row
            if head is None:
                return None
            order: list[str] = []
            current: str | None = response_id
            while current is not None and current in links and len(order) < MAX_CHAIN:
                order.append(current)
                current = links[current]
            order.reverse()
            i = StoredResponseItem
            rows = await conn.execute(
                select(i.response_id, i.position, i.data).where(i.response_id.in_(order))
            )
            by_response: dict[str, list[tuple[int, str]]] = {}
            for row in rows:
                by_response.setdefault(row.response_id, []).append((row.position, row.data))
        chain = Chain(thread_id=head.thread_id, provider=head.provider, native=bool(head.native))
        for rid in order:
            chain.items.extend(orjson.loads(data) for _, data in sorted(by_response.get(rid, [])))
        return chain

    @_within_timeout
    async def items(
        self, *, account_id: int, ids: list[str], outputs_only: bool = False, project_id: int | None = None
    ) -> dict[str, dict[str, Any]]:
        """The account's stored items by id (for ``item_reference``), the newest when an id repeats.
        ``outputs_only``: items its responses produced (an input item's id is the client's choice)."""
        if not ids:
            return {}
        i, t = StoredResponseItem, StoredResponse
        query = (
            select(i.item_id, i.data)
            .join(t, t.id == i.response_id)
            .where(
                i.account_id == account_id, i.item_id.in_(set(ids)), t.expires_at > utcnow(), *_in(project_id)
            )
            .order_by(t.created_at, i.position)
        )
        if outputs_only:
            query = query.where(i.kind == "output")
        async with self.engine.connect() as conn:
            await _autocommit(conn)
            return {row.item_id: orjson.loads(row.data) for row in await conn.execute(query)}

    @_within_timeout
    async def get(self, *, account_id: int, response_id: str, project_id: int | None = None) -> bytes | None:
        t = StoredResponse
        query = select(t.body).where(
            t.id == response_id, t.account_id == account_id, t.expires_at > utcnow(), *_in(project_id)
        )
        async with self.engine.connect() as conn:
            await _autocommit(conn)
            body = (await conn.execute(query)).scalar_one_or_none()
        return body.encode("utf-8") if body is not None else None

    @_within_timeout
    async def delete(self, *, account_id: int, response_id: str, project_id: int | None = None) -> bool:
        t, i = StoredResponse, StoredResponseItem
        async with self.engine.begin() as conn:
            found = (
                await conn.execute(
                    select(t.id).where(
                        t.id == response_id,
                        t.account_id == account_id,
                        t.expires_at > utcnow(),
                        *_in(project_id),
                    )
                )
            ).first()
            if found is None:
                return False
            await conn.execute(delete(i).where(i.response_id == response_id))
            await conn.execute(delete(t).where(t.id == response_id))
        return True

    @_within_timeout
    async def input_items(
        self,
        *,
        account_id: int,
        response_id: str,
        limit: int,
        order: str,
        after: str | None,
        project_id: int | None = None,
    ) -> tuple[list[dict[str, Any]], bool] | None:
        """A page of the response's input items (with their ids) and whether more follow."""
        if await self.get(account_id=account_id, response_id=response_id, project_id=project_id) is None:
            return None
        i = StoredResponseItem
        query = select(i.position, i.item_id, i.data).where(i.response_id == response_id, i.kind == "input")
        async with self.engine.connect() as conn:
            await _autocommit(conn)
            if after is not None:
                start = (
                    await conn.execute(
                        select(i.position).where(
                            i.response_id == response_id, i.kind == "input", i.item_id == after
                        )
                    )
                ).scalar()
                if start is not None:
                    query = query.where(i.position > start if order == "asc" else i.position < start)
            query = query.order_by(i.position.asc() if order == "asc" else i.position.desc())
            rows = list(await conn.execute(query.limit(limit + 1)))
        page = [{**orjson.loads(row.data), "id": row.item_id} for row in rows[:limit]]
        return page, len(rows) > limit

    async def purge_expired(self) -> int:
        """Delete every response past its retention (and its items); returns how many."""
        t, i = StoredResponse, StoredResponseItem
        now = utcnow()
        async with self.engine.begin() as conn:
            expired = select(t.id).where(t.expires_at <= now)
            await conn.execute(delete(i).where(i.response_id.in_(expired)))
            result = await conn.execute(delete(t).where(t.expires_at <= now))
        return int(getattr(result, "rowcount", 0) or 0)


_RESPONSE_COLUMNS = (
    "id, account_id, key_id, model, provider, native, previous_response_id, thread_id, body, "
    "created_at, expires_at"
)
_ITEM_COLUMNS = ("response_id", "position", "kind", "item_id", "account_id", "data")
_INSERT_RESPONSE = f"INSERT INTO responses ({_RESPONSE_COLUMNS}) VALUES ({', '.join('?' * 11)})"
_INSERT_ITEM = (
    f"INSERT INTO response_items ({', '.join(_ITEM_COLUMNS)}) VALUES ({', '.join('?' * len(_ITEM_COLUMNS))})"
)


def _sqlite_save(
    rec: ResponseRecord, rows: list[tuple[Any, ...]], created: datetime, expires: datetime
) -> Callable[[sqlite3.Connection], None]:
    """One writer operation: the response and its items (all or nothing: a failing operation is
    retried alone in its own transaction by the writer, and its error reaches the caller)."""
    response = (
        rec.id,
        rec.account_id,
        rec.key_id,
        rec.model,
        rec.provider,
        int(rec.native),
        rec.previous_response_id,
        rec.thread_id,
        rec.body.decode("utf-8"),
        sqlite_timestamp(created),
        sqlite_timestamp(expires),
    )

    def op(conn: sqlite3.Connection) -> None:
        conn.execute(_INSERT_RESPONSE, response)
        if rows:
            conn.executemany(_INSERT_ITEM, rows)

    return op


def item_rows(rec: ResponseRecord) -> list[tuple[Any, ...]]:
    """The rows of a response's items (its input, then its output), in ``_ITEM_COLUMNS`` order."""
    rows = [
        _item_row(rec, position, "input", item_id, item)
        for position, (item_id, item) in enumerate(rec.inputs)
    ]
    base = len(rows)
    for n, item in enumerate(rec.outputs):
        rows.append(_item_row(rec, base + n, "output", item_id_of(item, f"{rec.id}_out{n}"), item))
    return rows


def pg_rows(
    rec: ResponseRecord, created: datetime, expires: datetime
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The response's row and its items' rows for the PostgreSQL writer (column -> value)."""
    response = {
        "id": rec.id,
        "account_id": rec.account_id,
        "key_id": rec.key_id,
        "model": rec.model,
        "provider": rec.provider,
        "native": rec.native,
        "previous_response_id": rec.previous_response_id,
        "thread_id": rec.thread_id,
        "body": rec.body.decode("utf-8"),
        "created_at": created,
        "expires_at": expires,
    }
    return response, [dict(zip(_ITEM_COLUMNS, row, strict=True)) for row in item_rows(rec)]


def _item_row(
    rec: ResponseRecord, position: int, kind: str, item_id: str, item: dict[str, Any]
) -> tuple[Any, ...]:
    """An item's row, in ``_ITEM_COLUMNS`` order."""
    return (rec.id, position, kind, item_id[:200], rec.account_id, orjson.dumps(item).decode("utf-8"))


async def _autocommit(conn: AsyncConnection) -> None:
    """A read on a request's path outside a transaction on PostgreSQL: no BEGIN and ROLLBACK round
    trips (each statement sees its own snapshot in a READ COMMITTED transaction anyway). SQLite's
    driver begins no transaction for a read, and setting the level would cost two thread hops."""
    if conn.dialect.name == "postgresql":
        await conn.execution_options(isolation_level="AUTOCOMMIT")


def _in(project_id: int | None) -> tuple[Any, ...]:
    """The responses a caller confined to one project may see: those made by its keys
    (docs/organisations.md); no condition for the organisation's owners and admins."""
    if project_id is None:
        return ()
    return (StoredResponse.key_id.in_(select(ApiKey.id).where(ApiKey.project_id == project_id)),)
