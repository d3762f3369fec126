"""/v1/keys, /v1/key: the API key management endpoints, on SQLite and PostgreSQL."""

from __future__ import annotations

import requests

from tests.billing.helpers import auth, chat, check, error, get

SCOPES = ["model:chat", "model:responses"]


def _mgmt(server, email="owner@example.com", usd=5.0):
    return server.create_key(email=email, usd=usd, management=True, name="mgmt")


def test_key_lifecycle(live_server):
    mgmt = _mgmt(live_server)
    url = f"{live_server.url}/v1/keys"
    r = requests.post(
        url,
        headers=auth(mgmt),
        timeout=10,
        json={"name": "svc", "limit": {"retention": "week", "threshold": 25}, "scopes": SCOPES},
    )
    data = check(r, "keys-post.json", "/v1/keys", "post")["data"]
    key, prefix = data["key"], data["prefix"]
    assert len(key) == 32 and key[:8] == prefix
    assert data["limit"] == {"retention": "week", "threshold": 25} and data["scopes"] == SCOPES
    assert data["monthly_usage"] == 0 and data["disabled"] is False and data["name"] == "svc"

    # An empty body creates a key with defaults (the body is optional).
    bare = check(requests.post(url, headers=auth(mgmt), timeout=60), "keys-post.json", "/v1/keys", "post")[
        "data"
    ]
    assert bare["name"] is None and bare["scopes"] is None and "limit" not in bare

    assert chat(live_server, key).status_code == 200
    listed = check(get(live_server, "/v1/keys", mgmt), "keys-get.json", "/v1/keys")["data"]
    assert [k["prefix"] for k in listed] == [prefix, bare["prefix"]]  # oldest first, no management keys
    assert listed[0]["monthly_usage"] > 0 and "key" not in listed[0]

    # Disable: refused on the very next request (the auth cache is invalidated).
    r = requests.patch(f"{url}/{prefix}", headers=auth(mgmt), json={"disabled": True}, timeout=60)
    patched = check(r, "keys-patch.json", "/v1/keys/{prefix}", "patch")["data"]
    assert patched["disabled"] is True and patched["name"] == "svc" and patched["scopes"] == SCOPES
    error(chat(live_server, key), 401)
    r = requests.patch(
        f"{url}/{prefix}", headers=auth(mgmt), json={"disabled": False, "name": "svc2"}, timeout=10
    )
    assert r.json()["data"]["name"] == "svc2"
    assert chat(live_server, key).status_code == 200

    # PUT replaces the full set: fields left out take their defaults.
    r = requests.put(f"{url}/{prefix}", headers=auth(mgmt), json={"name": "put", "limit": None}, timeout=60)
    put = check(r, "keys-put.json", "/v1/keys/{prefix}", "put")["data"]
    assert (
        put["name"] == "put" and put["limit"] is None and put["scopes"] is None and put["disabled"] is False
    )

    r = requests.delete(f"{url}/{prefix}", headers=auth(mgmt), timeout=60)
    assert check(r, "keys-delete.json", "/v1/keys/{prefix}", "delete")["data"] == {
        "prefix": prefix,
        "deleted": True,
    }
    error(chat(live_server, key), 401)
    assert prefix not in [k["prefix"] for k in get(live_server, "/v1/keys", mgmt).json()["data"]]
    error(requests.patch(f"{url}/{prefix}", headers=auth(mgmt), json={"name": "x"}, timeout=60), 404)
    error(requests.delete(f"{url}/{prefix}", headers=auth(mgmt), timeout=60), 404)


