"""Spend alerts delivered (docs/organisations.md "Spend alerts"): a budget's thresholds crossed in
its period raise one alert each, posted to a real local webhook receiver with a Standard Webhooks
signature it verifies, retried with the same delivery id after a failure and never again after
success, every attempt recorded; mailed to the organisation's managers; raised once by two instances
on one PostgreSQL crossing the same threshold at the same moment."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from modelgate.accounts.service import create_key, get_or_create_account
from modelgate.mail.sender import Mailer
from modelgate.mail.spend_alerts import SEAL_PURPOSE, SpendAlerts
from modelgate.mail.webhooks import new_secret, url_problem, verify
from modelgate.settings import Settings
from modelgate.store import spend_alerts as alert_store
from modelgate.store.budgets import set_budget, set_webhook
from modelgate.store.db import Database
from modelgate.store.ledger import period_key
from modelgate.store.organisations import add_org_member, create_org, create_project
from modelgate.store.schema import Budget, BudgetSpend, KeySpend
from modelgate.store.schema_alerts import SpendAlertEvent
from modelgate.store.secrets import seal
from tests.fakes.smtp import smtp_server
from tests.fakes.webhook_receiver import webhook_receiver

USD = 2_000_000


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.create_schema()
    yield database
    await database.aclose()


async def _org_with_budget(db: Database, *, url: str, spent: int, now: datetime) -> tuple[int, int, str]:
    """An organisation with a project budget of $10/month alerting at 50% and 80% to ``url``,
    ``spent`` credits into this month; (org id, budget id, webhook secret)."""
    async with db.engine.begin() as conn:
        owner = await get_or_create_account(conn, email="owner@example.com")
        admin = await get_or_create_account(conn, email="admin@example.com")
        dev = await get_or_create_account(conn, email="dev@example.com")
        org = await create_org(conn, name="Acme", owner_id=owner)
        await add_org_member(conn, org_id=org, account_id=admin, role="admin")
        await add_org_member(conn, org_id=org, account_id=dev, role="member")
        project = await create_project(conn, org_id=org, name="A", owner_id=dev)
        budget = await set_budget(
            conn,
            org_id=org,
            project_id=project,
            period="month",
            limit_credits=10 * USD,
            alert_thresholds=[50, 80, 100],
        )
        secret = new_secret()
        await set_webhook(
            conn, budget_id=budget, url=url, secret_sealed=await seal(conn, secret, purpose=SEAL_PURPOSE)
        )
        await conn.execute(
            insert(BudgetSpend).values(budget_id=budget, period=period_key("month", now), spent_credits=spent)
        )
        # Last month's spend past every threshold raises nothing now.
        await conn.execute(
            insert(BudgetSpend).values(budget_id=budget, period="month:2001-01", spent_credits=spent * 9)
        )
    return org, budget, secret


async def test_a_crossed_threshold_is_signed_retried_with_its_id_and_delivered_once(db: Database) -> None:
    now = datetime.now(UTC)
    with webhook_receiver([500, 503]) as receiver, smtp_server() as (box, port):
        settings = Settings(
            webhook_retry_base=0.01, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none"
        )
        org, _budget, secret = await _org_with_budget(db, url=receiver.url, spent=int(8.5 * USD), now=now)
        alerts = SpendAlerts(db.engine, settings, Mailer(settings))
        try:
            assert await alerts.tick(now) == (2, 2)  # 50% and 80% crossed (not 100%): both fail once
            assert await alerts.tick(now) == (0, 0)  # not raised again; retries not due yet
            later = now + timedelta(seconds=5)
            assert await alerts.tick(later) == (0, 2)  # retried: both succeed
            assert await alerts.tick(later + timedelta(hours=1)) == (0, 0)  # never again
        finally:
            await alerts.aclose()
        got = receiver.wait_for(4)
        assert len(got) == 4
        ids = [r.headers["webhook-id"] for r in got]
        assert len(set(ids)) == 2 and sorted(ids) == sorted(ids[:2] * 2)  # each id twice: a retry
        for r in got:
            assert r.path == "/hooks/spend" and r.headers["content-type"] == "application/json"
            assert verify(secret, headers=r.headers, body=r.body)
            assert not verify(new_secret(), headers=r.headers, body=r.body)
            assert not verify(secret, headers=r.headers, body=r.body + b" ")
        bodies = [json.loads(r.body) for r in got]
        assert {b["type"] for b in bodies} == {"spend_alert.threshold_crossed"}
        data = sorted((b["data"] for b in bodies), key=lambda d: d["threshold_percent"])
        assert [d["threshold_percent"] for d in data] == [50, 50, 80, 80]
        assert data[0]["level"] == "project" and data[0]["organisation_id"] == org
        assert (
            data[0]["limit_usd"] == 10.0 and data[0]["spent_usd"] == 8.5 and data[2]["threshold_usd"] == 8.0
        )
        assert data[0]["period"] == period_key("month", now)

        async with db.engine.connect() as conn:
            rows = await alert_store.recent_alerts(conn, org_id=org)
            assert [(a.threshold_percent, a.webhook_state, a.webhook_attempts) for a in rows] == [
                (80, "delivered", 2),
                (50, "delivered", 2),
            ]
            attempts = await alert_store.attempts_of(conn, delivery_id=ids[0])
            assert [(a[0], a[1], a[3]) for a in attempts] == [(1, 500, "HTTP 500"), (2, 200, None)] or [
                (a[0], a[1], a[3]) for a in attempts
            ] == [(1, 503, "HTTP 503"), (2, 200, None)]
            assert all(a[2] >= 0 for a in attempts)
            assert await alert_store.recent_alerts(conn, org_id=org + 1000) == []
            project = rows[0].project_id
            assert project is not None
            assert len(await alert_store.recent_alerts(conn, org_id=org, project_ids=[project])) == 2
            assert await alert_store.recent_alerts(conn, org_id=org, project_ids=[project + 1]) == []
        # Mailed once per alert to the owner and the admin (not the plain member).
        box.wait_for("owner@example.com", "has spent 80%")
        box.wait_for("admin@example.com", "has spent 50%")
        assert len(box.to("owner@example.com")) == 2 and not box.to("dev@example.com")


async def test_a_receiver_that_never_answers_is_given_up_after_the_last_attempt(db: Database) -> None:
    now = datetime.now(UTC)
    with webhook_receiver([500] * 10) as receiver:
        settings = Settings(webhook_retry_base=0.01, webhook_max_attempts=3)
        await _org_with_budget(db, url=receiver.url, spent=6 * USD, now=now)
        alerts = SpendAlerts(db.engine, settings, Mailer(settings))
        try:
            for minutes in range(6):
                await alerts.tick(now + timedelta(minutes=minutes))
        finally:
            await alerts.aclose()
        assert len(receiver.wait_for(3)) == 3
        async with db.engine.connect() as conn:
            (alert,) = await alert_store.recent_alerts(conn)
        assert (alert.webhook_state, alert.webhook_attempts) == ("failed", 3)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_two_instances_crossing_together_deliver_once(database_url: str, db: Database) -> None:
    now = datetime.now(UTC)
    with webhook_receiver() as receiver:
        await _org_with_budget(db, url=receiver.url, spent=9 * USD, now=now)
        other = Database(database_url)
        settings = Settings()
        a = SpendAlerts(db.engine, settings, Mailer(settings))
        b = SpendAlerts(other.engine, settings, Mailer(settings))
        try:
            for _ in range(3):
                results = await asyncio.gather(a.tick(now), b.tick(now))
                assert sum(r[0] for r in results) in (0, 2)
            await asyncio.gather(a.tick(now + timedelta(minutes=1)), b.tick(now + timedelta(minutes=1)))
        finally:
            await a.aclose()
            await b.aclose()
            await other.aclose()
        got = receiver.wait_for(2)
        async with db.engine.connect() as conn:
            events = (await conn.execute(select(func.count()).select_from(SpendAlertEvent))).scalar_one()
        assert events == 2
        assert len(got) == 2 and len({r.headers["webhook-id"] for r in got}) == 2


def test_webhook_urls_are_http_or_https_and_private_hosts_can_be_refused() -> None:
    assert url_problem("https://hooks.example.com/x", refuse_private=True) is None
    assert url_problem("http://127.0.0.1:9/x", refuse_private=False) is None
    for bad in (
        "ftp://example.com/x",
        "file:///etc/passwd",
        "https://",
        "javascript:alert(1)",
        "http://h:0/",
    ):
        assert url_problem(bad, refuse_private=False) is not None, bad
    for private in (
        "http://127.0.0.1/x",
        "http://10.1.2.3/",
        "http://[::1]/",
        "http://169.254.169.254/",
        "http://localhost:8/",
    ):
        assert url_problem(private, refuse_private=True) is not None, private


async def test_a_keys_own_limit_alerts_to_the_nearest_budgets_webhook(db: Database) -> None:
    now = datetime.now(UTC)
    with webhook_receiver() as receiver:
        org, _budget, secret = await _org_with_budget(db, url=receiver.url, spent=0, now=now)
        async with db.engine.begin() as conn:
            dev = await get_or_create_account(conn, email="dev@example.com")
            project = (await conn.execute(select(Budget.project_id).where(Budget.org_id == org))).scalar_one()
            in_project = await create_key(
                conn,
                account_id=org,
                project_id=project,
                member_id=dev,
                limit_retention="day",
                limit_credits=USD,
            )
            outside = await create_key(conn, account_id=org, limit_retention="month", limit_credits=USD)
            await conn.execute(
                insert(KeySpend),
                [
                    {"key_id": in_project.key_id, "period": period_key("day", now), "spent_credits": USD},
                    {
                        "key_id": outside.key_id,
                        "period": period_key("month", now),
                        "spent_credits": USD * 9 // 10,
                    },
                    {
                        "key_id": outside.key_id,
                        "period": period_key("day", now),
                        "spent_credits": USD,
                    },  # not its period
                ],
            )
        settings = Settings(budget_alert_percent=80)
        alerts = SpendAlerts(db.engine, settings, Mailer(settings))
        try:
            assert await alerts.tick(now) == (3, 2)  # in_project: 80% and 100%; outside: 80%, no webhook
            assert await alerts.tick(now) == (0, 0)
        finally:
            await alerts.aclose()
        got = receiver.wait_for(2)
        data = sorted((json.loads(r.body)["data"] for r in got), key=lambda d: d["threshold_percent"])
        assert [(d["level"], d["threshold_percent"], d["key_prefix"]) for d in data] == [
            ("key", 80, in_project.key[:8]),
            ("key", 100, in_project.key[:8]),
        ]
        assert data[0]["project_id"] == project and data[0]["member_id"] == dev
        assert all(verify(secret, headers=r.headers, body=r.body) for r in got)
        async with db.engine.connect() as conn:
            rows = await alert_store.recent_alerts(conn, org_id=org)
        assert sorted((a.key_id, a.threshold_percent, a.webhook_state) for a in rows) == sorted(
            [
                (in_project.key_id, 80, "delivered"),
                (in_project.key_id, 100, "delivered"),
                (outside.key_id, 80, None),
            ]
        )


async def test_a_receiver_that_times_out_is_retried_with_the_same_id(db: Database) -> None:
    now = datetime.now(UTC)
    with webhook_receiver(hang=True) as receiver:
        settings = Settings(webhook_retry_base=0.01, webhook_timeout=0.5)
        await _org_with_budget(db, url=receiver.url, spent=int(5.5 * USD), now=now)  # 50% only
        alerts = SpendAlerts(db.engine, settings, Mailer(settings))
        try:
            assert await alerts.tick(now) == (1, 1)  # the receiver never answers: cut at the timeout
            first = receiver.wait_for(1)[0]
            receiver.hang = False
            receiver.release.set()
            assert await alerts.tick(now + timedelta(seconds=5)) == (0, 1)
        finally:
            await alerts.aclose()
        got = receiver.wait_for(2)
        assert [r.headers["webhook-id"] for r in got] == [first.headers["webhook-id"]] * 2
        async with db.engine.connect() as conn:
            attempts = await alert_store.attempts_of(conn, delivery_id=first.headers["webhook-id"])
        assert [(a[0], a[1]) for a in attempts] == [(1, None), (2, 200)]
        assert attempts[0][3] is not None and "timed out" in attempts[0][3]
