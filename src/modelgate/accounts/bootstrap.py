"""First start: create the schema, and on an empty database an admin account (an operator) with
one key and a one-time sign-in link for the web console (it has no password yet)."""

from __future__ import annotations

from dataclasses import dataclass

from modelgate.accounts.service import account_count, create_key, get_or_create_account, top_up
from modelgate.settings import Settings
from modelgate.store.db import Database
from modelgate.store.signin_links import create_signin_link

ADMIN_EMAIL = "admin@localhost"


@dataclass(frozen=True, slots=True)
class FirstStart:
    key: str  # the admin's API key, shown once
    signin_token: str  # for /app/sign-in/<token>, valid once for 24 hours


async def prepare_database(settings: Settings) -> FirstStart | None:
    """Migrate; on an empty database create the admin account and return what to show once."""
    db = Database(settings.database_url, timeout=settings.database_timeout)
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
            token = await create_signin_link(conn, account_id=account_id)
            return FirstStart(key=new.key, signin_token=token)
    finally:
        await db.aclose()
