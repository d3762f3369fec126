"""Issue 30's walk, the Keys page: a spending limit that refuses says so in plain money and the page
marks the key "limit reached" and raises the limit (defect 2); new keys get every model scope and
the docs say which one a model needs (defect 3); the on/off switch flips in place with Space and
keeps focus, and a URL in the credits help is a link (defect 12). Each at desktop (1366 px) and
phone (390 px) widths and in dark mode, with axe-core at 0 serious/critical."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI
from tests.web.conftest import LOOK_IDS, LOOKS, PHONE, WIDE, new_page, serve
from tests.web.helpers import (
    AXE,
    axe_violations,
    browser_log_in,
    create_key,
    logged_in,
    make_account,
    overflow_x,
)

pytestmark = [
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run `make axe` (npm ci)"),
]

EMBED = """
  - id: mock/embed
    type: embedding
    info: {{name: Mock embeddings, developer: Lab}}
    pricing: {{input_usd_per_mtok: 0.5}}
    embedding: {{dimensions: 16}}
    routes:
      - {{provider: mock, model: embed-model}}
"""
CHAT = {"model": "echo", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def walk_server(database_url: str, openai_upstream: FakeOpenAI, tmp_path: Path) -> Iterator[LiveServer]:
    with serve(database_url, openai_upstream, tmp_path, EMBED) as server:
        yield server


def _chat(server: LiveServer, key: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{server.url}/v1/chat/completions", headers=headers, json=CHAT, timeout=30)


def _row(page: Any, name: str) -> Any:
    return page.locator("#keys-table tbody tr", has_text=name)


def test_a_spending_limit_speaks_money_marks_the_key_and_can_be_raised(
    walk_server: LiveServer, browser: Any
) -> None:
    make_account(walk_server, "limit@example.com", usd=5)
    # A limit of $0.000001 a month: smaller than any request's hold, so nothing is ever spent.
    key = create_key(
        walk_server, email="limit@example.com", usd=0, name="tiny", limit_credits=2, limit_retention="month"
    )
    refused = _chat(walk_server, key)
    assert refused.status_code == 403, refused.text
    message = refused.json()["error"]["message"]
    assert "$0.000001 this month" in message and "Spending limit reached" in message, message
    assert "e-0" not in message and "retention" not in message and "USD" not in message, message

    for viewport, scheme in LOOKS:
        page = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
        browser_log_in(page, walk_server.url, "limit@example.com")
        row = _row(page, "tiny")
        assert row.locator("[data-state=exhausted]").inner_text() == "limit reached"
        assert "$0.00 of $0.000001 this month" in row.locator(".spend-text").inner_text()
        assert overflow_x(page) == 0
        assert axe_violations(page) == [], (viewport, scheme)
        # The refusal reads the same in the request logs.
        page.goto(f"{walk_server.url}/app/billing#logs")
        logged = page.locator("#logs-table .error-text").first.inner_text()
        assert "$0.000001 this month" in logged and "e-0" not in logged
        page.context.close()

    # Raised from the web (on a phone): the mark goes and the key works again.
    page = new_page(browser, viewport=PHONE)
    browser_log_in(page, walk_server.url, "limit@example.com")
    row = _row(page, "tiny")
    row.locator("details.limit-edit summary").click()
    assert row.locator("details.limit-edit input[name=limit_usd]").input_value() == "0.000001"
    row.locator("details.limit-edit input[name=limit_usd]").fill("2.5")
    row.locator("button", has_text="Save limit").click()
    page.wait_for_selector("#limit-saved")
    row = _row(page, "tiny")
    assert row.locator("[data-state=exhausted]").count() == 0
    assert "$0.00 of $2.50 this month" in row.locator(".spend-text").inner_text()
    assert _chat(walk_server, key).status_code == 200
    # A bad amount is refused next to its field, nothing changes.
    row.locator("details.limit-edit summary").click()
    row.locator("details.limit-edit input[name=limit_usd]").fill("1e-9")
    row.locator("button", has_text="Save limit").click()
    assert "at least $0.0000005" in page.locator(".field-error").inner_text()
    page.context.close()


def test_new_keys_get_every_model_scope_and_the_docs_say_which_one_a_model_needs(
    walk_server: LiveServer, browser: Any
) -> None:
    make_account(walk_server, "scopes@example.com", usd=5)
    for viewport, scheme in LOOKS:
        page = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
        browser_log_in(page, walk_server.url, "scopes@example.com")
        boxes = page.locator("input[name=scopes]")
        assert boxes.count() >= 6 and all(boxes.nth(i).is_checked() for i in range(boxes.count()))
        page.fill("#key-name", f"default {scheme} {viewport['width']}")
        page.click("form.grid-form button[type=submit]")
        raw = page.inner_text("#new-key-value")
        r = httpx.post(
            f"{walk_server.url}/v1/embeddings",
            headers={"Authorization": f"Bearer {raw}"},
            json={"model": "mock/embed", "input": "hello"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        page.goto(f"{walk_server.url}/docs/models/mock/embed")
        assert "has the model:embeddings scope" in page.inner_text("#how-to + details")
        assert overflow_x(page) == 0
        assert axe_violations(page) == [], (viewport, scheme)
        page.context.close()


def test_the_switch_flips_in_place_with_space_and_the_credits_help_links(
    walk_server: LiveServer, browser: Any
) -> None:
    make_account(walk_server, "switch@example.com", usd=5)
    make_account(walk_server, "op@example.com", operator=True)
    create_key(walk_server, email="switch@example.com", usd=0, name="flip me")
    with logged_in(walk_server, "op@example.com") as op:
        token = op.get("/admin/settings").text.split('name="csrf_token" value="')[1].split('"')[0]
        help_text = "Pay by invoice: https://billing.example.com/invoice, then tell us."
        r = op.post(
            "/admin/settings",
            data={"signup_credits_usd": "0", "credits_help": help_text, "csrf_token": token},
        )
        assert r.status_code == 303, r.text
    for viewport, scheme in LOOKS:
        page = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
        browser_log_in(page, walk_server.url, "switch@example.com")
        switch = _row(page, "flip me").locator(".switch")
        switch.focus()
        before = switch.get_attribute("aria-checked")
        page.evaluate("window.notReloaded = true")
        page.keyboard.press("Space")
        page.wait_for_function(
            "(before) => document.activeElement.getAttribute('aria-checked') !== before", arg=before
        )
        assert page.evaluate("window.notReloaded") is True  # flipped in place: no reload
        assert page.evaluate("document.activeElement.classList.contains('switch')")
        after = switch.get_attribute("aria-checked")
        assert after != before and switch.inner_text() == ("On" if after == "true" else "Off")
        page.reload()  # and the server kept it
        assert _row(page, "flip me").locator(".switch").get_attribute("aria-checked") == after
        page.goto(f"{walk_server.url}/app/billing")
        link = page.locator("#credits-help a")
        assert link.get_attribute("href") == "https://billing.example.com/invoice"
        assert "then tell us." in page.inner_text("#credits-help")
        assert axe_violations(page) == [], (viewport, scheme)
        page.context.close()


@pytest.mark.parametrize(("viewport", "scheme"), LOOKS, ids=LOOK_IDS)
def test_keys_page_fits(walk_server: LiveServer, browser: Any, viewport: Any, scheme: str) -> None:
    make_account(walk_server, "fit@example.com", usd=5)
    create_key(
        walk_server,
        email="fit@example.com",
        usd=0,
        name="limited",
        limit_credits=4_000_000,
        limit_retention="day",
    )
    page = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
    browser_log_in(page, walk_server.url, "fit@example.com")
    _row(page, "limited").locator("details.limit-edit summary").click()
    assert overflow_x(page) == 0
    assert axe_violations(page) == []
    assert viewport in (WIDE, PHONE)
    page.context.close()
