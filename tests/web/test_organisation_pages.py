"""The web face of organisations (docs/organisations.md): the switcher offers the organisations a
person may see whole (owner, admin, billing) and the pages then act on that organisation; keys are
edited on the Keys page; billing filters by project and member; a plain project member cannot switch
into the organisation, so no page shows them another project's keys or logs, nor edits them."""

from __future__ import annotations

import re

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.accounts.service import create_key, top_up
from modelgate.store.organisations import add_org_member, create_org, create_project
from tests.conftest import LiveServer
from tests.web.helpers import csrf, logged_in, make_account, with_db


def _chat(server: LiveServer, key: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "echo", "messages": [{"role": "user", "content": "ping"}]},
        timeout=30,
    )


def test_switch_edit_and_filter(web_server: LiveServer) -> None:
    olga = make_account(web_server, "olga@example.com")
    ann = make_account(web_server, "ann@example.com")

    async def setup(conn: AsyncConnection) -> dict[str, object]:
        org = await create_org(conn, name="Acme Research", owner_id=olga)
        await top_up(conn, account_id=org, usd=5.0)
        await add_org_member(conn, org_id=org, account_id=ann, role="member")
        a = await create_project(conn, org_id=org, name="Alpha", owner_id=ann)
        b = await create_project(conn, org_id=org, name="Beta", owner_id=olga)
        ka = await create_key(conn, account_id=org, project_id=a, member_id=ann, name="alpha-key")
        kb = await create_key(conn, account_id=org, project_id=b, member_id=olga, name="beta-key")
        return {"org": org, "a": a, "b": b, "ka": ka, "kb": kb}

    s = with_db(web_server, setup)
    assert _chat(web_server, s["ka"].key).status_code == 200  # type: ignore[attr-defined]
    assert _chat(web_server, s["kb"].key).status_code == 200  # type: ignore[attr-defined]

    with logged_in(web_server, "olga@example.com") as c:
        page = c.get("/app/keys")
        assert "Acme Research" in page.text and "alpha-key" not in page.text  # personal first
        r = c.post("/app/organisation", data={"org": str(s["org"]), "csrf_token": csrf(page)})
        assert r.status_code == 303
        page = c.get("/app/keys")
        assert "alpha-key" in page.text and "beta-key" in page.text
        # Edit Ann's key: name, limit, allowed models, expiry.
        key_id = s["ka"].key_id  # type: ignore[attr-defined]
        r = c.post(
            f"/app/keys/{key_id}/edit",
            data={
                "csrf_token": csrf(page),
                "name": "alpha-renamed",
                "limit_usd": "2",
                "retention": "day",
                "allowed_models": "mock/chain",
                "expires": "2099-01-31",
            },
        )
        assert r.status_code == 303, r.text
        page = c.get("/app/keys")
        assert (
            "alpha-renamed" in page.text and 'value="mock/chain"' in page.text and "2099-01-31" in page.text
        )
        r = _chat(web_server, s["ka"].key)  # type: ignore[attr-defined]
        assert r.status_code == 403 and r.json()["error"]["code"] == "model_not_allowed"
        # Billing: both projects' requests, then Beta's only.
        page = c.get("/app/billing")
        assert 'id="f-project"' in page.text and 'id="f-member"' in page.text
        assert len(re.findall(r'data-label="Key">alpha', page.text)) == 2  # the 200 and the refused 403
        page = c.get("/app/billing", params={"project": str(s["b"])})
        assert "alpha" not in "".join(re.findall(r'data-label="Key">([^<]*)<', page.text))
        assert "beta-key" in page.text
        r = c.post("/app/keys/999999/edit", data={"csrf_token": csrf(page), "name": "x"})
        assert r.status_code == 404

    with logged_in(web_server, "ann@example.com") as c:
        page = c.get("/app/keys")
        assert "Acme Research" not in page.text  # a plain member is not offered the organisation
        r = c.post("/app/organisation", data={"org": str(s["org"]), "csrf_token": csrf(page)})
        page = c.get("/app/keys")
        assert "beta-key" not in page.text and "alpha-renamed" not in page.text
        kb_id = s["kb"].key_id  # type: ignore[attr-defined]
        r = c.post(f"/app/keys/{kb_id}/edit", data={"csrf_token": csrf(page), "name": "mine"})
        assert r.status_code == 404
        assert "beta-key" not in c.get("/app/billing").text
