"""Issue 24's Done-when flow, in headless Chromium against a live gateway and the fake upstream:
an organisation's owner creates a project and sets its budget (an alert at 10 % posted to a local
webhook receiver, the signing secret shown once), invites a new person into the project; the
invitee signs up through the link, accepts, creates a project key and calls the API with it until
the project budget refuses a request with a clear error; the spend alert is delivered to the
receiver (its signature checked with the secret from the page) and shown on the project page."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.accounts.service import top_up
from modelgate.mail.webhooks import verify
from modelgate.store.organisations import create_org
from tests.conftest import MOCK_CONFIG, FakeOpenAI
from tests.fakes.webhook_receiver import webhook_receiver
from tests.web.conftest import new_page
from tests.web.helpers import AXE, axe_violations, browser_log_in, eventually, make_account, with_db

pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


def test_invite_key_budget_alert(
    make_live_server: Any, openai_upstream: FakeOpenAI, browser: Any, tmp_path: Path
) -> None:
    config = MOCK_CONFIG.format(base_url=openai_upstream.base_url)
    with ThreadPoolExecutor(1) as pool:  # the sync Playwright API keeps an event loop in this thread
        server = pool.submit(make_live_server, config, spend_alert_interval=0.05).result()
    olga = make_account(server, "olga@example.com")

    async def organisation(conn: AsyncConnection) -> int:
        org = await create_org(conn, name="Acme Research", owner_id=olga)
        await top_up(conn, account_id=org, usd=5.0)
        return org

    org = with_db(server, organisation)
    with webhook_receiver() as receiver:
        owner = new_page(browser, bypass_csp=True)
        browser_log_in(owner, server.url, "olga@example.com")
        # A project, and its budget: $0.0001 a day, an alert at 10 % posted to the receiver.
        owner.goto(f"{server.url}/app/projects")
        owner.click(f"#org-{org} summary:has-text('Create a project')")
        owner.fill(f"#np-{org}", "Research")
        owner.click(f"#org-{org} button:has-text('Create project')")
        owner.wait_for_url("**/app/projects/*")
        project = int(owner.url.split("/app/projects/")[1].split("?")[0])
        owner.click("#budgets summary:has-text('Set a budget')")
        owner.fill("#b-limit", "0.0001")
        owner.select_option("#b-period", "day")
        owner.fill("#b-th", "10")
        owner.fill("#b-hook", receiver.url)
        owner.click("#budget-form button[type=submit]")
        secret = owner.text_content("#webhook-secret-value")
        assert secret is not None and secret.startswith("whsec_")
        owner.reload()
        assert owner.locator("#webhook-secret-value").count() == 0  # shown once
        assert owner.locator('tr[data-budget="project"]').count() == 1
        # The invitation: a member of the organisation, joining Research.
        owner.goto(f"{server.url}/app/orgs/{org}/invitations")
        owner.fill("#i-email", "nina@example.com")
        owner.select_option("#i-project", str(project))
        owner.click("#invite-form button[type=submit]")
        link = owner.text_content("#invite-link-value")
        assert link is not None and "/app/invite/" in link
        assert axe_violations(owner) == [] if AXE.exists() else True

        # Nina, new here: signs up through the link, accepts, lands on the project.
        nina = new_page(browser, bypass_csp=True)
        nina.goto(link)
        nina.click("#invite-signup")
        nina.fill("#password", "nina's good password")
        nina.click("main button[type=submit]")
        nina.wait_for_url("**/app/invite/*")
        nina.click("#accept-invite")
        nina.wait_for_url(f"**/app/projects/{project}?saved=joined")
        assert "you joined" in (nina.text_content("#saved") or "")
        # Her key in the project, shown once.
        nina.click("#keys summary:has-text('Create a key')")
        nina.fill("#k-name", "nina-key")
        nina.click("#create-key button[type=submit]")
        nina.wait_for_selector("#new-key-value")
        key = (nina.text_content("#new-key-value") or "").strip()
        assert key

        # Calls against the fake upstream until the project budget refuses one.
        def call() -> httpx.Response:
            return httpx.post(
                f"{server.url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}"},
                json={"model": "echo", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
                timeout=30,
            )

        answers = []
        for _ in range(60):
            answers.append(call())
            if answers[-1].status_code != 200:
                break
        refused = answers[-1]
        assert answers[0].status_code == 200 and refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error["code"] == "budget_exceeded" and "project budget" in error["message"], error

        # The alert: delivered to the receiver, signed with the secret the page showed.
        (hook, *_) = receiver.wait_for(1)
        assert verify(secret, headers=hook.headers, body=hook.body)
        body = json.loads(hook.body)
        assert body["type"] == "spend_alert.threshold_crossed"
        assert body["data"]["level"] == "project" and body["data"]["project_id"] == project
        assert body["data"]["threshold_percent"] == 10

        # ... and on the project page, for the owner and for Nina.
        def alert_shown(page: Any) -> bool:
            page.goto(f"{server.url}/app/projects/{project}")
            return page.locator('#alerts li[data-alert="project"][data-threshold="10%"]').count() == 1

        eventually(lambda: alert_shown(nina), what="the alert on Nina's project page")
        eventually(lambda: alert_shown(owner), what="the alert on the owner's project page")
        spent = nina.text_content('tr[data-budget="project"] .spend-text') or ""
        assert "$0.000013 today" in spent, spent  # the one request charged, against the project
        if AXE.exists():
            assert axe_violations(nina) == []