def test_key_endpoint_errors(live_server):
    mgmt = _mgmt(live_server)
    regular = live_server.create_key(email="owner@example.com", usd=0)
    stranger = live_server.create_key(email="other@example.com", usd=0)
    url = f"{live_server.url}/v1/keys"
    error(requests.get(url, timeout=60), 401)
    error(requests.get(url, headers=auth("0" * 32), timeout=60), 401)
    error(requests.get(url, headers=auth(regular), timeout=60), 403)
    error(requests.post(url, headers=auth(regular), json={}, timeout=60), 403)
    # A management key cannot call models.
    error(chat(live_server, mgmt), 403)
    # Not this account's key, a management key's own prefix, an unknown prefix: 404.
    for prefix in (stranger[:8], mgmt[:8], "ffffffff"):
        error(requests.patch(f"{url}/{prefix}", headers=auth(mgmt), json={"name": "x"}, timeout=60), 404)
    for body in (
        {"unknown": 1},
        {"scopes": ["model:nope"]},
        {"limit": {"retention": "year", "threshold": 1}},
        {"limit": {"retention": "day", "threshold": -1}},
        {"limit": {"retention": "day"}},
        [1],
        # Issue 18: lax coercion accepted these (false -> 0, "5" -> 5.0, "true"/1 -> True).
        {"limit": {"retention": "day", "threshold": False}},
        {"limit": {"retention": "day", "threshold": "5"}},
        {"name": 5},
        {"scopes": "model:chat"},
    ):
        error(requests.post(url, headers=auth(mgmt), json=body, timeout=60), 400)
    error(
        requests.post(
            url, headers={**auth(mgmt), "Content-Type": "application/json"}, data=b"{nope", timeout=10
        ),
        400,
    )
    error(
        requests.patch(f"{url}/{regular[:8]}", headers=auth(mgmt), json={"disabled": "maybe"}, timeout=60),
        400,
    )
    for lax in ({"disabled": "true"}, {"disabled": 1}, {"disabled": 0}, {"limit": {"threshold": True}}):
        error(requests.patch(f"{url}/{regular[:8]}", headers=auth(mgmt), json=lax, timeout=60), 400)
    # An integer is still a number.
    r = requests.patch(
        f"{url}/{regular[:8]}",
        headers=auth(mgmt),
        json={"limit": {"retention": "day", "threshold": 3}},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def test_scopes_gate_chat(live_server):
    mgmt = _mgmt(live_server)
    r = requests.post(
        f"{live_server.url}/v1/keys", headers=auth(mgmt), json={"scopes": ["model:image"]}, timeout=10
    )
    key = r.json()["data"]["key"]
    body = error(chat(live_server, key), 403)
    assert "model:chat" in body["message"]
    prefix = key[:8]
    requests.patch(
        f"{live_server.url}/v1/keys/{prefix}", headers=auth(mgmt), json={"scopes": ["model:chat"]}, timeout=10
    )
    assert chat(live_server, key).status_code == 200


def test_limit_blocks_and_monthly_usage(live_server):
    mgmt = _mgmt(live_server, usd=10.0)
    url = f"{live_server.url}/v1/keys"
    key = requests.post(url, headers=auth(mgmt), json={"name": "capped"}, timeout=60).json()["data"]["key"]
    prefix = key[:8]
    first = chat(live_server, key)
    assert first.status_code == 200
    spent = int(first.headers["x-aimlapi-credits-used"])
    # A limit set mid-period counts what the key already spent in it: below the next hold -> 403.
    threshold = (spent + 1000) / 2_000_000
    r = requests.patch(
        f"{url}/{prefix}",
        headers=auth(mgmt),
        timeout=10,
        json={"limit": {"retention": "day", "threshold": threshold}},
    )
    assert r.json()["data"]["limit"] == {"retention": "day", "threshold": threshold}
    body = error(chat(live_server, key), 403)
    assert (
        "limit" in body["message"]
        and "day" in body["message"]
        and body["error"]["code"] == "key_limit_exceeded"
    )
    # Raising it lets the key through again; removing it too.
    requests.patch(
        f"{url}/{prefix}",
        headers=auth(mgmt),
        json={"limit": {"retention": "day", "threshold": 5}},
        timeout=10,
    )
    second = chat(live_server, key)
    assert second.status_code == 200
    spent += int(second.headers["x-aimlapi-credits-used"])
    # GET /v1/key with the regular key: itself, with this month's real spend.
    own = check(get(live_server, "/v1/key", key), "key-get.json", "/v1/key")["data"]
    assert own["prefix"] == prefix and own["monthly_usage"] == spent / 2_000_000
    # With the management key: the account's most recently used key.
    latest = check(get(live_server, "/v1/key", mgmt), "key-get.json", "/v1/key")["data"]
    assert latest["prefix"] == prefix


def test_new_key_limit_exact_threshold(live_server):
    """A brand-new key with a tiny no_reset limit is refused with the documented 403."""
    mgmt = _mgmt(live_server)
    r = requests.post(
        f"{live_server.url}/v1/keys",
        headers=auth(mgmt),
        timeout=10,
        json={"limit": {"retention": "no_reset", "threshold": 0.0001}},
    )
    key = r.json()["data"]["key"]
    body = error(chat(live_server, key), 403)
    assert "its limit is $0.0001 in total" in body["message"]


def test_internal_playground_key_is_invisible_to_the_key_api(live_server):
    import asyncio

    from modelgate.store.db import Database
    from modelgate.web.playground import playground_identity

    mgmt = _mgmt(live_server, email="pg@example.com")
    regular = requests.post(
        f"{live_server.url}/v1/keys", headers=auth(mgmt), json={"name": "mine"}, timeout=10
    )
    regular_prefix = regular.json()["data"]["prefix"]

    async def make_playground_key() -> str:
        db = Database(live_server.settings.database_url)
        try:
            async with db.engine.begin() as conn:
                from sqlalchemy import select

                from modelgate.store.schema import Account

                account_id = (
                    await conn.execute(select(Account.id).where(Account.email == "pg@example.com"))
                ).scalar_one()
                return (await playground_identity(conn, account_id=account_id)).prefix
        finally:
            await db.aclose()

    hidden = asyncio.run(make_playground_key())
    listed = [k["prefix"] for k in get(live_server, "/v1/keys", mgmt).json()["data"]]
    assert listed == [regular_prefix]
    assert get(live_server, "/v1/key", mgmt).json()["data"]["prefix"] == regular_prefix
    r = requests.patch(
        f"{live_server.url}/v1/keys/{hidden}", headers=auth(mgmt), json={"disabled": True}, timeout=10
    )
    error(r, 404)
    error(requests.delete(f"{live_server.url}/v1/keys/{hidden}", headers=auth(mgmt), timeout=60), 404)
