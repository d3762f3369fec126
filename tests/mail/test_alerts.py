"""Alert mails (low balance once per top-up, a key's budget once per limit period) read from a real
SMTP server, on SQLite and PostgreSQL; and the sealing of secrets at rest (``store/secrets.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, update

from modelgate.accounts.service import create_key, get_or_create_account, top_up
from modelgate.mail.alerts import send_alerts
from modelgate.mail.sender import Mailer
from modelgate.settings import Settings
from modelgate.store.db import Database
from modelgate.store.ledger import period_key
from modelgate.store.schema import Account, KeySpend
from modelgate.store.secrets import SealError, seal, unseal
from tests.fakes.smtp import body, smtp_server


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.create_schema()
    yield database
    await database.aclose()


async def test_low_balance_and_budget_alerts_are_mailed_once(db: Database) -> None:
    with smtp_server() as (box, port):
        settings = Settings(
            smtp_host="127.0.0.1", smtp_port=port, smtp_security="none", public_url="https://gw.example"
        )
        mailer = Mailer(settings)
        now = datetime.now(UTC)
        async with db.engine.begin() as conn:
            low = await get_or_create_account(conn, email="low@example.com")
            await top_up(conn, account_id=low, usd=5)
            await conn.execute(update(Account).where(Account.id == low).values(balance_credits=1_110_000))
            await get_or_create_account(conn, email="never@example.com")  # never credited: no alert
            rich = await get_or_create_account(conn, email="rich@example.com")
            await top_up(conn, account_id=rich, usd=100)
            key = await create_key(
                conn, account_id=rich, name="ci", limit_retention="month", limit_credits=2_000_000
            )
            await conn.execute(
                insert(KeySpend),
                [
                    {"key_id": key.key_id, "period": period_key("month", now), "spent_credits": 1_700_000},
                    {"key_id": key.key_id, "period": "month:2001-01", "spent_credits": 2_000_000},
                ],
            )
        assert await send_alerts(db.engine, mailer, now=now) == 2
        assert await send_alerts(db.engine, mailer, now=now) == 0  # each once
        low_mail = box.wait_for("low@example.com", "balance is low")
        assert "$0.555" in body(low_mail) and "https://gw.example/app/billing" in body(low_mail)
        budget = box.wait_for("rich@example.com", "Key ci is near its spending limit")
        assert "85%" in body(budget) and "$0.85 of $1.00" in body(budget)
        assert not box.to("never@example.com")

        # A new top-up that leaves the balance low: told again, once.
        async with db.engine.begin() as conn:
            await top_up(conn, account_id=low, usd=0.1)
        assert await send_alerts(db.engine, mailer, now=now) == 1
        assert len(box.to("low@example.com")) == 2
    assert await send_alerts(db.engine, Mailer(Settings()), now=now) == 0  # no SMTP: nothing


async def test_sealed_secrets_open_only_for_their_purpose(db: Database) -> None:
    async with db.engine.begin() as conn:
        sealed = await seal(conn, "JBSWY3DPEHPK3PXP", purpose="totp")
        assert "JBSWY3DPEHPK3PXP" not in sealed and sealed != await seal(
            conn, "JBSWY3DPEHPK3PXP", purpose="totp"
        )
        assert await unseal(conn, sealed, purpose="totp") == "JBSWY3DPEHPK3PXP"
        for bad, purpose in ((sealed, "provider"), (sealed[:-4] + "AAAA", "totp"), ("plain", "totp")):
            with pytest.raises(SealError):
                await unseal(conn, bad, purpose=purpose)
