"""The operator's console lists the spend alerts raised in every organisation (the audit page), with
each one's threshold, spend and webhook state."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from modelgate.mail.sender import Mailer
from modelgate.mail.spend_alerts import SpendAlerts
from modelgate.settings import Settings
from modelgate.store.budgets import set_budget
from modelgate.store.db import Database
from modelgate.store.ledger import period_key
from modelgate.store.organisations import create_org
from modelgate.store.schema import BudgetSpend
from tests.conftest import LiveServer
from tests.web.helpers import logged_in, make_account

USD = 2_000_000


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_operator_sees_recent_spend_alerts(web_server: LiveServer) -> None:
    make_account(web_server, "op@example.com", operator=True)
    owner = make_account(web_server, "owner@example.com")

    async def raise_one() -> None:
        db = Database(web_server.settings.database_url)
        try:
            async with db.engine.begin() as conn:
                org = await create_org(conn, name="Acme", owner_id=owner)
                budget = await set_budget(
                    conn, org_id=org, period="month", limit_credits=10 * USD, alert_thresholds=[75]
                )
                await conn.execute(
                    insert(BudgetSpend).values(
                        budget_id=budget, period=period_key("month"), spent_credits=8 * USD
                    )
                )
            alerts = SpendAlerts(db.engine, Settings(), Mailer(Settings()))
            assert await alerts.tick(datetime.now(UTC)) == (1, 0)
            await alerts.aclose()
        finally:
            await db.aclose()

    with logged_in(web_server, "op@example.com") as op:
        assert "No spend alerts yet." in op.get("/admin/audit").text
        asyncio.run(raise_one())
        page = op.get("/admin/audit").text
        assert 'id="spend-alerts-table"' in page
        assert "75% of $10.00" in page and "$8.00" in page and "organisation" in page
