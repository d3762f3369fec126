"""Run the Alembic migrations programmatically (no alembic.ini at run time).

``upgrade(engine)`` brings a database to the newest revision. A database created before
migrations existed (tables present, no ``alembic_version``) is stamped at ``0001`` first.
On PostgreSQL an advisory lock serialises concurrent upgrades (several workers starting at once).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_LOCK_ID = 0x6D67_6174  # "mgat"


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade_sync(connection: Connection, revision: str) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    cfg = alembic_config(connection)
    tables = set(inspect(connection).get_table_names())
    if "accounts" in tables and "alembic_version" not in tables:
        command.stamp(cfg, "0001")
    command.upgrade(cfg, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate to ``revision``; a database already at the head costs one query and Alembic is
    not even imported (it weighs ~10 MB of memory in every worker)."""
    if revision == "head" and await current_revision(engine) == head_revision():
        return
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_sync, revision)


@cache
def head_revision() -> str:
    """The newest revision, read from the migration files (the one no other revision revises)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text_ = path.read_text(encoding="utf-8")
        rev = re.search(r'^revision\s*=\s*["\']([^"\']+)["\']', text_, re.M)
        down = re.search(r'^down_revision\s*=\s*["\']([^"\']+)["\']', text_, re.M)
        if rev:
            revisions.add(rev.group(1))
        if down:
            parents.add(down.group(1))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations must have exactly one head, found {sorted(heads)}")
    return heads.pop()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        if "alembic_version" not in tables:
            return None
        row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
    return str(row[0]) if row is not None else None
