"""End to end in a real headless Chromium (Debian ``chromium`` driven by the ``playwright`` package).

sign up (the form's error first) → log in → create a key (post/redirect/get: a reload leaves one
key) → copy it → call the API (200) → disable it in the UI (401) → enable → the playground streams a
reply rendered as Markdown → billing shows the request (origin: playground) in the chart and the
logs, and a failed request with its error → the docs page of google/gemini-2.5-pro shows its schema
and samples, and its Python sample, with the model swapped for the mock one, runs against the
server. ``/api-docs`` renders with every request off this server blocked.

Set ``MODELGATE_SCREENSHOTS=1`` to refresh docs/screenshots/ (otherwise they go to a temp folder).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.web.conftest import DESKTOP, PHONE, new_page, screenshots_dir
from tests.web.helpers import make_account, with_db

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _chat(server: LiveServer, key: str, model: str = "echo") -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": "ping"}]},
        timeout=30,
    )


def _top_up(server: LiveServer, email: str, usd: float) -> None:
    from sqlalchemy import select

    from modelgate.accounts.service import top_up
    from modelgate.store.schema import Account

    async def work(conn: Any) -> None:
        account_id = (await conn.execute(select(Account.id).where(Account.email == email))).scalar_one()
        await top_up(conn, account_id=account_id, usd=usd)

    with_db(server, work)


def test_browser_flow(
    web_server: LiveServer, openai_upstream: FakeOpenAI, browser: Any, tmp_path: Path
) -> None:
    shots = screenshots_dir(tmp_path)
    url = web_server.url
    page = new_page(browser)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)

    def shot(name: str, *, phone: bool = False) -> None:
        page.evaluate("window.scrollTo(0, 0)")  # a full-page shot of a scrolled page misplaces the top bar
        page.screenshot(path=str(shots / f"{name}-desktop.png"), full_page=True)
        if phone:
            page.set_viewport_size(PHONE)
            page.screenshot(path=str(shots / f"{name}-phone.png"), full_page=True)
            page.set_viewport_size(DESKTOP)

    # The landing page, then sign up (with one form error first) and log in.
    page.goto(f"{url}/")
    page.wait_for_selector("a[href='/app/signup']")
    shot("landing", phone=True)
    page.goto(f"{url}/app/signup")
    page.fill("#email", "browser@example.com")
    page.fill("#password", "short")
    page.click("main button[type=submit]")
    assert "at least 8 characters" in page.inner_text("#password-error")
    shot("signup", phone=True)
    page.fill("#password", "a long enough password")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{url}/app/keys?welcome=1")  # signed in at once, and welcomed
    assert page.is_visible("#welcome")
    _top_up(web_server, "browser@example.com", 5)

    # Create a key: the answer is a redirect, so a reload shows it no more and creates nothing.
    page.fill("#key-name", "e2e key")
    page.click("form.grid-form button[type=submit]")
    page.wait_for_selector("#new-key-value")
    assert page.url.startswith(f"{url}/app/keys")
    shown = page.inner_text("#new-key-value").strip()
    page.click("[data-copy='#new-key-value']")
    page.wait_for_selector("text=Copied!")
    key = page.evaluate("navigator.clipboard.readText()")
    assert key == shown and len(key) == 32
    shot("keys", phone=True)
    page.reload()
    page.wait_for_selector("#keys-table")
    assert page.locator("#new-key-value").count() == 0
    assert page.locator("#keys-table tbody tr").count() == 1
    assert _chat(web_server, key).status_code == 200

    # Disable it in the UI: the very next request is refused. Enable again.
    row = f"tr[data-key-prefix='{key[:8]}']"
    page.click(f"{row} button.switch")
    page.wait_for_selector(f"{row} button.switch[aria-checked=false]")
    assert page.is_visible(f"{row} [data-state=disabled]")
    r = _chat(web_server, key)
    assert r.status_code == 401 and "disabled" in r.text
    page.click(f"{row} button.switch")
    page.wait_for_selector(f"{row} button.switch[aria-checked=true]")
    assert _chat(web_server, key).status_code == 200

    # A failed request (the upstream answers 500) is in the logs with its error and request id.
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "boom"}}))
    failed = _chat(web_server, key)
    assert failed.status_code >= 500
    failed_id = failed.json()["requestId"]

    # Playground: a streamed reply rendered as Markdown, with its finish reason, usage and cost.
    page.goto(f"{url}/app/playground?model=mock/echo")
    assert page.input_value("#pg-max-tokens") == "512"
    assert "unavailable" in page.inner_text("#pg-model option[value='mock/unconfigured']")
    assert page.inner_text("#pg-balance").startswith("$")
    page.fill("#pg-system", "You are terse.")
    page.fill("#pg-input", "Hello **bold** and `code` <b>not bold</b>")
    page.press("#pg-input", "Enter")  # Enter sends
    meta = page.wait_for_selector(".msg.assistant .reply-meta")
    assert meta is not None
    reply = page.locator(".msg.assistant .content")
    assert reply.locator("strong").inner_text() == "bold"
    assert reply.locator("code").inner_text() == "code"
    assert "<b>not bold</b>" in reply.inner_text()  # shown as text, not markup
    assert reply.locator("b").count() == 0
    assert "finish_reason: stop" in meta.inner_text()
    credits = page.inner_text(".msg.assistant [data-field=credits]")
    assert int(credits.split(": ")[1]) > 0
    assert "USD: $" in meta.inner_text() and "e-" not in meta.inner_text()
    page.click("#view-code")
    python_code = page.inner_text("#code-python")
    assert "requests.post(" in python_code and '"model": "mock/echo"' in python_code
    assert '"stream_options"' in python_code and "<YOUR_MODELGATE_KEY>" in python_code
    page.click("[role=tab][data-tab=curl]")
    assert "curl -N" in page.inner_text("#code-curl")
    shot("playground-code")
    page.click("#code-close")
    # A reasoning model: the effort picker appears, with the levels this server accepts.
    page.select_option("#pg-model", "mock/thinker")
    assert page.is_visible("#pg-effort")
    page.select_option("#pg-model", "mock/echo")
    shot("playground", phone=True)

    # Billing: the chart and the logs show the playground request, and the failed one.
    page.goto(f"{url}/app/billing?origin=playground")
    assert page.inner_text("#logs-table .origin") == "playground"
    assert page.locator("#usage-chart .chart-wide svg rect").count() >= 1
    assert "mock/echo" in page.inner_text("#usage-per-model")
    page.goto(f"{url}/app/billing")
    failed_row = page.locator("#logs-table tr.failed")
    assert failed_row.count() == 1 and failed_id in failed_row.inner_text()
    page.fill("#request-id", failed_id)
    page.click("form.lookup button[type=submit]")
    page.wait_for_url(re.compile(r".*request_id="))
    assert page.locator("#logs-table tbody tr").count() == 1
    page.goto(f"{url}/app/billing?metric=usd")
    assert "$" in page.text_content("#usage-chart .chart-wide svg")
    shot("billing", phone=True)

    # Docs: index, then the gemini page with its schema and samples.
    page.goto(f"{url}/docs")
    shot("docs-index", phone=True)
    page.goto(f"{url}/docs/models/google/gemini-2.5-pro")
    assert "google/gemini-2.5-pro" in page.inner_text(".hint")
    schema = page.inner_text("#request-schema")
    for field in ("model", "messages", "max_tokens", "temperature", "reasoning_effort"):
        assert field in schema
    assert page.is_visible("#reasoning-warning")
    sample = page.inner_text("#sample-python")
    assert f"{url}/v1/chat/completions" in sample and '"model":"google/gemini-2.5-pro"' in sample
    page.click("[role=tab][data-tab=javascript]")
    assert "fetch(" in page.inner_text("#sample-javascript")
    page.click("[role=tab][data-tab=python]")
    shot("docs-model", phone=True)
    page.context.close()

    script = tmp_path / "sample.py"
    script.write_text(
        sample.replace("google/gemini-2.5-pro", "mock/thinker").replace("<YOUR_MODELGATE_KEY>", key)
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["model"] == "mock/thinker" and data["choices"][0]["message"]["content"]


def test_api_docs_render_with_the_network_off(web_server: LiveServer, browser: Any, tmp_path: Path) -> None:
    """Nothing from a CDN: every request that leaves this server is blocked, the page still renders."""
    page = new_page(browser)
    outside: list[str] = []

    def gate(route: Any) -> None:
        if route.request.url.startswith(web_server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.context.route("**/*", gate)
    page.goto(f"{web_server.url}/api-docs")
    page.wait_for_selector("#api-reference .operation")
    assert page.locator(".operation").count() >= 10
    assert "/v1/chat/completions" in page.inner_text("#model-endpoints")
    assert page.locator("link[rel=stylesheet]").evaluate("l => l.sheet.cssRules.length") > 0
    assert outside == []
    page.screenshot(path=str(screenshots_dir(tmp_path) / "api-docs-desktop.png"), full_page=False)
    page.context.close()


def test_reloading_after_creating_a_key_leaves_one_key(web_server: LiveServer, browser: Any) -> None:
    make_account(web_server, "reload@example.com")
    page = new_page(browser)
    page.goto(f"{web_server.url}/app/login")
    page.fill("#email", "reload@example.com")
    page.fill("#password", "a good password")
    page.click("main button[type=submit]")
    page.wait_for_url("**/app/keys")
    page.fill("#key-name", "once")
    page.click("form.grid-form button[type=submit]")
    page.wait_for_selector("#new-key-value")
    for _ in range(2):
        page.reload()  # a re-submitted POST would create a second key here
        page.wait_for_selector("#keys-table")
    assert page.locator("#keys-table tbody tr").count() == 1
    page.context.close()
