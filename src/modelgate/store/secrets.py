"""Instance secrets kept in the ``settings`` table, created on first use and shared by every
worker and instance that uses the same database (e.g. the key that signs pagination cursors)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from modelgate.store.db import dialect_insert
from modelgate.store.schema import Setting


async def instance_secret(engine: AsyncEngine, name: str) -> bytes:
    """The secret called ``name``: read it, or create it (the first writer wins a race)."""
    async with engine.begin() as conn:
        ins = dialect_insert(conn.dialect.name, Setting)
        await conn.execute(ins.values(key=name, value=secrets.token_hex(32)).on_conflict_do_nothing())
        value = (await conn.execute(select(Setting.value).where(Setting.key == name))).scalar_one()
    return bytes.fromhex(value)
