"""The operator in a real browser: the first start's one-time link, a password set with the CLI, a
top-up that the user sees in their own billing page, and an account disabled (its key refused on the
next request) and enabled again.

Set ``MODELGATE_SCREENSHOTS=1`` to refresh the console screenshots in docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelgate.accounts.bootstrap import FirstStart, prepare_database
from modelgate.settings import Settings
from tests.conftest import LiveServer
from tests.test_cli import cli_env
from tests.web.conftest import DESKTOP, PHONE, new_page, screenshots_dir

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _first_start(database_url: str) -> FirstStart:
    settings = Settings(database_url=database_url, bootstrap=True)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(asyncio.run, prepare_database(settings)).result()
    assert first is not None
    return first


def _chat(server: LiveServer, key: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "echo", "messages": [{"role": "user", "content": "ping"}]},
        timeout=30,
    )


def _log_in(page: Any, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/app/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("main button[type=submit]")
    page.wait_for_url("**/app/keys")


def test_operator_console_in_the_browser(
    database_url: str, web_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    shots = screenshots_dir(tmp_path)
    url = web_server.url
    first = _first_start(database_url)
    op = new_page(browser)

    def shot(name: str) -> None:
        op.evaluate("window.scrollTo(0, 0)")  # a full-page shot of a scrolled page misplaces the top bar
        op.screenshot(path=str(shots / f"{name}-desktop.png"), full_page=True)
        op.set_viewport_size(PHONE)
        op.screenshot(path=str(shots / f"{name}-phone.png"), full_page=True)
        op.set_viewport_size(DESKTOP)

    # 1. The one-time link signs the admin in (it has no password yet) and asks for one.
    op.goto(f"{url}/app/sign-in/{first.signin_token}")
    op.click("#use-link")
    op.wait_for_url(re.compile(r".*/app/account\?set_password=1$"))
    op.fill("#new-password", "first operator pass")
    op.fill("#confirm-password", "first operator pass")
    op.click("main form button[type=submit]")
    op.wait_for_url(re.compile(r".*/app/account\?saved=1$"))
    op.click("nav a[href='/admin']")
    op.wait_for_url("**/admin/accounts")
    assert "admin@localhost" in op.inner_text("#accounts-table")

    # 2. A password set with the CLI (read from stdin), then a log-in with it.
    done = subprocess.run(
        [sys.executable, "-m", "modelgate.cli", "admin", "set-password", "--email", "admin@localhost"],
        input="cli operator pass\n",
        capture_output=True,
        text=True,
        env=cli_env(database_url),
        timeout=120,
    )
    assert done.returncode == 0 and "cli operator pass" not in done.stdout + done.stderr
    op.click("nav button:has-text('Log out')")
    op.wait_for_url("**/app/login")
    _log_in(op, url, "admin@localhost", "cli operator pass")
    op.goto(f"{url}/admin")
    op.wait_for_url("**/admin/accounts")

    # 3. A new user signs up: $0, and the billing page says how to get credits.
    user = new_page(browser)
    user.goto(f"{url}/app/signup")
    user.fill("#email", "newcomer@example.com")
    user.fill("#password", "newcomer password")
    user.click("main button[type=submit]")
    user.wait_for_url(re.compile(r".*/app/keys\?welcome=1$"))  # signed in at once
    user.goto(f"{url}/app/billing")
    assert user.inner_text("#balance-usd") == "$0.00"
    assert "operator" in user.inner_text("#get-credits")
    user.goto(f"{url}/app/keys")
    user.fill("#key-name", "newcomer key")
    user.click("form.grid-form button[type=submit]")
    key = user.inner_text("#new-key-value").strip()

    # 4. The operator finds them and tops them up with a note: their billing page shows it.
    op.fill("#account-q", "newcomer")
    op.click("form.lookup button[type=submit]")
    op.click("#accounts-table a:has-text('newcomer@example.com')")
    op.wait_for_selector("#top-up-usd")
    op.fill("#top-up-usd", "3")
    op.fill("#top-up-note", "welcome, invoice 42")
    op.click("#top-up button[type=submit]")
    op.click("#confirm-button")
    op.wait_for_selector("#done")
    assert op.inner_text("#account-balance") == "$3.00"
    shot("admin-account")
    user.goto(f"{url}/app/billing")
    assert user.inner_text("#balance-usd") == "$3.00"
    assert "welcome, invoice 42" in user.inner_text("#tx-table")
    assert _chat(web_server, key).status_code == 200

    # 5. Disable the account: its key is refused on the next request; enable: accepted again.
    op.once("dialog", lambda dialog: dialog.accept())
    op.click("#disable-account")
    op.wait_for_selector("#enable-account")
    assert op.inner_text("#account-state") == "disabled"
    refused = _chat(web_server, key)
    assert refused.status_code == 401 and "account is disabled" in refused.text
    user.goto(f"{url}/app/billing")
    user.wait_for_url(re.compile(r".*/app/login\?next="))
    op.click("#enable-account")
    op.wait_for_selector("#disable-account")
    assert _chat(web_server, key).status_code == 200
    assert "account.disable" in op.inner_text("#account-audit")

    # The rest of the console, for the screenshots.
    op.goto(f"{url}/admin/accounts")
    shot("admin-accounts")
    op.goto(f"{url}/admin/models")
    assert "unconfigured" in op.inner_text("#providers-table")
    shot("admin-models")
    op.goto(f"{url}/admin/settings")
    shot("admin-settings")
    user.context.close()
    op.context.close()
