"""The response cache's table on both floors (``store/response_cache.py``): an entry read back by key
within its namespace only, replaced by a newer answer, unseen once expired and purged; semantic
candidates must share the prefix and guard, and the nearest above the threshold wins."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from modelgate.settings import sqlite_path
from modelgate.store.db import Database
from modelgate.store.response_cache import CacheEntry, EngineCacheTable, SQLiteCacheTable, pack_vector
from modelgate.store.sqlite_writer import SQLiteWriter


def unit(*xs: float) -> bytes:
    n = math.sqrt(sum(x * x for x in xs))
    return pack_vector([x / n for x in xs])


def entry(key: str, payload: bytes, *, ns: str = "a1", ttl: float = 60, **kw: object) -> CacheEntry:
    return CacheEntry(
        namespace=ns, key=key, door="chat", model="m", payload=payload, credits=7,
        expires_at=time.time() + ttl, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize("floor", ["engine", "sqlite-writer"])
async def test_entries_by_key_namespace_expiry_and_nearest(
    database_url: str, floor: str, tmp_path: Path
) -> None:
    db = Database(database_url)
    await db.upgrade()
    writer = None
    path = sqlite_path(db.url) if db.is_sqlite else None
    if floor == "sqlite-writer":
        if path is None:
            await db.aclose()
            pytest.skip("the group-commit writer is the SQLite file's")
        writer = SQLiteWriter(path)
        writer.start()
        table: EngineCacheTable | SQLiteCacheTable = SQLiteCacheTable(path, writer)
    else:
        table = EngineCacheTable(db.engine)
    try:
        await table.put(entry("k1", b"first"))
        await table.put(entry("k1", b"second"))  # a newer answer replaces it
        await table.put(entry("k2", b"gone", ttl=-1))  # already expired
        found = await table.get("a1", "k1")
        assert found is not None and found.payload == b"second" and found.credits == 7
        assert await table.get("a2", "k1") is None  # another tenant's namespace
        assert await table.get("a1", "k2") is None
        near = {"prefix": "p", "guard": "2 + 2||"}
        await table.put(entry("s1", b"close", vector=unit(1, 0.1, 0), **near))
        await table.put(entry("s2", b"far", vector=unit(0, 1, 0), **near))
        await table.put(entry("s3", b"other guard", vector=unit(1, 0.05, 0), prefix="p", guard="2 + 3||"))
        hit = await table.nearest("a1", "p", "2 + 2||", unit(1, 0, 0), 0.9)
        assert hit is not None and hit.payload == b"close" and 0.99 < hit.similarity <= 1.0001
        assert await table.nearest("a1", "p", "2 + 2||", unit(0, 0, 1), 0.9) is None  # below the threshold
        assert await table.nearest("a1", "q", "2 + 2||", unit(1, 0, 0), 0.9) is None  # another prefix
        assert await table.nearest("a2", "p", "2 + 2||", unit(1, 0, 0), 0.9) is None  # another tenant
        assert await table.purge() == 1  # the expired entry
    finally:
        await table.aclose()
        if writer is not None:
            await writer.aclose()
        await db.aclose()
