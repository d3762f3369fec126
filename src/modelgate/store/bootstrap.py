"""First start: create the schema, and on an empty database an admin account with one key."""

from __future__ import annotations

from modelgate.accounts.service import account_count, create_key, get_or_create_account, top_up
from modelgate.settings import Settings
from modelgate.store.db import Database

ADMIN_EMAIL = "admin@localhost"


async def prepare_database(settings: Settings) -> str | None:
    """Migrate; return the new admin key when the database was empty (shown once), else None."""
    db = Database(settings.database_url)
    try:
        await db.create_schema()
        if not settings.bootstrap:
            return None
        async with db.engine.begin() as conn:
            if await account_count(conn):
                return None
            account_id = await get_or_create_account(conn, email=ADMIN_EMAIL, is_admin=True)
            if settings.bootstrap_credits_usd > 0:
                await top_up(
                    conn,
                    account_id=account_id,
                    usd=settings.bootstrap_credits_usd,
                    description="welcome credits",
                    kind="bonus",
                )
            new = await create_key(conn, account_id=account_id, name="bootstrap")
            return new.key
    finally:
        await db.aclose()
