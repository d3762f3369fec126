"""Keys editable through the key API (docs/organisations.md): allowed models, rpm/tpm, expiry, on top
of name/limit/scopes; the model allow-lists of a key and of its project and their rate limits hold on
every door, each refusing in its own error envelope (OpenAI chat, Anthropic messages)."""

from __future__ import annotations

import asyncio

import requests

from modelgate.accounts.service import get_or_create_account
from modelgate.store.db import Database
from modelgate.store.organisations import default_project, update_project
from tests.billing.helpers import auth, chat, check, error

ANTHROPIC = {"anthropic-version": "2023-06-01"}


def _mgmt(server, email="owner@example.com"):
    return server.create_key(email=email, usd=5.0, management=True, name="mgmt")


def _messages(server, key, model="mock/echo"):
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    return requests.post(
        f"{server.url}/v1/messages", headers={"x-api-key": key, **ANTHROPIC}, json=body, timeout=20
    )


def test_allowed_models_rpm_and_expiry_are_editable(live_server):
    mgmt = _mgmt(live_server)
    url = f"{live_server.url}/v1/keys"
    r = requests.post(
        url, headers=auth(mgmt), json={"name": "svc", "allowed_models": ["mock/chain"]}, timeout=10
    )
    data = check(r, "keys-post.json", "/v1/keys", "post")["data"]
    key, prefix = data["key"], data["prefix"]
    assert data["allowed_models"] == ["mock/chain"] and data["project_id"] is not None

    # Not on the allow-list: refused before any hold, in each door's envelope.
    body = error(chat(live_server, key, model="echo"), 403)
    assert body["error"]["code"] == "model_not_allowed"
    r = _messages(live_server, key)
    assert r.status_code == 403 and r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "permission_error"

    # An alias of an allowed model is allowed; PATCH changes only what it names.
    r = requests.patch(f"{url}/{prefix}", headers=auth(mgmt), json={"allowed_models": ["echo"]}, timeout=60)
    patched = check(r, "keys-patch.json", "/v1/keys/{prefix}", "patch")["data"]
    assert patched["allowed_models"] == ["echo"] and patched["name"] == "svc"
    assert chat(live_server, key, model="mock/echo").status_code == 200
    assert _messages(live_server, key).status_code == 200

    # rpm: the second request in the minute is refused with 429 and Retry-After.
    r = requests.patch(f"{url}/{prefix}", headers=auth(mgmt), json={"rpm": 1}, timeout=60)
    assert r.json()["data"]["rpm"] == 1
    assert chat(live_server, key).status_code == 200
    r = chat(live_server, key)
    assert r.status_code == 429 and "Retry-After" in r.headers
    r = requests.patch(f"{url}/{prefix}", headers=auth(mgmt), json={"rpm": None}, timeout=60)
    assert r.json()["data"]["rpm"] is None

    # Expiry: a past time refuses the key at once; removing it restores it.
    r = requests.patch(
        f"{url}/{prefix}", headers=auth(mgmt), json={"expires_at": "2020-01-01T00:00:00Z"}, timeout=10
    )
    assert r.json()["data"]["expires_at"] == "2020-01-01T00:00:00.000Z"
    assert "expired" in error(chat(live_server, key), 401)["message"]
    requests.patch(f"{url}/{prefix}", headers=auth(mgmt), json={"expires_at": None}, timeout=60)
    assert chat(live_server, key).status_code == 200

    # Invalid values are 400s in the envelope, never 500s.
    for bad in ({"expires_at": "tomorrow"}, {"rpm": 0}, {"allowed_models": "mock/echo"}, {"tpm": -1}):
        error(requests.patch(f"{url}/{prefix}", headers=auth(mgmt), json=bad, timeout=60), 400)
    # PUT resets what it leaves out.
    r = requests.put(f"{url}/{prefix}", headers=auth(mgmt), json={"name": "x"}, timeout=60)
    assert r.json()["data"]["allowed_models"] is None


def test_project_allow_list_and_rpm_apply_to_its_keys(live_server):
    key = live_server.create_key(email="proj@example.com", usd=5.0)

    async def restrict(models, rpm):
        db = Database(live_server.settings.database_url)
        try:
            async with db.engine.begin() as conn:
                org = await get_or_create_account(conn, email="proj@example.com")
                project = await default_project(conn, org_id=org)
                assert project is not None
                await update_project(conn, project_id=project, allowed_models=models, rpm=rpm)
        finally:
            await db.aclose()

    asyncio.run(restrict(["mock/chain"], None))
    live_server.app.state.mg.keys.clear()  # what changing a project through the API does (revokes its keys)
    assert error(chat(live_server, key, model="echo"), 403)["error"]["code"] == "model_not_allowed"
    asyncio.run(restrict(None, 1))
    live_server.app.state.mg.keys.clear()
    assert chat(live_server, key).status_code == 200
    r = chat(live_server, key)
    assert r.status_code == 429 and "this project" in r.json()["message"]
