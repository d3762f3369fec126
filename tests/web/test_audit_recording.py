"""The one audit log records key changes made on the web pages (the Keys page: create, switch,
limit, edit, delete) and in the operator console (a key switched off), under OpenAI's event types,
with the signed-in person as the actor (a session): the organisation's admin key reads them from
``GET /v1/organization/audit_logs``."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.web.helpers import csrf, logged_in, make_account


def _events(server: LiveServer, admin: str) -> list[dict[str, Any]]:
    r = httpx.get(
        f"{server.url}/v1/organization/audit_logs",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_web_and_console_key_changes_are_audited(web_server: LiveServer) -> None:
    make_account(web_server, "keeper@example.com")
    make_account(web_server, "op@example.com", operator=True)
    admin = web_server.create_key(email="keeper@example.com", usd=0, management=True)
    with logged_in(web_server, "keeper@example.com") as c:
        token = csrf(c.get("/app/keys"))
        made = c.post("/app/keys", data={"name": "web key", "scopes": "model:chat", "csrf_token": token})
        assert made.status_code == 303
        page = c.get("/app/keys")
        key_id = re.findall(r'action="/app/keys/(\d+)/toggle"', page.text)[0]
        token = csrf(page)
        assert c.post(f"/app/keys/{key_id}/toggle", data={"csrf_token": token}).status_code == 303
        limit = {"limit_usd": "3", "retention": "day", "csrf_token": token}
        assert c.post(f"/app/keys/{key_id}/limit", data=limit).status_code == 303
        edit = {"name": "renamed", "retention": "day", "limit_usd": "4", "csrf_token": token}
        assert c.post(f"/app/keys/{key_id}/edit", data=edit).status_code == 303
    with logged_in(web_server, "op@example.com") as op:
        token = csrf(op.get("/admin/accounts"))
        assert (
            op.post(f"/admin/keys/{key_id}/toggle", data={"enable": "1", "csrf_token": token}).status_code
            == 303
        )
    with logged_in(web_server, "keeper@example.com") as c:
        token = csrf(c.get("/app/keys"))
        assert c.post(f"/app/keys/{key_id}/delete", data={"csrf_token": token}).status_code == 303

    events = [e for e in _events(web_server, admin) if e.get(e["type"], {}).get("id") == f"key_{key_id}"]
    assert [e["type"] for e in events] == [
        "api_key.deleted",
        "api_key.updated",  # the operator switched it back on
        "api_key.updated",
        "api_key.updated",
        "api_key.updated",
        "api_key.created",
    ]
    actors = [e["actor"]["session"]["user"]["email"] for e in events]
    assert actors == ["keeper@example.com", "op@example.com"] + ["keeper@example.com"] * 4
    assert all(e["actor"]["type"] == "session" for e in events)
    assert events[1]["api_key.updated"]["changes_requested"] == {"disabled": False}
    assert events[4]["api_key.updated"]["changes_requested"] == {"disabled": True}
    assert events[2]["api_key.updated"]["changes_requested"]["name"] == "renamed"
    assert events[-1]["api_key.created"]["data"] == {"scopes": ["model:chat"]}
