"""Keys' ``last_used_at`` on a SQLite file is written by the ledger's group-commit writer, never in a
write transaction of a pooled connection: that transaction held SQLite's write lock from its first
UPDATE (one per key, each a thread hop and an event-loop turn) to its COMMIT, and on a busy loop a
burst's flush kept the writer's holds waiting 0.2-0.6 s (measured during 200-request bursts)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from modelgate.accounts.keys import KeyAuthenticator
from modelgate.accounts.service import create_key, get_or_create_account
from modelgate.store.db import Database
from modelgate.store.keys import last_used_through
from modelgate.store.schema import ApiKey
from modelgate.store.sqlite_writer import SQLiteWriter
from tests.conftest import LiveServer


async def test_last_used_goes_through_the_writer_on_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    db = Database(f"sqlite:///{path}")
    await db.upgrade()
    async with db.engine.begin() as conn:
        account_id = await get_or_create_account(conn, email="used@example.com")
        made = await create_key(conn, account_id=account_id)
    writer = SQLiteWriter(path)
    writer.start()
    keys = KeyAuthenticator(db.engine)
    keys.write_last_used = last_used_through(writer)
    ident = await keys.authenticate(made.key)
    writes: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE")):
            writes.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        await keys.flush_last_used()
        assert writes == []  # no write transaction of a pooled connection
        async with db.engine.connect() as conn:
            when = (
                await conn.execute(select(ApiKey.last_used_at).where(ApiKey.id == ident.key_id))
            ).scalar_one()
        assert when is not None
        assert abs((when.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()) < 600
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
        await writer.aclose()
        await db.aclose()


def test_the_server_wires_it_on_a_sqlite_file_only(live_server: LiveServer) -> None:
    keys = live_server.app.state.mg.keys
    assert (keys.write_last_used is not None) == live_server.settings.database_url.startswith("sqlite")
