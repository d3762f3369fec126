"""The operator's new console flows in Debian's Chromium, at desktop and phone widths and in the
dark colour scheme, each page checked with axe-core: a password-reset link made on the console for a
user who lost theirs (no SMTP needed; the link works once), a top-up of 5.555 USD confirmed first and
kept exact ($5.555 in the audit log, 11,110,000 credits), a negative correction that needs its reason,
usage and spend across all accounts, and the rule that every account must use two-factor sign-in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelgate.accounts import totp
from tests.conftest import LiveServer
from tests.web.conftest import DESKTOP, screenshots_dir
from tests.web.helpers import balance, create_key, make_account
from tests.web.selfservice import LOOKS, assert_accessible, log_in, log_out, look

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _chat(server: LiveServer, key: str) -> None:
    body = {"model": "echo", "messages": [{"role": "user", "content": "hello"}]}
    r = httpx.post(
        f"{server.url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(("viewport", "scheme"), LOOKS)
def test_reset_link_exact_top_up_correction_and_usage(
    web_server: LiveServer, browser: Any, viewport: dict[str, int], scheme: str, tmp_path: Path
) -> None:
    url = web_server.url
    shots = screenshots_dir(tmp_path)

    def shot(page: Any, name: str) -> None:  # docs/screenshots with MODELGATE_SCREENSHOTS=1
        if viewport == DESKTOP and scheme == "light":
            page.screenshot(path=str(shots / f"{name}-desktop.png"), full_page=True)

    make_account(web_server, "op@example.com", operator=True)
    user_id = make_account(web_server, "lost@example.com", "forgotten password")
    _chat(web_server, create_key(web_server, email="spender@example.com", usd=2))
    op = look(browser, viewport, scheme)
    log_in(op, url, "op@example.com", "a good password")
    op.wait_for_url("**/app/keys")

    # A reset link for a user who lost their password (this gateway has no SMTP).
    op.goto(f"{url}/admin/accounts/{user_id}")
    assert op.locator("#mail-reset-link").count() == 0
    assert_accessible(op, "account page")
    op.click("#make-reset-link")
    op.wait_for_selector("#reset-link")
    assert_accessible(op, "reset link")
    link = op.input_value("#reset-link")
    assert re.match(rf"{re.escape(url)}/app/reset/[\w-]{{40,}}$", link)
    user = look(browser, viewport, scheme)
    user.goto(link)
    user.fill("#new-password", "a fresh password")
    user.fill("#confirm-password", "a fresh password")
    user.click("#save-new-password")
    user.wait_for_selector("#password-reset")
    log_in(user, url, "lost@example.com", "a fresh password")
    user.wait_for_url("**/app/keys")
    user.goto(link)
    assert "not valid" in user.inner_text("main")

    # A top-up of 5.555 USD: confirmed first, credited exactly, shown exactly.
    op.goto(f"{url}/admin/accounts/{user_id}")
    op.fill("#top-up-usd", "5.555")
    op.fill("#top-up-note", "invoice 7")
    op.click("#review-top-up")
    op.wait_for_selector("#confirm-top-up")
    assert_accessible(op, "top-up confirmation")
    shot(op, "admin-top-up-confirm")
    assert op.inner_text("#confirm-amount") == "$5.555"
    assert op.inner_text("#confirm-after").startswith("$5.555")
    assert balance(web_server, "lost@example.com") == 0  # nothing until confirmed
    op.click("#confirm-button")
    op.wait_for_selector("#done")
    assert balance(web_server, "lost@example.com") == 11_110_000
    assert op.inner_text("#account-balance") == "$5.555"
    assert "$5.555 — invoice 7" in op.inner_text("#account-audit")

    # A correction: negative, refused without a reason, then confirmed.
    op.fill("#top-up-usd", "-1.25")
    op.click("#review-top-up")
    op.wait_for_selector("#note-error")
    assert_accessible(op, "correction without a reason")
    op.fill("#top-up-usd", "-1.25")
    op.fill("#top-up-note", "double-charged invoice 7")
    op.click("#review-top-up")
    op.wait_for_selector("#confirm-top-up")
    assert op.inner_text("#confirm-amount") == "-$1.25"
    assert op.inner_text("#confirm-after").startswith("$4.305")
    assert_accessible(op, "correction confirmation")
    shot(op, "admin-correction-confirm")
    op.click("#confirm-button")
    op.wait_for_selector("#done")
    assert balance(web_server, "lost@example.com") == 11_110_000 - 2_500_000
    audit = op.inner_text("#account-audit")
    assert "account.correction" in audit and "-$1.25 — double-charged invoice 7" in audit
    user.goto(f"{url}/app/billing")
    assert "double-charged invoice 7" in user.inner_text("main")

    # Usage and spend across all accounts.
    op.goto(f"{url}/admin/usage")
    op.wait_for_selector("#usage-table")
    assert_accessible(op, "usage")
    op.goto(f"{url}/admin/catalog")
    assert_accessible(op, "catalogue")
    shot(op, "admin-catalog")
    op.goto(f"{url}/admin/usage")
    shot(op, "admin-usage")
    assert "spender@example.com" in op.inner_text("#usage-table")
    assert op.locator("#usage-chart svg").count() >= 1
    assert op.inner_text("#usage-requests") == "1"
    op.click("a[href='/admin/usage?days=7']")
    op.wait_for_selector("#usage-table")
    op.context.close()
    user.context.close()


@pytest.mark.parametrize(("viewport", "scheme"), LOOKS)
def test_the_operator_requires_two_factor_sign_in(
    web_server: LiveServer, browser: Any, viewport: dict[str, int], scheme: str
) -> None:
    url = web_server.url
    make_account(web_server, "op@example.com", operator=True)
    make_account(web_server, "user@example.com")
    op = look(browser, viewport, scheme)
    log_in(op, url, "op@example.com", "a good password")
    op.wait_for_url("**/app/keys")
    op.goto(f"{url}/admin/settings")
    assert op.inner_text("#two-factor-rule") == "optional"
    op.click("#toggle-two-factor-rule")
    # The operator is held to it too: sent to set it up before anything else.
    op.wait_for_url(re.compile(r".*/app/account/two-factor\?required=1"))
    assert_accessible(op, "two-factor required")
    secret = op.inner_text("#totp-secret").replace(" ", "")
    op.fill("#totp-code", totp.totp(secret))
    op.click("#enable-two-factor")
    op.wait_for_selector("#recovery-codes")
    op.goto(f"{url}/admin/settings")
    assert op.inner_text("#two-factor-rule") == "required"
    op.goto(f"{url}/admin/audit")
    assert "two-factor sign-in required" in op.inner_text("main")

    user = look(browser, viewport, scheme)
    log_in(user, url, "user@example.com", "a good password")
    user.wait_for_url(re.compile(r".*/app/account/two-factor\?required=1"))
    user.goto(f"{url}/app/billing")
    assert "/app/account/two-factor" in user.url  # every page leads to enrolment
    assert user.locator("#disable-two-factor").count() == 0
    log_out(user)  # logging out still works
    op.context.close()
    user.context.close()
