"""Isolation inside an organisation (docs/organisations.md): a member of project A cannot read, edit
or use project B's keys, logs, usage, stored responses or budgets through any endpoint, while the
organisation's owner sees both; the billing role reads but cannot change keys. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from modelgate.accounts.service import create_key, get_or_create_account, top_up
from modelgate.store.budgets import set_budget
from modelgate.store.db import Database
from modelgate.store.organisations import add_org_member, create_org, create_project
from tests.billing.helpers import auth, chat

USD = 2_000_000


@dataclass
class Org:
    keys: dict[str, str]  # who -> raw key ("ann", "ann-mgmt", "bob", "bob-mgmt", "olga-mgmt", "bill-mgmt")
    projects: dict[str, int]  # "A", "B"


async def _setup(url: str) -> Org:
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            olga = await get_or_create_account(conn, email="olga@example.com")
            ann = await get_or_create_account(conn, email="ann@example.com")
            bob = await get_or_create_account(conn, email="bob@example.com")
            bill = await get_or_create_account(conn, email="bill@example.com")
            org = await create_org(conn, name="Acme", owner_id=olga)
            await top_up(conn, account_id=org, usd=50.0)
            for person, role in ((ann, "member"), (bob, "member"), (bill, "billing")):
                await add_org_member(conn, org_id=org, account_id=person, role=role)
            a = await create_project(conn, org_id=org, name="A", owner_id=ann)
            b = await create_project(conn, org_id=org, name="B", owner_id=bob)
            await set_budget(conn, org_id=org, project_id=a, period="month", limit_credits=9 * USD)
            await set_budget(conn, org_id=org, project_id=b, period="month", limit_credits=7 * USD)
            keys = {}
            for who, member, project, mgmt in (
                ("ann", ann, a, False),
                ("ann-mgmt", ann, a, True),
                ("bob", bob, b, False),
                ("bob-mgmt", bob, b, True),
                ("olga-mgmt", olga, None, True),
                ("olga", olga, None, False),
                ("bill-mgmt", bill, None, True),
            ):
                new = await create_key(
                    conn, account_id=org, project_id=project, member_id=member, management=mgmt, name=who
                )
                keys[who] = new.key
        return Org(keys, {"A": a, "B": b})
    finally:
        await db.aclose()


def _get(server: Any, path: str, key: str, **params: Any) -> requests.Response:
    return requests.get(f"{server.url}{path}", headers=auth(key), params=params, timeout=20)


def test_a_project_member_sees_nothing_of_another_project(live_server: Any) -> None:
    org = asyncio.run(_setup(live_server.settings.database_url))
    k = org.keys
    ann_prefix = k["ann"][:8]
    # Ann works: a chat (a log row, a charge) and a stored response.
    assert chat(live_server, k["ann"]).status_code == 200
    r = requests.post(
        f"{live_server.url}/v1/responses",
        headers=auth(k["ann"]),
        json={"model": "mock/echo", "input": "hi"},
        timeout=20,
    )
    assert r.status_code == 200, r.text
    resp_id = r.json()["id"]
    assert chat(live_server, k["bob"]).status_code == 200

    # Bob's management key: Ann's key is not there, whatever the endpoint.
    listed = [x["prefix"] for x in _get(live_server, "/v1/keys", k["bob-mgmt"]).json()["data"]]
    assert ann_prefix not in listed and k["bob"][:8] in listed
    for method, path, body in (
        ("patch", f"/v1/keys/{ann_prefix}", {"name": "mine"}),
        ("put", f"/v1/keys/{ann_prefix}", {"name": "mine"}),
        ("delete", f"/v1/keys/{ann_prefix}", None),
        ("post", "/v1/keys", {"project_id": org.projects["A"]}),  # a key in A: using A's budget
        ("patch", f"/v1/projects/{org.projects['A']}", {"rpm": 1}),
        ("put", f"/v1/projects/{org.projects['A']}/members", {"email": "bob@example.com", "role": "owner"}),
        ("put", "/v1/budgets", {"project_id": org.projects["A"], "limit_usd": 100.0}),
    ):
        r = requests.request(
            method, f"{live_server.url}{path}", headers=auth(k["bob-mgmt"]), json=body, timeout=20
        )
        assert r.status_code in (403, 404), (method, path, r.status_code, r.text)
    for path, params in (
        ("/v2/usage", {"key_prefix": ann_prefix, "period": "7d"}),
        ("/v2/usage/detail", {"key_prefix": ann_prefix, "period": "7d"}),
        ("/v2/logs", {"key_prefix": ann_prefix, "period": "7d"}),
        (f"/v1/keys/{ann_prefix}/spend", {}),
    ):
        r = _get(live_server, path, k["bob-mgmt"], **params)
        assert r.status_code == 404, (path, r.status_code, r.text)
    # Billing transactions: Bob's own charge only, none of Ann's.
    tx = _get(live_server, "/v2/billing/transactions", k["bob"]).json()["data"]
    assert len(tx) == 1 and all(t["type"] == "MODEL_USAGE" for t in tx)
    # Budgets and projects: B's (and none of A's).
    seen = _get(live_server, "/v1/organisation", k["bob-mgmt"]).json()["data"]
    assert [p["id"] for p in seen["projects"]] == [org.projects["B"]]
    assert {b["project_id"] for b in seen["budgets"]} == {org.projects["B"]}
    # Stored responses: Ann's is a 404 for Bob's regular key, by id and as a previous response.
    for path in (f"/v1/responses/{resp_id}", f"/v1/responses/{resp_id}/input_items"):
        assert _get(live_server, path, k["bob"]).status_code == 404, path
    r = requests.delete(f"{live_server.url}/v1/responses/{resp_id}", headers=auth(k["bob"]), timeout=20)
    assert r.status_code == 404
    r = requests.post(
        f"{live_server.url}/v1/responses",
        headers=auth(k["bob"]),
        json={"model": "mock/echo", "input": "and?", "previous_response_id": resp_id},
        timeout=20,
    )
    assert r.status_code == 404, r.text

    # Ann still reads her own; the owner reads everything; billing reads but cannot change keys.
    assert _get(live_server, f"/v1/responses/{resp_id}", k["ann"]).status_code == 200
    owner = [x["prefix"] for x in _get(live_server, "/v1/keys", k["olga-mgmt"]).json()["data"]]
    assert {ann_prefix, k["bob"][:8]} <= set(owner)
    assert (
        _get(live_server, "/v2/logs", k["olga-mgmt"], key_prefix=ann_prefix, period="7d").status_code == 200
    )
    assert (
        len(_get(live_server, "/v2/billing/transactions", k["olga"]).json()["data"])
        == 4  # the top-up and three charges
    )  # top-up + 2
    assert len(_get(live_server, "/v1/organisation", k["olga-mgmt"]).json()["data"]["budgets"]) == 2
    assert (
        _get(live_server, "/v2/logs", k["bill-mgmt"], key_prefix=ann_prefix, period="7d").status_code == 200
    )
    r = requests.patch(
        f"{live_server.url}/v1/keys/{ann_prefix}",
        headers=auth(k["bill-mgmt"]),
        json={"name": "x"},
        timeout=20,
    )
    assert r.status_code == 403


@pytest.mark.parametrize("role", ["owner"])
def test_budgets_set_through_the_api_hold_at_once(live_server: Any, role: str) -> None:
    """An owner sets a project budget with the API; the key already cached is refused once over it."""
    org = asyncio.run(_setup(live_server.settings.database_url))
    k = org.keys
    assert chat(live_server, k["ann"]).status_code == 200  # cached now
    r = requests.put(
        f"{live_server.url}/v1/budgets",
        headers=auth(k["olga-mgmt"]),
        json={"project_id": org.projects["A"], "period": "day", "limit_usd": 0.0, "alert_thresholds": [50]},
        timeout=20,
    )
    assert r.status_code == 200, r.text
    r = chat(live_server, k["ann"])
    assert r.status_code == 403 and r.json()["error"]["code"] == "budget_exceeded"
    assert chat(live_server, k["bob"]).status_code == 200  # B's budget is B's
    spend = _get(live_server, f"/v1/keys/{k['ann'][:8]}/spend", k["ann"]).json()["data"]
    assert [lv["level"] for lv in spend["levels"]] == ["project"]


@pytest.mark.parametrize("big", [11327056631, 3917581098324230930432])
@pytest.mark.parametrize("path", ["/v1/projects/{big}", "/v1/projects/{big}/members", "/v1/budgets/{big}"])
def test_ids_beyond_any_row_are_not_found(live_server: Any, path: str, big: int) -> None:
    """A path id beyond the INTEGER id columns overflowed the query (a 500 the schemathesis fuzz
    found, beyond BIGINT on SQLite, beyond int32 on PostgreSQL): 404."""
    org = asyncio.run(_setup(live_server.settings.database_url))
    url = live_server.url + path.format(big=big)
    method = "DELETE" if "budgets" in path else ("PUT" if "members" in path else "PATCH")
    body = {"email": "x@example.com", "role": "member"} if "members" in path else {"name": "x"}
    r = requests.request(method, url, headers=auth(org.keys["olga-mgmt"]), json=body, timeout=20)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["message"]


def test_admin_ids_beyond_any_row_are_not_found(live_server: Any) -> None:
    """``proj_<n>`` with n beyond the INTEGER id column names no project: 404 (it overflowed the
    query on PostgreSQL), and ``after`` past every row is an empty page."""
    org = asyncio.run(_setup(live_server.settings.database_url))
    headers = auth(org.keys["olga-mgmt"])
    r = requests.get(
        f"{live_server.url}/v1/organization/projects/proj_99999999999", headers=headers, timeout=20
    )
    assert r.status_code == 404, r.text
    r = requests.get(
        f"{live_server.url}/v1/organization/projects",
        params={"after": "proj_9999999999"},
        headers=headers,
        timeout=20,
    )
    assert r.status_code == 200 and r.json()["data"] == [], r.text
