"""Spend alerts through a live gateway (docs/organisations.md "Spend alerts"): a budget set with
``PUT /v1/budgets`` shows its webhook secret once; a request that crosses a threshold has its alert
raised and posted by the background loop, and a receiver that hangs delays no response: requests are
answered while the delivery is still unanswered. Webhook URLs are validated (and private hosts refused
when the operator says so)."""

from __future__ import annotations

import time
from typing import Any

import requests
from sqlalchemy import insert, select

from modelgate.mail.webhooks import verify
from modelgate.store.ledger import period_key
from modelgate.store.schema import Budget, BudgetSpend
from modelgate.store.schema_alerts import WebhookDelivery
from tests.billing.helpers import auth, chat, db_read
from tests.conftest import MOCK_CONFIG, FakeOpenAI
from tests.fakes.webhook_receiver import webhook_receiver

USD = 2_000_000


def _put_budget(server: Any, key: str, **body: Any) -> requests.Response:
    return requests.put(f"{server.url}/v1/budgets", headers=auth(key), json=body, timeout=20)


def _wait(cond: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


def test_a_hanging_receiver_delays_no_request(make_live_server: Any, openai_upstream: FakeOpenAI) -> None:
    server = make_live_server(
        MOCK_CONFIG.format(base_url=openai_upstream.base_url), spend_alert_interval=0.05
    )
    admin = server.create_key(email="hang@example.com", usd=0, management=True)
    key = server.create_key(email="hang@example.com", usd=5.0)
    with webhook_receiver(hang=True) as receiver:
        made = _put_budget(
            server, admin, period="month", limit_usd=1, alert_thresholds=[1], alert_webhook=receiver.url
        )
        assert made.status_code == 200, made.text
        secret = made.json()["data"]["alert_webhook_secret"]
        assert secret.startswith("whsec_")
        budget_id = made.json()["data"]["id"]

        async def seed(conn: Any) -> None:  # one credit short of 1% of $1 this month
            await conn.execute(
                insert(BudgetSpend).values(
                    budget_id=budget_id, period=period_key("month"), spent_credits=USD // 100 - 1
                )
            )
            await conn.commit()

        db_read(server, seed)
        assert chat(server, key).status_code == 200  # crosses 1%
        (hook,) = receiver.wait_for(1)  # raised and posted in the background: now hanging
        # The receiver holds the delivery unanswered; requests are answered meanwhile.
        for _ in range(3):
            assert chat(server, key).status_code == 200
        org = requests.get(f"{server.url}/v1/organisation", headers=auth(admin), timeout=20).json()["data"]
        assert not receiver.answered.is_set()
        assert [a["threshold_percent"] for a in org["recent_alerts"]] == [1]
        assert org["recent_alerts"][0]["level"] == "organisation"
        assert verify(secret, headers=hook.headers, body=hook.body)
        receiver.release.set()
        receiver.answered.wait(60)

        async def state(conn: Any) -> Any:
            return (await conn.execute(select(WebhookDelivery.state))).scalar_one()

        _wait(lambda: db_read(server, state) == "delivered", "the delivery recorded as delivered")
        assert len(receiver.received) == 1


def test_webhook_secret_is_shown_once_and_urls_are_checked(
    make_live_server: Any, openai_upstream: FakeOpenAI
) -> None:
    server = make_live_server(MOCK_CONFIG.format(base_url=openai_upstream.base_url))
    admin = server.create_key(email="urls@example.com", usd=0, management=True)
    url = "https://hooks.example.com/spend"
    first = _put_budget(server, admin, period="day", limit_usd=5, alert_thresholds=[80], alert_webhook=url)
    assert first.status_code == 200 and first.json()["data"]["alert_webhook_secret"].startswith("whsec_")
    again = _put_budget(server, admin, period="day", limit_usd=6, alert_thresholds=[80], alert_webhook=url)
    assert "alert_webhook_secret" not in again.json()["data"]  # the same webhook keeps its secret
    moved = _put_budget(server, admin, period="day", limit_usd=6, alert_webhook=url + "/v2")
    assert moved.json()["data"]["alert_webhook_secret"] != first.json()["data"]["alert_webhook_secret"]

    async def stored(conn: Any) -> Any:
        return (await conn.execute(select(Budget.alert_webhook_secret))).scalar_one()

    sealed = db_read(server, stored)
    assert sealed.startswith("v1:") and moved.json()["data"]["alert_webhook_secret"] not in sealed  # sealed
    for bad in ("ftp://hooks.example.com/x", "not a url", "https://", "http://[::1"):
        r = _put_budget(server, admin, period="day", limit_usd=5, alert_webhook=bad)
        assert r.status_code == 400 and r.json()["error"]["param"] == "alert_webhook", (bad, r.text)
    assert (
        _put_budget(
            server, admin, period="day", limit_usd=5, alert_webhook="http://127.0.0.1:9/x"
        ).status_code
        == 200
    )
    cleared = _put_budget(server, admin, period="day", limit_usd=5)
    assert cleared.status_code == 200 and db_read(server, stored) is None

    strict = make_live_server(
        MOCK_CONFIG.format(base_url=openai_upstream.base_url), webhook_refuse_private=True
    )
    strict_admin = strict.create_key(email="strict@example.com", usd=0, management=True)
    for private in (
        "http://127.0.0.1:9/x",
        "http://10.0.0.8/x",
        "http://169.254.169.254/latest",
        "http://localhost/x",
    ):
        r = _put_budget(strict, strict_admin, period="day", limit_usd=5, alert_webhook=private)
        assert r.status_code == 400 and "private" in r.json()["error"]["message"], (private, r.text)
