"""/v2/billing, /v2/billing/detail, /v2/billing/transactions, /v1/billing/balance, admin top-up."""

from __future__ import annotations

import base64

import requests

from tests.billing.helpers import (
    CREDITS_PER_USD,
    assert_books_balance,
    auth,
    chat,
    check,
    error,
    get,
)
from tests.fakes.openai_server import Scripted
from tests.spec_helpers import response_schema, validate


def _detail_schema():
    """billing-detail-v2.json with its one defect fixed: the top-level ``required`` list is
    published inside ``autotopup_settings`` (it names autotopup_settings itself); move it up."""
    schema = response_schema("billing-detail-v2.json", "/v2/billing/detail")
    auto = schema["properties"]["autotopup_settings"]
    assert auto["required"] == ["user_id", "email", "current_balance", "currency", "autotopup_settings"]
    schema["required"] = auto.pop("required")
    auto["required"] = ["is_enabled", "threshold", "amount", "currency"]
    return schema


def test_balance_endpoints(live_server):
    key = live_server.create_key(email="payer@example.com", usd=2.5)
    mgmt = live_server.create_key(email="payer@example.com", usd=0, management=True)
    body = check(get(live_server, "/v2/billing", key), "billing-v2.json", "/v2/billing")
    assert body == {"current_balance": 2.5, "currency": "USD"}
    detail = get(live_server, "/v2/billing/detail", key).json()
    validate(detail, _detail_schema())
    assert detail["email"] == "payer@example.com" and detail["current_balance"] == 2.5
    assert detail["autotopup_settings"]["is_enabled"] is False
    legacy = check(
        get(live_server, "/v1/billing/balance", key), "billing-balance-v1.json", "/v1/billing/balance"
    )
    assert legacy["balance"] == 5_000_000 and legacy["lowBalance"] is False
    r = chat(live_server, key)
    spent = int(r.headers["x-aimlapi-credits-used"])
    assert (
        get(live_server, "/v2/billing", key).json()["current_balance"]
        == (5_000_000 - spent) / CREDITS_PER_USD
    )
    for path in ("/v2/billing", "/v2/billing/detail", "/v2/billing/transactions", "/v1/billing/balance"):
        error(get(live_server, path, mgmt), 403)
        error(get(live_server, path, None), 401)


def test_out_of_credits_documented_403(live_server):
    key = live_server.create_key(email="broke@example.com", usd=0.0005)  # 1000 credits < one hold
    body = error(chat(live_server, key), 403)
    assert body["message"].startswith("You've run out of credits. Please top up your balance")
    assert body["error"]["code"] == "insufficient_credits"
    assert get(live_server, "/v2/billing", key).json()["current_balance"] == 0.0005


