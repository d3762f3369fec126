"""The response cache's table (``response_cache``, docs/cache.md): read an entry by key, find the
nearest semantic entry, write an entry, purge the expired ones.

Two floors with one interface (``cache/stage.py`` ``CacheTable``):
- ``SQLiteCacheTable``: the embedded SQLite file. Reads on a connection of its own, on the event
  loop (a primary-key read is a few microseconds; WAL readers never wait for the writer); writes
  through the process's group-commit writer (``store/sqlite_writer.py``), batched with the holds
  and settles.
- ``EngineCacheTable``: PostgreSQL (and in-memory SQLite) through the SQLAlchemy engine.

Semantic candidates are the entries of one namespace with the same prefix hash and guard (what must
match exactly); the nearest of them by cosine similarity is computed here, on float32 unit vectors
kept in the table (this interpreter's sqlite3 cannot load extensions such as sqlite-vec, and the
candidate set is small by construction).
"""

from __future__ import annotations

import sqlite3
import time
from array import array
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelgate.store.schema import RequestLog
from modelgate.store.schema_responses import CachedResponse

if TYPE_CHECKING:
    from modelgate.store.sqlite_writer import SQLiteWriter

MAX_CANDIDATES = 256  # semantic entries compared per lookup (the newest first)


@dataclass(slots=True)
class CacheEntry:
    namespace: str
    key: str
    door: str
    model: str
    payload: bytes
    credits: int
    expires_at: float
    prefix: str | None = None
    guard: str | None = None
    vector: bytes | None = None


@dataclass(slots=True)
class Found:
    payload: bytes
    credits: int
    similarity: float = 1.0


def pack_vector(values: list[float]) -> bytes:
    return array("f", values).tobytes()


def similarity(a: bytes, b: bytes) -> float:
    """Cosine similarity of two packed unit vectors (their dot product)."""
    x, y = array("f"), array("f")
    x.frombytes(a)
    y.frombytes(b)
    if len(x) != len(y):
        return -1.0
    return float(sum(p * q for p, q in zip(x, y, strict=True)))


def nearest(rows: list[tuple[bytes, int, bytes | None]], vector: bytes, threshold: float) -> Found | None:
    best: Found | None = None
    for payload, credits, vec in rows:
        if vec is None:
            continue
        s = similarity(vec, vector)
        if s >= threshold and (best is None or s > best.similarity):
            best = Found(payload, credits, s)
    return best


_COLUMNS = (
    "namespace",
    "key",
    "door",
    "model",
    "prefix",
    "guard",
    "vector",
    "payload",
    "credits",
    "expires_at",
)
_UPSERT = (
    f"INSERT OR REPLACE INTO response_cache ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
)
_GET = "SELECT payload, credits FROM response_cache WHERE namespace = ? AND key = ? AND expires_at > ?"
_NEAR = (
    "SELECT payload, credits, vector FROM response_cache WHERE namespace = ? AND prefix = ? AND guard = ?"
    f" AND expires_at > ? ORDER BY expires_at DESC LIMIT {MAX_CANDIDATES}"
)
_PURGE = "DELETE FROM response_cache WHERE expires_at <= ?"


async def cache_savings(
    conn: AsyncConnection, account_id: int, since: datetime, until: datetime
) -> tuple[int, int]:
    """An account's cache hits in a time range and the credits they saved (the billing page)."""
    r = RequestLog
    row = (
        await conn.execute(
            select(func.count(), func.coalesce(func.sum(r.cache_saved_credits), 0)).where(
                r.account_id == account_id,
                r.created_at >= since,
                r.created_at < until,
                r.cache.like("hit:%"),
            )
        )
    ).one()
    return int(row[0]), int(row[1])


class SQLiteCacheTable:
    def __init__(self, path: Path | str, writer: SQLiteWriter) -> None:
        self._path = str(path)
        self._writer = writer
        self._conn: sqlite3.Connection | None = None

    def _read(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(self._path, check_same_thread=False, timeout=0)
            self._conn.execute("PRAGMA query_only=ON")
        return self._conn

    async def get(self, namespace: str, key: str) -> Found | None:
        row = self._read().execute(_GET, (namespace, key, time.time())).fetchone()
        return Found(bytes(row[0]), int(row[1])) if row is not None else None

    async def nearest(
        self, namespace: str, prefix: str, guard: str, vector: bytes, threshold: float
    ) -> Found | None:
        rows = self._read().execute(_NEAR, (namespace, prefix, guard, time.time())).fetchall()
        return nearest([(bytes(p), int(c), v) for p, c, v in rows], vector, threshold)

    async def put(self, entry: CacheEntry) -> None:
        values = tuple(getattr(entry, c) for c in _COLUMNS)
        await self._writer.submit(lambda conn: conn.execute(_UPSERT, values))

    async def purge(self) -> int:
        now = time.time()
        return int(await self._writer.submit(lambda conn: conn.execute(_PURGE, (now,)).rowcount))

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class EngineCacheTable:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, namespace: str, key: str) -> Found | None:
        t = CachedResponse
        query = select(t.payload, t.credits).where(
            t.namespace == namespace, t.key == key, t.expires_at > time.time()
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return Found(bytes(row[0]), int(row[1])) if row is not None else None

    async def nearest(
        self, namespace: str, prefix: str, guard: str, vector: bytes, threshold: float
    ) -> Found | None:
        t = CachedResponse
        query = (
            select(t.payload, t.credits, t.vector)
            .where(t.namespace == namespace, t.prefix == prefix, t.guard == guard, t.expires_at > time.time())
            .order_by(t.expires_at.desc())
            .limit(MAX_CANDIDATES)
        )
        async with self._engine.connect() as conn:
            rows = list(await conn.execute(query))
        return nearest([(bytes(p), int(c), v) for p, c, v in rows], vector, threshold)

    async def put(self, entry: CacheEntry) -> None:
        t = CachedResponse
        values: dict[str, Any] = {c: getattr(entry, c) for c in _COLUMNS}
        try:
            async with self._engine.begin() as conn:
                await conn.execute(delete(t).where(t.namespace == entry.namespace, t.key == entry.key))
                await conn.execute(insert(t).values(**values))
        except IntegrityError:
            return  # the same answer, kept by a concurrent request

    async def purge(self) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                delete(CachedResponse).where(CachedResponse.expires_at <= time.time())
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def aclose(self) -> None:
        return None
