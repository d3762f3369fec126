"""Accessibility: axe-core (the npm package, installed by ``make axe``) injected by Playwright into
every page, at desktop and phone widths (and in the dark colour scheme at desktop width): no serious
or critical violation (WCAG 2.1 A/AA rules and axe's best practices)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.web.conftest import DESKTOP, PHONE, new_page
from tests.web.helpers import AXE, axe_violations, create_key, make_account

pytestmark = [
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run `make axe` (npm ci)"),
]

ANONYMOUS = [
    "/",
    "/app/login",
    "/app/login?signed_up=1",
    "/app/signup",
    "/app/forgot",
    "/docs",
    "/docs/models/mock/thinker",
    "/api-docs",
    "/docs/models/no/such-model",
]
SIGNED_IN = [
    "/app/keys",
    "/app/billing",
    "/app/billing?metric=usd",
    "/app/playground",
    "/app/account",
    "/admin/accounts",
    "/admin/models",
    "/admin/settings",
    "/admin/audit",
    "/admin/usage",
    "/admin/catalog",
    "/app/account/two-factor",
]


def _log_in(page: Any, url: str, email: str) -> None:
    page.goto(f"{url}/app/login")
    page.fill("#email", email)
    page.fill("#password", "a good password")
    page.click("main button[type=submit]")
    page.wait_for_url("**/app/keys")


@pytest.mark.parametrize(
    ("scheme", "viewports"), [("light", (DESKTOP, PHONE)), ("dark", (DESKTOP,))], ids=["light", "dark"]
)
def test_no_serious_or_critical_violations(
    web_server: LiveServer, openai_upstream: FakeOpenAI, browser: Any, scheme: str, viewports: Any
) -> None:
    url = web_server.url
    make_account(web_server, "op@example.com", operator=True, usd=5)
    key = create_key(
        web_server,
        email="op@example.com",
        usd=0,
        name="a11y key",
        limit_credits=2_000_000,
        limit_retention="month",
    )
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": "echo", "messages": [{"role": "user", "content": "hello"}]}
    assert httpx.post(f"{url}/v1/chat/completions", headers=headers, json=body, timeout=30).status_code == 200
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "boom"}}))
    failed = httpx.post(f"{url}/v1/chat/completions", headers=headers, json=body, timeout=30)
    request_id = failed.json()["requestId"]
    pages = [*ANONYMOUS, *SIGNED_IN, "/admin/accounts/1", f"/admin/requests?id={request_id}"]

    found: dict[str, list[dict[str, Any]]] = {}
    for viewport in viewports:
        # bypass_csp: axe is injected as a script of the test's own; the pages keep their policy.
        page = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
        width = viewport["width"]
        for path in ANONYMOUS:
            page.goto(url + path)
            found[f"{width} {path}"] = axe_violations(page)
        _log_in(page, url, "op@example.com")
        # A playground conversation with Markdown and code, and a new key on the Keys page.
        page.goto(f"{url}/app/playground?model=mock/echo")
        openai_upstream.script(Scripted(text="A **list**:\n- one\n\n```python\nprint(1)\n```"))
        page.fill("#pg-input", "hello")
        page.keyboard.press("Enter")
        page.wait_for_selector(".msg.assistant .reply-meta")
        found[f"{width} playground with a reply"] = axe_violations(page)
        page.goto(f"{url}/app/keys")
        page.fill("#key-name", "shown once")
        page.click("form.grid-form button[type=submit]")
        page.wait_for_selector("#new-key-value")
        found[f"{width} keys with a new key"] = axe_violations(page)
        for path in pages[len(ANONYMOUS) :]:
            page.goto(url + path)
            found[f"{width} {path}"] = axe_violations(page)
        page.context.close()
    bad = {where: v for where, v in found.items() if v}
    assert not bad, json.dumps(bad, indent=1)