def test_transactions_feed_and_cursor(live_server):
    key = live_server.create_key(email="feed@example.com", usd=1.0)
    admin = live_server.create_key(email="root@example.com", usd=0)
    _make_admin(live_server, "root@example.com")
    ids = []
    for i in range(5):
        r = chat(live_server, key, f"message number {i}")
        ids.append(r.headers["x-inference-id"])
    r = requests.post(
        f"{live_server.url}/v1/admin/top-up",
        headers=auth(admin),
        timeout=10,
        json={"email": "feed@example.com", "usd": 0.5},
    )
    assert r.status_code == 200 and r.json()["data"]["amount"]["credits"] == 1_000_000

    path = "/v2/billing/transactions"
    body = check(get(live_server, path, key), "billing-transactions-v2.json", path)
    rows = body["data"]
    assert len(rows) == 7 and body["pagination"] == {"next_cursor": None, "has_more": False}
    assert [r["type"] for r in rows] == ["PAYMENT"] + ["MODEL_USAGE"] * 5 + ["PAYMENT"]  # newest first
    assert [r["reference_id"] for r in rows[1:6]] == ids[::-1]
    assert all(r["model"] == "mock/echo" and r["direction"] == "CHARGE" for r in rows[1:6])
    assert rows[0]["direction"] == "TOPUP" and rows[0]["model"] is None and rows[0]["amount"]["usd"] == 0.5

    # Page by two with the cursor: same entries, no gaps or repeats.
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = check(get(live_server, path, key, **params), "billing-transactions-v2.json", path)
        seen.extend(page["data"])
        cursor = page["pagination"]["next_cursor"]
        assert page["pagination"]["has_more"] is (cursor is not None)
        if cursor is None:
            break
    assert seen == rows

    # Filters.
    charges = get(live_server, path, key, direction="CHARGE").json()["data"]
    assert len(charges) == 5
    assert len(get(live_server, path, key, type="PAYMENT").json()["data"]) == 2
    assert get(live_server, path, key, type="BONUS").json()["data"] == []
    assert len(get(live_server, path, key, **{"from": "2000-01-01T00:00:00+00:00"}).json()["data"]) == 7
    assert get(live_server, path, key, to="2000-01-01T00:00:00Z").json()["data"] == []

    # The cursor is accepted only exactly as issued.
    cursor = get(live_server, path, key, limit=2).json()["pagination"]["next_cursor"]
    payload, mac = cursor.split(".")
    padded = payload + "=" * (-len(payload) % 4)
    std = base64.b64encode(base64.urlsafe_b64decode(padded)).decode()
    spaced = base64.urlsafe_b64encode(b'{"id": ' + base64.urlsafe_b64decode(padded)[6:]).decode().rstrip("=")
    variants = (
        cursor + "x",
        padded + "=." + mac,
        std + "." + mac,
        spaced + "." + mac,
        payload + "." + mac[::-1],
        payload.upper() + "." + mac,
        "garbage",
        "",
    )
    for bad in (v for v in variants if v != cursor):  # (std base64 can coincide with base64url)
        error(get(live_server, path, key, limit=2, cursor=bad), 400)
    error(get(live_server, path, key, limit=3, cursor=cursor), 400)  # bound to the query it came from
    other = live_server.create_key(email="other@example.com", usd=1.0)
    error(get(live_server, path, other, limit=2, cursor=cursor), 400)  # and to the account

    for params in (
        {"limit": 0},
        {"limit": 101},
        {"limit": "x"},
        {"direction": "UP"},
        {"type": "GIFT"},
        {"offset": 2},
        {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"from": "yesterday"},
    ):
        error(get(live_server, path, key, **params), 400)


def test_admin_top_up_requires_admin(live_server):
    key = live_server.create_key(email="someone@example.com", usd=1.0)
    error(
        requests.post(
            f"{live_server.url}/v1/admin/top-up",
            headers=auth(key),
            timeout=10,
            json={"email": "someone@example.com", "usd": 100},
        ),
        403,
    )
    admin = live_server.create_key(email="root@example.com", usd=0)
    _make_admin(live_server, "root@example.com")
    error(
        requests.post(
            f"{live_server.url}/v1/admin/top-up",
            headers=auth(admin),
            timeout=10,
            json={"email": "nobody@example.com", "usd": 1},
        ),
        404,
    )
    error(
        requests.post(
            f"{live_server.url}/v1/admin/top-up",
            headers=auth(admin),
            timeout=10,
            json={"email": "someone@example.com", "usd": -1},
        ),
        400,
    )
    r = requests.post(
        f"{live_server.url}/v1/admin/top-up",
        headers=auth(admin),
        timeout=10,
        json={"email": "someone@example.com", "usd": 1.25},
    )
    assert r.json()["data"]["balance"]["credits"] == 4_500_000
    assert get(live_server, "/v2/billing", key).json()["current_balance"] == 2.25


def test_books_balance_after_mixed_traffic(live_server, openai_upstream):
    """Ledger sum == balance; charges == sum of /v2/logs costs == balance change."""
    email = "books@example.com"
    key = live_server.create_key(email=email, usd=1.0)
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "boom"}}))
    assert chat(live_server, key).status_code >= 500
    for i in range(3):
        assert chat(live_server, key, f"plain {i} words here").status_code == 200
    r = chat(live_server, key, "streamed words", stream=True)
    assert r.status_code == 200 and "[DONE]" in r.text
    assert_books_balance(live_server, email, key, initial_credits=2_000_000, requests_made=5)


def _make_admin(server, email):
    from sqlalchemy import update

    from modelgate.store.db import Database
    from modelgate.store.schema import Account

    async def go():
        db = Database(server.settings.database_url)
        try:
            async with db.engine.begin() as conn:
                await conn.execute(update(Account).where(Account.email == email).values(is_admin=True))
        finally:
            await db.aclose()

    server.run(go())
