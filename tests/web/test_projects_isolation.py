"""Page-level isolation (issue 23): a plain member of project A — even A's owner — cannot read or
change project B's keys, logs, usage or budgets through any page, whatever URL it types: every
attempt is a 404 (or changes nothing), and B's key still works afterwards."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.accounts.service import create_key
from modelgate.store.budgets import set_budget
from modelgate.store.key_rows import get_key_by_id
from modelgate.store.organisations import add_project_member, create_project
from tests.conftest import LiveServer
from tests.web.helpers import csrf, eventually, logged_in, with_db
from tests.web.test_projects_pages import chat, team


def test_member_of_a_cannot_reach_b(web_server: LiveServer) -> None:
    s = team(web_server)

    async def keys(conn: AsyncConnection) -> dict[str, Any]:
        ka = await create_key(
            conn, account_id=s["org"], project_id=s["a"], member_id=s["ann"], name="alpha-key"
        )
        kb = await create_key(
            conn, account_id=s["org"], project_id=s["b"], member_id=s["bob"], name="beta-secret"
        )
        bb = await set_budget(conn, org_id=s["org"], project_id=s["b"], period="day", limit_credits=9_000_000)
        bm = await set_budget(
            conn,
            org_id=s["org"],
            project_id=s["b"],
            member_id=s["bob"],
            period="day",
            limit_credits=7_000_000,
        )
        c = await create_project(conn, org_id=s["org"], name="Gamma")
        await add_project_member(conn, project_id=c, account_id=s["bob"], role="owner")
        return {"ka": ka, "kb": kb, "bb": bb, "bm": bm}

    k = with_db(web_server, keys)
    kb_id = k["kb"].key_id
    r = chat(web_server, k["kb"].key)
    assert r.status_code == 200
    b_request = r.headers["x-inference-id"]
    assert chat(web_server, k["ka"].key).status_code == 200
    a, b, org = s["a"], s["b"], s["org"]

    with logged_in(web_server, "ann@example.com") as c:  # Ann owns Alpha; she is not in Beta
        page = c.get(f"/app/projects/{a}")
        token = csrf(page)

        def post(url: str, **data: Any) -> httpx.Response:
            return c.post(url, data={"csrf_token": token, **data})

        eventually(
            lambda: (
                "beta" not in c.get(f"/app/orgs/{org}/usage").text.lower()
                and 'data-group="Alpha"' in c.get(f"/app/orgs/{org}/usage").text
            ),
            what="Alpha's usage",
        )
        # Reading B: its page, its usage (by project, key or member), its CSV, its request.
        reads = [
            c.get(f"/app/projects/{b}"),
            c.get(f"/app/orgs/{org}/usage", params={"project": str(b)}),
            c.get(f"/app/orgs/{org}/usage", params={"key": str(kb_id)}),
            c.get(f"/app/orgs/{org}/usage", params={"member": str(s["bob"])}),
            c.get(f"/app/orgs/{org}/usage.csv", params={"project": str(b)}),
            c.get(f"/app/orgs/{org}/usage.csv", params={"key": str(kb_id)}),
            c.get(f"/app/requests/{b_request}"),
        ]
        assert [x.status_code for x in reads] == [404] * len(reads)
        for x in reads:
            assert "beta-secret" not in x.text and "bob@example.com" not in x.text
        # What is hers shows nothing of B.
        mine = [
            c.get("/app/projects"),
            page,
            c.get(f"/app/orgs/{org}/usage", params={"by": "key"}),
            c.get(f"/app/orgs/{org}/usage", params={"by": "member"}),
            c.get(f"/app/orgs/{org}/usage.csv", params={"by": "key"}),
            c.get(f"/app/orgs/{org}/usage.csv", params={"by": "project"}),
            c.get("/app/keys"),
            c.get("/app/billing"),
            c.get("/app/billing/logs.csv"),
        ]
        for x in mine:
            assert x.status_code == 200, x.url
            assert "beta-secret" not in x.text and "Beta" not in x.text and "Gamma" not in x.text, x.url
            assert "bob@example.com" not in x.text, x.url
        # The switcher cannot be talked into the organisation: the pages stay on her own.
        post("/app/organisation", org=str(org))
        for url in ("/app/keys", "/app/billing", "/app/billing/logs.csv", "/app/billing/transactions.csv"):
            x = c.get(url, params={"project": str(b)})
            assert "beta-secret" not in x.text and b_request not in x.text, url
        # Changing B: settings, members, budgets, keys — through B's URLs and through A's.
        writes = [
            post(f"/app/projects/{b}/settings", name="Mine"),
            post(f"/app/projects/{b}/members", email="ann@example.com", role="owner"),
            post(f"/app/projects/{b}/members/{s['bob']}/remove"),
            post(f"/app/projects/{a}/members/{s['bob']}/remove"),
            post(f"/app/projects/{b}/budgets", limit_usd="100", period="day"),
            post(f"/app/projects/{b}/budgets/{k['bb']}/delete"),
            post(f"/app/projects/{a}/budgets/{k['bb']}/delete"),
            post(f"/app/projects/{a}/budgets/{k['bm']}/delete"),
            post(f"/app/projects/{b}/keys", name="sneaky", scopes=["model:chat"]),
            post(f"/app/projects/{b}/keys/{kb_id}/edit", name="mine", scopes=["model:chat"]),
            post(f"/app/projects/{a}/keys/{kb_id}/edit", name="mine", scopes=["model:chat"]),
            post(f"/app/projects/{b}/keys/{kb_id}/disable"),
            post(f"/app/projects/{a}/keys/{kb_id}/disable"),
            post(f"/app/projects/{a}/keys/{kb_id}/delete"),
        ]
        assert [x.status_code for x in writes] == [404] * len(writes), [x.status_code for x in writes]
        r = post(f"/app/projects/{a}/budgets", member=str(s["bob"]), limit_usd="0.000001", period="day")
        assert r.status_code == 400  # Bob is not in Alpha
        # The Keys page's own routes act on her personal organisation only.
        post(f"/app/keys/{kb_id}/edit", name="mine")
        post(f"/app/keys/{kb_id}/toggle", enable="0")
        post(f"/app/keys/{kb_id}/limit", limit_usd="0.000001", retention="day")
        post(f"/app/keys/{kb_id}/delete")
        # Organisation-level forms: she is a plain member.
        assert post(f"/app/orgs/{org}/budget", limit_usd="1", period="day").status_code == 404
        assert post(f"/app/orgs/{org}/projects", name="Mine").status_code == 404

    async def unchanged(conn: AsyncConnection) -> Any:
        return await get_key_by_id(conn, key_id=kb_id)

    rec = with_db(web_server, unchanged)
    assert rec is not None and rec.name == "beta-secret" and not rec.disabled and rec.deleted_at is None
    assert rec.limit_credits is None
    assert chat(web_server, k["kb"].key).status_code == 200  # B's key still works
    with logged_in(web_server, "olga@example.com") as c:  # and the owner still sees all of B
        page = c.get(f"/app/projects/{b}")
        assert "beta-secret" in page.text and 'data-budget="project"' in page.text
        assert 'data-budget-member="bob@example.com"' in page.text
        assert "Mine" not in page.text and "sneaky" not in page.text
