"""The database handle: one async engine per app, SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError as IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from modelgate.settings import Settings, sqlalchemy_url, sqlite_path

# What the floors above name when they open a transaction and hand it to ``store/`` functions
# (``async with state.db.engine.begin() as conn``): they never import SQLAlchemy themselves.
# ``IntegrityError``: a write refused for its data (a unique value taken concurrently).
Conn: TypeAlias = AsyncConnection
Engine: TypeAlias = AsyncEngine


class Database:
    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        """``timeout``: seconds to open a PostgreSQL connection or wait for a free one in the pool
        (``MODELGATE_DATABASE_TIMEOUT``); an unreachable server fails within it (``store/outage.py``)."""
        self.url = sqlalchemy_url(url)
        self.timeout = timeout
        self.is_sqlite = self.url.startswith("sqlite")
        path = sqlite_path(self.url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        if self.is_sqlite:
            self.engine: AsyncEngine = create_async_engine(self.url, connect_args={"timeout": 30})
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_async_engine(
                self.url,
                pool_size=10,
                max_overflow=20,
                pool_pre_ping=True,
                pool_timeout=timeout,
                connect_args={"timeout": timeout},
            )

    async def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent, safe on every start)."""
        from modelgate.store.migrate import upgrade

        await upgrade(self.engine)

    async def create_schema(self) -> None:
        """Kept for callers written before migrations: the same as ``upgrade()``."""
        await self.upgrade()

    async def aclose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


@asynccontextmanager
async def upgraded(settings: Settings) -> AsyncIterator[Database]:
    """The configured database, brought to the newest schema, closed on the way out (the command
    line's ``modelgate db upgrade`` and ``modelgate admin …`` commands)."""
    db = Database(settings.database_url, timeout=settings.database_timeout)
    try:
        await db.upgrade()
        yield db
    finally:
        await db.aclose()


async def ping(engine: AsyncEngine) -> None:
    """One round trip (``/ready``); raises when the database does not answer."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def dialect_insert(dialect: str, table: Any) -> Any:
    """``INSERT`` with the dialect's ``ON CONFLICT`` support. The PostgreSQL dialect module is
    imported only by a PostgreSQL deployment (it costs a SQLite gateway ~2 MB of memory)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)
