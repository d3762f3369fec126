"""Issue 30's walk, getting in: guessed addresses answer browsers with a page or a redirect while
API clients keep JSON (defect 4); signing up signs you in, welcomes you with your sign-up credits,
and every form focuses its first field (defect 9); prices and amounts in one money format, and end
users are never told to set an operator's environment variables (defect 11). At desktop (1366 px)
and phone (390 px) widths and in dark mode, axe-core at 0 serious/critical."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.web.conftest import LOOK_IDS, LOOKS, new_page
from tests.web.helpers import AXE, axe_violations, browser_log_in, logged_in, make_account, overflow_x

pytestmark = [
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run `make axe` (npm ci)"),
]

REDIRECTS = {
    "/login": "/app/login",
    "/signup": "/app/signup",
    "/dashboard": "/app/keys",
    "/app/usage": "/app/billing",
    "/app/settings": "/app/account",
}
SCIENTIFIC = re.compile(r"\d[eE]-?\d")


def _set_signup_credits(server: LiveServer, usd: str) -> None:
    make_account(server, "op@example.com", operator=True)
    with logged_in(server, "op@example.com") as op:
        token = op.get("/admin/settings").text.split('name="csrf_token" value="')[1].split('"')[0]
        r = op.post("/admin/settings", data={"signup_credits_usd": usd, "csrf_token": token})
        assert r.status_code == 303, r.text


@pytest.mark.parametrize(("viewport", "scheme"), LOOKS, ids=LOOK_IDS)
def test_guessed_addresses_answer_browsers_with_pages(
    web_server: LiveServer, browser: Any, viewport: Any, scheme: str
) -> None:
    page = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
    for guessed, target in REDIRECTS.items():
        page.goto(web_server.url + guessed)
        # signed out, the app's pages themselves lead to the log-in page
        assert page.url.split("?")[0].endswith(target if "sign" in target else "/app/login"), (
            guessed,
            page.url,
        )
    missing = page.goto(f"{web_server.url}/no/such/page")
    assert missing is not None and missing.status == 404
    assert "text/html" in missing.headers["content-type"]
    assert page.inner_text("h1") == "Page not found" and page.locator("a[href='/app/login']").count() >= 1
    assert overflow_x(page) == 0 and axe_violations(page) == []
    make_account(web_server, f"guess-{scheme}-{viewport['width']}@example.com")
    browser_log_in(page, web_server.url, f"guess-{scheme}-{viewport['width']}@example.com")
    for guessed, target in REDIRECTS.items():
        page.goto(web_server.url + guessed)
        assert page.url.endswith("/app/keys" if "sign" in target or "login" in target else target), guessed
    page.context.close()
    # API clients keep the JSON envelope, browsers' fetch() calls too.
    for accept in ("application/json", "*/*"):
        r = httpx.get(f"{web_server.url}/login", headers={"Accept": accept}, timeout=30)
        assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = httpx.get(f"{web_server.url}/v1/nothing", headers={"Accept": "text/html"}, timeout=30)
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]


@pytest.mark.parametrize(("viewport", "scheme"), LOOKS, ids=LOOK_IDS)
def test_sign_up_signs_in_and_welcomes_with_the_credits(
    web_server: LiveServer, browser: Any, viewport: Any, scheme: str
) -> None:
    _set_signup_credits(web_server, "0.5")
    page = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
    page.goto(f"{web_server.url}/app/signup")
    assert page.evaluate("document.activeElement.id") == "email"  # the first field has focus
    page.keyboard.type(f"new-{scheme}-{viewport['width']}@example.com")
    page.fill("#password", "short")
    page.click("main button[type=submit]")
    page.wait_for_selector("#password-error")  # the answer page has loaded (autofocus runs on load)
    page.wait_for_function("document.activeElement.id === 'password'")  # the field to fix
    page.fill("#password", "a long enough password")
    page.click("main button[type=submit]")
    page.wait_for_url("**/app/keys?welcome=1")
    welcome = page.inner_text("#welcome")
    assert "signed in" in welcome and "$0.50" in welcome and "sign-up credits" in welcome
    assert overflow_x(page) == 0 and axe_violations(page) == []
    page.click("nav button:has-text('Log out')")
    page.goto(f"{web_server.url}/app/login")
    assert page.evaluate("document.activeElement.id") == "email"
    # Signing up again with the taken email: the log-in form keeps it, and the password field waits.
    page.goto(f"{web_server.url}/app/signup")
    page.fill("#email", f"new-{scheme}-{viewport['width']}@example.com")
    page.fill("#password", "another password")
    page.click("main button[type=submit]")
    page.wait_for_url("**/app/login?signed_up=1*")
    assert page.input_value("#email") == f"new-{scheme}-{viewport['width']}@example.com"
    assert page.evaluate("document.activeElement.id") == "password"
    assert axe_violations(page) == []
    page.context.close()


@pytest.mark.parametrize(("viewport", "scheme"), LOOKS, ids=LOOK_IDS)
def test_one_money_format_and_no_operator_chores_for_users(
    web_server: LiveServer, browser: Any, viewport: Any, scheme: str
) -> None:
    make_account(web_server, f"user-{scheme}-{viewport['width']}@example.com", usd=5)
    page = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
    page.goto(f"{web_server.url}/docs")
    prices = page.inner_text("main")
    assert "$1.00 in / $2.00 out per 1M tokens" in prices, prices  # not "$1 in / $2 out"
    assert not SCIENTIFIC.search(prices)
    assert "MODELGATE_TEST_UNSET_KEY" not in prices
    page.goto(f"{web_server.url}/docs/models/mock/unconfigured")
    text = page.inner_text("main")
    assert "not set up on this gateway yet" in text and "MODELGATE_TEST_UNSET_KEY" not in text
    assert axe_violations(page) == []
    browser_log_in(page, web_server.url, f"user-{scheme}-{viewport['width']}@example.com")
    page.goto(f"{web_server.url}/app/playground")
    assert "MODELGATE_TEST_UNSET_KEY" not in page.content()
    for path in ("/app/billing", "/app/keys", "/app/playground"):
        page.goto(web_server.url + path)
        text = page.inner_text("main")
        assert not SCIENTIFIC.search(text), path
        for amount in re.findall(r"\$[\d,]+\.\d+", text):  # cents always; no trailing zeros beyond them
            cents = amount.split(".")[1]
            assert len(cents) >= 2 and (len(cents) == 2 or not cents.endswith("0")), (path, amount)
    assert overflow_x(page) == 0
    page.context.close()
    # The operator still sees what to set.
    make_account(web_server, "op2@example.com", operator=True)
    with logged_in(web_server, "op2@example.com") as op:
        assert "MODELGATE_TEST_UNSET_KEY" in op.get("/docs/models/mock/unconfigured").text
