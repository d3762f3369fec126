"""The Projects pages (docs/web.md, "Organisations"): an organisation's owner creates a project,
changes its settings, adds a member and changes their role, sets budgets at every level and sees the
spend against each; a member creates a key in the project (shown once) and edits it (name, limit,
scopes, allowed models, expiry), and the key's spend is shown against every level it falls under;
the usage page groups by project, member, key and model (chart and CSV); the billing role reads
and changes nothing."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.accounts.service import top_up
from modelgate.store.admin_directory import archive_project
from modelgate.store.audit import EventFilter, org_events
from modelgate.store.budgets import set_budget
from modelgate.store.key_rows import list_keys
from modelgate.store.organisations import add_org_member, add_project_member, create_org, create_project
from modelgate.store.spend_alerts import NO_LIMIT
from tests.conftest import LiveServer
from tests.web.helpers import csrf, eventually, logged_in, make_account, with_db


def chat(server: LiveServer, key: str, model: str = "echo") -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "ping"}]},
        timeout=30,
    )


def team(server: LiveServer) -> dict[str, Any]:
    """Acme: Olga owns it, Ann and Bob are members, Bill has the billing role; Ann is in Alpha,
    Bob in Beta."""
    olga = make_account(server, "olga@example.com")
    ann = make_account(server, "ann@example.com")
    bob = make_account(server, "bob@example.com")
    bill = make_account(server, "bill@example.com")

    async def setup(conn: AsyncConnection) -> dict[str, Any]:
        org = await create_org(conn, name="Acme Research", owner_id=olga)
        await top_up(conn, account_id=org, usd=5.0)
        await add_org_member(conn, org_id=org, account_id=ann, role="member")
        await add_org_member(conn, org_id=org, account_id=bob, role="member")
        await add_org_member(conn, org_id=org, account_id=bill, role="billing")
        a = await create_project(conn, org_id=org, name="Alpha", owner_id=ann)
        b = await create_project(conn, org_id=org, name="Beta", owner_id=olga)
        await add_project_member(conn, project_id=b, account_id=bob, role="member")
        return {"org": org, "a": a, "b": b, "olga": olga, "ann": ann, "bob": bob, "bill": bill}

    return with_db(server, setup)


def post(c: httpx.Client, url: str, page: httpx.Response, **data: Any) -> httpx.Response:
    return c.post(url, data={"csrf_token": csrf(page), **data})


def test_owner_and_member_manage_a_project(web_server: LiveServer) -> None:
    s = team(web_server)
    with logged_in(web_server, "olga@example.com") as c:
        page = c.get("/app/projects")
        assert page.status_code == 200 and "Alpha" in page.text and "Beta" in page.text
        # A new project, its settings, a member and their role.
        r = post(c, f"/app/orgs/{s['org']}/projects", page, name="Gamma <b>")
        assert r.status_code == 303
        gamma = int(r.headers["location"].split("/")[-1].split("?")[0])
        page = c.get(f"/app/projects/{gamma}")
        assert "Gamma &lt;b&gt;" in page.text
        r = post(
            c, f"/app/projects/{gamma}/settings", page, name="Gamma", allowed_models="echo", rpm="60", tpm=""
        )
        assert r.status_code == 303
        r = post(c, f"/app/projects/{gamma}/settings", page, name="Gamma", rpm="lots")
        assert r.status_code == 400 and "Requests per minute" in r.text
        r = post(c, f"/app/projects/{gamma}/members", page, email="ann@example.com", role="member")
        assert r.status_code == 303
        r = post(c, f"/app/projects/{gamma}/members", page, email="stranger@example.com", role="member")
        assert r.status_code == 400 and "Invite them" in r.text
        page = c.get(f"/app/projects/{gamma}")
        assert 'data-member="ann@example.com"' in page.text and 'value="echo"' in page.text
        r = post(c, f"/app/projects/{gamma}/members", page, email="ann@example.com", role="owner")
        page = c.get(f"/app/projects/{gamma}")
        row = page.text.split('data-member="ann@example.com"')[1].split("</tr>")[0]
        assert "<option selected>owner</option>" in row
        r = post(c, f"/app/projects/{gamma}/members/{s['ann']}/remove", page)
        assert r.status_code == 303
        assert 'data-member="ann@example.com"' not in c.get(f"/app/projects/{gamma}").text
        # Budgets: the organisation's, Alpha's and Ann's within Alpha.
        page = c.get("/app/projects")
        r = post(c, f"/app/orgs/{s['org']}/budget", page, limit_usd="4", period="month", thresholds="50, 80")
        assert r.status_code == 303
        r = post(c, f"/app/orgs/{s['org']}/budget", page, limit_usd="-1", period="month")
        assert r.status_code == 400 and "limit in USD" in r.text
        page = c.get(f"/app/projects/{s['a']}")
        r = post(c, f"/app/projects/{s['a']}/budgets", page, limit_usd="2", period="day", thresholds="50")
        assert r.status_code == 303
        r = post(
            c, f"/app/projects/{s['a']}/budgets", page, member=str(s["ann"]), limit_usd="1", period="week"
        )
        assert r.status_code == 303
        r = post(c, f"/app/projects/{s['a']}/budgets", page, limit_usd="1", period="year")
        assert r.status_code == 400
        r = post(c, f"/app/projects/{s['a']}/budgets", page, limit_usd="1", period="day", webhook="ftp://x")
        assert r.status_code == 400 and "webhook" in r.text
        # A webhook gets a signing secret, shown once on the answer; saving the same URL keeps it.
        hook = {
            "limit_usd": "2",
            "period": "day",
            "thresholds": "50",
            "webhook": "https://hooks.example.com/x",
        }
        r = post(c, f"/app/projects/{s['a']}/budgets", page, **hook)
        assert r.status_code == 200 and re.search(r'id="webhook-secret-value" class="secret">whsec_', r.text)
        r = post(c, f"/app/projects/{s['a']}/budgets", page, **hook)
        assert r.status_code == 303
        page = c.get(f"/app/projects/{s['a']}")
        assert "whsec_" not in page.text
        for level in ("organisation", "project", "member"):
            assert f'data-budget="{level}"' in page.text

        async def events(conn: AsyncConnection) -> list[str]:
            rows = await org_events(conn, EventFilter(org_id=s["org"]), limit=100)
            return [e.type for e in rows if e.actor_email == "olga@example.com"]

        logged = with_db(web_server, events)  # every change above is in the organisation's audit log
        for kind in ("project.created", "project.updated", "user.added", "user.updated", "user.deleted"):
            assert kind in logged, logged
        assert "organization.updated" in logged

    with logged_in(web_server, "ann@example.com") as c:
        page = c.get("/app/projects")
        assert "Alpha" in page.text and "Beta" not in page.text  # a member sees only its projects
        page = c.get(f"/app/projects/{s['a']}")
        r = post(
            c,
            f"/app/projects/{s['a']}/keys",
            page,
            name="ann-key",
            scopes=["model:chat"],
            limit_usd="0.5",
            retention="day",
        )
        assert r.status_code == 303
        page = c.get(r.headers["location"])
        key = re.search(r'id="new-key-value" class="secret">([^<]+)<', page.text)
        assert key, page.text[:2000]
        assert "new-key-value" not in c.get(f"/app/projects/{s['a']}").text  # shown once
        assert chat(web_server, key.group(1)).status_code == 200

        def levels() -> str | None:
            text = c.get(f"/app/projects/{s['a']}").text
            row = text.split('data-key-prefix="')[1].split("</tr>")[0]
            return row if "(this key $0.00)" not in row else None

        row = eventually(levels, what="the key's spend on the page")
        for level in ("organisation", "project", "member (ann@example.com)", "key limit"):
            assert f'data-level="{level}"' in row, row
        # Ann edits her key: name, limit, scopes, allowed models, expiry.
        key_id = int(re.search(r'id="key-(\d+)"', page.text).group(1))  # type: ignore[union-attr]
        r = post(
            c,
            f"/app/projects/{s['a']}/keys/{key_id}/edit",
            page,
            name="ann-renamed",
            limit_usd="0.25",
            retention="week",
            scopes=["model:chat", "model:embeddings"],
            allowed_models="mock/chain",
            expires="2099-01-31",
        )
        assert r.status_code == 303, r.text

        async def stored(conn: AsyncConnection) -> Any:
            return next(k for k in await list_keys(conn, account_id=s["org"]) if k.id == key_id)

        k = with_db(web_server, stored)
        assert (k.name, k.limit_credits, k.limit_retention) == ("ann-renamed", 500_000, "week")
        assert k.scopes == ["model:chat", "model:embeddings"] and k.allowed_models == ["mock/chain"]
        assert k.expires_at is not None and k.expires_at.year == 2099
        r = chat(web_server, key.group(1))
        assert r.status_code == 403 and r.json()["error"]["code"] == "model_not_allowed"
        # Ann is a plain member of the organisation: she sets no project budget.
        r = post(c, f"/app/projects/{s['a']}/budgets", page, limit_usd="9", period="day")
        assert r.status_code == 403
        # Usage: her project only, grouped and exported.
        page = c.get(f"/app/orgs/{s['org']}/usage", params={"by": "key"})
        assert page.status_code == 200 and "ann-renamed" in page.text and "<svg" in page.text
        got = c.get(f"/app/orgs/{s['org']}/usage.csv", params={"by": "member"})
        rows = list(csv.reader(io.StringIO(got.text)))
        assert rows[0] == ["day", "member", "requests", "tokens", "credits", "usd"]
        assert {r[1] for r in rows[1:]} == {"ann@example.com"}

    with logged_in(web_server, "bill@example.com") as c:  # billing: reads everything, changes nothing
        page = c.get(f"/app/projects/{s['a']}")
        assert page.status_code == 200 and "ann-renamed" in page.text
        assert 'action="/app/projects/' not in page.text.split('id="keys"')[1]  # no key forms
        r = post(c, f"/app/projects/{s['a']}/keys/{key_id}/disable", page)
        assert r.status_code == 403
        r = post(c, f"/app/projects/{s['a']}/keys", page, name="x", scopes=["model:chat"])
        assert r.status_code == 403
        r = post(c, f"/app/projects/{s['a']}/settings", page, name="Mine")
        assert r.status_code == 403
        page = c.get(f"/app/orgs/{s['org']}/usage", params={"by": "project"})
        assert page.status_code == 200 and 'data-group="Alpha"' in page.text


def test_console_lists_organisations(web_server: LiveServer) -> None:
    make_account(web_server, "op@example.com", operator=True)
    s = team(web_server)

    async def budget(conn: AsyncConnection) -> None:
        await set_budget(conn, org_id=s["org"], period="month", limit_credits=8_000_000)
        # A budget that only counts spend (for the Admin API's amount alerts) limits nothing.
        await set_budget(conn, org_id=s["org"], project_id=s["b"], period="month", limit_credits=NO_LIMIT)

    with_db(web_server, budget)
    with logged_in(web_server, "op@example.com") as c:
        page = c.get("/admin/organisations", params={"days": "7"})
        assert page.status_code == 200
        row = page.text.split(f'data-org="{s["org"]}"')[1].split("</tr>")[0]
        assert "Acme Research" in row and '<td data-label="Members" class="num">4</td>' in row
        assert "olga@example.com" not in page.text  # personal organisations only on request
        assert "olga@example.com" in c.get("/admin/organisations", params={"personal": "1"}).text
        page = c.get(f"/admin/organisations/{s['org']}")
        assert page.status_code == 200 and "Alpha" in page.text and "bill@example.com" in page.text
        assert "$4.00 per month" in page.text and "no limit (counts spend for alerts)" in page.text
        assert c.get("/admin/organisations/999999").status_code == 404
        assert c.get(f"/app/projects/{s['b']}").status_code == 404  # an operator is no member
    with logged_in(web_server, "olga@example.com") as c:
        assert c.get("/admin/organisations").status_code == 404  # operators only
        page = c.get(f"/app/projects/{s['b']}")
        assert "counts spend for alerts" in page.text and "$500,000,000,000" not in page.text


def test_no_key_in_an_archived_project(web_server: LiveServer) -> None:
    s = team(web_server)

    async def archive(conn: AsyncConnection) -> None:
        await archive_project(conn, project_id=s["a"])

    with_db(web_server, archive)
    with logged_in(web_server, "ann@example.com") as c:
        page = c.get(f"/app/projects/{s['a']}")
        r = post(c, f"/app/projects/{s['a']}/keys", page, name="late", scopes=["model:chat"])
        assert r.status_code == 403 and "archived" in r.text
