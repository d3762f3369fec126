"""The organisation pages (issues 23/24) at desktop (1366 px) and phone (375 px) widths and in dark
mode: the Projects list, a project (settings, members, budgets with alerts, keys with their spend per
level, every form unfolded), usage and cost, invitations, a plain member's view of its project, and
the console's Organisations list and details — axe-core at 0 serious/critical, nothing wider than
the window. ``MODELGATE_SCREENSHOTS=1`` refreshes their screenshots in docs/screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.accounts.service import create_key
from modelgate.store.budgets import set_budget
from tests.conftest import LiveServer
from tests.web.conftest import WIDE, new_page, screenshots_dir
from tests.web.helpers import (
    AXE,
    axe_violations,
    browser_log_in,
    eventually,
    logged_in,
    overflow_x,
    set_operator,
    with_db,
)
from tests.web.test_projects_pages import chat, post, team

pytestmark = [
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run `make axe` (npm ci)"),
]

PHONE = {"width": 375, "height": 812}
LOOKS = [
    (WIDE, "light", "desktop"),
    (PHONE, "light", "phone"),
    (WIDE, "dark", "dark"),
    (PHONE, "dark", "phone-dark"),
]
UNFOLD = "document.querySelectorAll('details').forEach(d => d.open = true)"


def _data(server: LiveServer) -> dict[str, Any]:
    s = team(server)
    set_operator(server, "olga@example.com")

    async def more(conn: AsyncConnection) -> dict[str, Any]:
        await set_budget(
            conn, org_id=s["org"], period="month", limit_credits=8_000_000, alert_thresholds=[50, 80]
        )
        await set_budget(
            conn,
            org_id=s["org"],
            project_id=s["a"],
            period="day",
            limit_credits=2_000_000,
            alert_thresholds=[1, 50],
        )
        await set_budget(
            conn,
            org_id=s["org"],
            project_id=s["a"],
            member_id=s["ann"],
            period="week",
            limit_credits=4_000_000,
        )
        ka = await create_key(
            conn,
            account_id=s["org"],
            project_id=s["a"],
            member_id=s["ann"],
            name="alpha-backend",
            limit_retention="month",
            limit_credits=1_000_000,
            scopes=["model:chat"],
        )
        kb = await create_key(
            conn, account_id=s["org"], project_id=s["b"], member_id=s["bob"], name="beta-batch"
        )
        return {"ka": ka.key, "kb": kb.key}

    keys = with_db(server, more)
    assert chat(server, keys["ka"]).status_code == 200
    assert chat(server, keys["kb"]).status_code == 200
    with logged_in(server, "olga@example.com") as c:
        page = c.get(f"/app/orgs/{s['org']}/invitations")
        post(
            c,
            f"/app/orgs/{s['org']}/invitations",
            page,
            email="new@example.com",
            role="member",
            project=str(s["a"]),
        )
        eventually(
            lambda: 'data-group="Beta"' in c.get(f"/app/orgs/{s['org']}/usage").text, what="the usage rows"
        )
    return s


def test_organisation_pages_look_right(web_server: LiveServer, browser: Any, tmp_path: Path) -> None:
    s = _data(web_server)
    org, a = s["org"], s["a"]
    pages = [
        ("projects", "olga@example.com", "/app/projects"),
        ("project", "olga@example.com", f"/app/projects/{a}"),
        ("org-usage", "olga@example.com", f"/app/orgs/{org}/usage?by=key"),
        ("invitations", "olga@example.com", f"/app/orgs/{org}/invitations"),
        ("admin-organisations", "olga@example.com", "/admin/organisations"),
        ("admin-organisation", "olga@example.com", f"/admin/organisations/{org}"),
        ("project-member", "ann@example.com", f"/app/projects/{a}"),
    ]
    shots = screenshots_dir(tmp_path)
    problems: list[str] = []
    for viewport, scheme, look in LOOKS:
        signed_in: dict[str, Any] = {}
        for name, who, url in pages:
            if who not in signed_in:
                page = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
                browser_log_in(page, web_server.url, who)
                signed_in[who] = page
            page = signed_in[who]
            response = page.goto(web_server.url + url)
            assert response is not None and response.status == 200, (url, response and response.status)
            if look in ("desktop", "phone") and name != "project-member":
                page.screenshot(path=str(shots / f"{name}-{look}.png"), full_page=True)
            page.evaluate(UNFOLD)
            found = axe_violations(page)
            if found:
                problems.append(f"{look} {url}: {found}")
            wider = overflow_x(page)
            if wider > 0:
                problems.append(f"{look} {url}: {wider}px wider than the window")
        for page in signed_in.values():
            page.context.close()
    assert not problems, "\n".join(problems)
