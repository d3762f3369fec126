"""Issue 23: team organisations are created on the web, on the console and (tests/test_cli_create_org.py)
from the command line. In Chromium at desktop and phone widths, each page checked with axe-core: a
person creates an organisation on /app/projects and lands on it, the switcher offering it; a second
one of the same name (another case) is refused with a clear message; its key is refused while the
pool is empty, an operator tops the pool up on the organisation's console page (the accounts'
two-step top-up), then the key calls a model. Over HTTP: the operator setting that turns
self-service creation off (form absent, POST refused) and the console's own creation form."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.organisations import memberships
from modelgate.store.schema_web import AuditEntry
from tests.conftest import MOCK_CONFIG, FakeOpenAI, LiveServer
from tests.web.conftest import DESKTOP, PHONE
from tests.web.helpers import csrf, logged_in, make_account, with_db
from tests.web.selfservice import assert_accessible, log_in, look

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _chat(server: LiveServer, key: str) -> httpx.Response:
    body = {"model": "echo", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(
        f"{server.url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30
    )


def _team_orgs(server: LiveServer, account_id: int) -> dict[str, tuple[int, str]]:
    async def work(conn: AsyncConnection) -> dict[str, tuple[int, str]]:
        return {
            m.name: (m.org_id, m.role)
            for m in await memberships(conn, account_id=account_id)
            if not m.personal
        }

    return with_db(server, work)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_create_on_the_web_top_up_on_the_console_then_call(
    web_server: LiveServer, browser: Any, viewport: dict[str, int]
) -> None:
    url = web_server.url
    olga = make_account(web_server, "olga@example.com")
    make_account(web_server, "op@example.com", operator=True)
    page = look(browser, viewport, "light")
    log_in(page, url, "olga@example.com", "a good password")
    page.wait_for_url("**/app/keys")

    page.goto(f"{url}/app/projects")
    page.click("#new-org summary")
    assert_accessible(page, "projects page with the new-organisation form")
    page.fill("#new-org-name", "  Acme   Labs ")
    page.click("#create-org")
    page.wait_for_url("**/app/projects?saved=org*")
    (org, role) = _team_orgs(web_server, olga)["Acme Labs"]
    assert role == "owner"
    assert "you are its owner" in (page.text_content("#saved") or "")
    assert page.locator(f"#org-{org} h2").inner_text() == "Acme Labs"
    # The switcher offers it, and chose it.
    assert page.locator("#org-switch option:checked").inner_text() == "Acme Labs"
    assert_accessible(page, "projects page after creating an organisation")

    # The same name in another case: refused, said clearly, nothing created.
    page.click("#new-org summary")
    page.fill("#new-org-name", "acme labs")
    page.click("#create-org")
    page.wait_for_selector("#new-org-error")
    assert "exists already" in page.inner_text("#new-org-error")
    assert page.input_value("#new-org-name") == "acme labs"
    assert_accessible(page, "duplicate name refused")
    assert len(_team_orgs(web_server, olga)) == 1

    # A project and a key in it; the empty pool refuses the key's call.
    page.goto(f"{url}/app/projects")
    page.click(f"#org-{org} summary:has-text('Create a project')")
    page.fill(f"#np-{org}", "Research")
    page.click(f"#org-{org} button:has-text('Create project')")
    page.wait_for_url("**/app/projects/*")
    page.click("#keys summary:has-text('Create a key')")
    page.fill("#k-name", "lab-key")
    page.click("#create-key button[type=submit]")
    page.wait_for_selector("#new-key-value")
    key = (page.text_content("#new-key-value") or "").strip()
    refused = _chat(web_server, key)
    assert refused.json()["error"]["code"] == "insufficient_credits", refused.text

    # The operator tops the pool up from the organisation's console page: review, then confirm.
    op = look(browser, viewport, "light")
    log_in(op, url, "op@example.com", "a good password")
    op.wait_for_url("**/app/keys")
    op.goto(f"{url}/admin/organisations")
    op.click(f'tr[data-org="{org}"] a')
    op.wait_for_selector("#top-up-usd")
    assert_accessible(op, "organisation console page")
    op.fill("#top-up-usd", "2")
    op.fill("#top-up-note", "PO 17")
    op.click("#review-top-up")
    op.wait_for_selector("#confirm-top-up")
    assert op.inner_text("#confirm-amount") == "$2.00"
    assert_accessible(op, "organisation top-up confirmation")
    op.click("#confirm-button")
    op.wait_for_url(f"**/admin/organisations/{org}?done=top-up")
    assert "Credits added" in op.inner_text("#done")
    # A correction needs its reason, here as on an account's page.
    op.fill("#top-up-usd", "-0.5")
    op.click("#review-top-up")
    op.wait_for_selector("#note-error")

    answer = _chat(web_server, key)
    assert answer.status_code == 200, answer.text


def test_self_service_off_and_console_creation(make_live_server: Any, openai_upstream: FakeOpenAI) -> None:
    server = make_live_server(MOCK_CONFIG.format(base_url=openai_upstream.base_url), org_self_service=False)
    nina = make_account(server, "nina@example.com")
    make_account(server, "op@example.com", operator=True)
    with logged_in(server, "nina@example.com") as c:
        page = c.get("/app/projects")
        assert page.status_code == 200 and 'action="/app/orgs"' not in page.text
        refused = c.post("/app/orgs", data={"name": "Sneaky", "csrf_token": csrf(page)})
        assert refused.status_code == 403 and "operators" in refused.text
    assert _team_orgs(server, nina) == {}

    with logged_in(server, "op@example.com") as c:
        page = c.get("/admin/organisations")
        assert 'id="new-org"' in page.text
        token = csrf(page)

        def create(**form: str) -> httpx.Response:
            return c.post("/admin/organisations", data={"csrf_token": token, **form})

        r = create(name="Nina's Team", owner="ghost@example.com")
        assert r.status_code == 400 and "No account has this email" in r.text
        r = create(name="", owner="nina@example.com")
        assert r.status_code == 400 and "Give the organisation a name" in r.text
        r = create(name="x" * 101, owner="nina@example.com")
        assert r.status_code == 400 and "at most 100 characters" in r.text
        r = create(name="Nina's Team", owner="Nina@Example.com", billing="postpaid")
        assert r.status_code == 303, r.text
        org = int(r.headers["location"].split("/admin/organisations/")[1].split("?")[0])
        r = create(name="NINA'S TEAM", owner="op@example.com")
        assert r.status_code == 400 and "exists already" in r.text
        assert "postpaid" in c.get(f"/admin/organisations/{org}").text
        # Another organisation's id is no organisation: the console's 404.
        assert (
            c.post("/admin/organisations/999999/top-up", data={"csrf_token": token, "usd": "1"}).status_code
            == 404
        )
    assert _team_orgs(server, nina) == {"Nina's Team": (org, "owner")}

    async def events(conn: AsyncConnection) -> list[tuple[str, str, dict[str, Any]]]:
        q = select(AuditEntry.action, AuditEntry.actor, AuditEntry.detail).where(AuditEntry.org_id == org)
        return [
            (a, who, json.loads(d)) for a, who, d in (await conn.execute(q.order_by(AuditEntry.id))).all()
        ]

    assert with_db(server, events) == [
        (
            "organization.updated",
            "op@example.com",
            {"id": f"org_{org}", "changes_requested": {"name": "Nina's Team", "billing_mode": "postpaid"}},
        ),
        ("user.added", "op@example.com", {"id": f"user_{nina}", "data": {"role": "owner"}}),
    ]
