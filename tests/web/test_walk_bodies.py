"""Issue 30's walk, body logging in the browser: off (the default), a request's detail shows no
prompt or answer and says how body logging is turned on; the operator turns it on in the console;
a chat request's prompt and reply are then on its detail page; another account opening that request
id gets "not found". At desktop (1366 px) and phone (390 px) widths and in dark mode, axe-core at 0
serious/critical, nothing wider than the window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.web.conftest import LOOK_IDS, LOOKS, new_page, screenshots_dir
from tests.web.helpers import (
    AXE,
    axe_violations,
    browser_log_in,
    create_key,
    eventually,
    logged_in,
    make_account,
    overflow_x,
)

pytestmark = [
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run `make axe` (npm ci)"),
]

PROMPT = "Name three rivers of France, please."
REPLY = "The Seine, the Loire and the Rhone."


def _chat(server: LiveServer, key: str, upstream: FakeOpenAI) -> str:
    upstream.script(Scripted(text=REPLY))
    r = httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "echo", "messages": [{"role": "user", "content": PROMPT}]},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.headers["x-inference-id"]


def _row(server: LiveServer, email: str, rid: str) -> dict[str, Any] | None:
    with logged_in(server, email) as c:
        r = c.get(f"/app/requests/{rid}", headers={"Accept": "application/json"})
        return r.json()["data"][0] if r.status_code == 200 else None


@pytest.mark.parametrize(("viewport", "scheme"), LOOKS, ids=LOOK_IDS)
def test_body_logging_off_then_on_in_the_browser(
    web_server: LiveServer,
    openai_upstream: FakeOpenAI,
    browser: Any,
    viewport: Any,
    scheme: str,
    tmp_path: Path,
) -> None:
    make_account(web_server, "op@example.com", operator=True, usd=5)
    make_account(web_server, "user@example.com", usd=5)
    make_account(web_server, "other@example.com", usd=5)
    key = create_key(web_server, email="user@example.com", usd=0, name="bodies key")
    before = _chat(web_server, key, openai_upstream)
    eventually(lambda: _row(web_server, "user@example.com", before), what="the first row")

    # Off (the default): no bodies, and the page says how they are turned on.
    page = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
    browser_log_in(page, web_server.url, "user@example.com")
    page.goto(f"{web_server.url}/app/requests/{before}")
    note = page.inner_text("#bodies-note")
    assert "not logged" in note and "Body logging" in note
    assert page.locator(".request-bodies").count() == 0 and PROMPT not in page.content()
    assert overflow_x(page) == 0 and axe_violations(page) == []

    # The operator turns it on in the console.
    op = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
    browser_log_in(op, web_server.url, "op@example.com")
    op.goto(f"{web_server.url}/admin/settings")
    assert op.inner_text("#body-logging-state") == "off"
    op.check("#body-logging-on")
    op.fill("#body-retention", "14")
    op.click("#save-body-logging")
    op.wait_for_url("**/admin/settings?saved=1*")
    assert op.inner_text("#body-logging-state") == "on"
    assert op.input_value("#body-retention") == "14"
    if scheme == "light":
        name = "console-body-logging-" + ("phone" if viewport["width"] < 760 else "desktop")
        op.evaluate("window.scrollTo(0, 0)")  # the sticky nav at the top, not over the saved card
        op.screenshot(path=str(screenshots_dir(tmp_path) / f"{name}.png"), full_page=True)
    assert overflow_x(op) == 0 and axe_violations(op) == []

    # On: a chat request's prompt and reply are on its detail page.
    after = _chat(web_server, key, openai_upstream)
    eventually(
        lambda: (row := _row(web_server, "user@example.com", after)) is not None and row["body"] is not None,
        what="the stored bodies",
    )
    page.goto(f"{web_server.url}/app/requests/{after}")
    assert PROMPT in page.inner_text("#body-request")
    assert REPLY in page.inner_text("#body-response")
    # Every figure inside the card: the table wraps on phones instead of scrolling sideways.
    assert page.locator(".request-detail").evaluate(
        "(t) => t.parentElement.scrollWidth <= t.parentElement.clientWidth + 1"
    )
    assert page.locator("#bodies-note").count() == 0
    if scheme == "light":
        name = "request-detail-bodies-" + ("phone" if viewport["width"] < 760 else "desktop")
        page.screenshot(path=str(screenshots_dir(tmp_path) / f"{name}.png"), full_page=True)
    assert overflow_x(page) == 0 and axe_violations(page) == []
    # The request made while it was off still has none, and says so for an instance with it on.
    page.goto(f"{web_server.url}/app/requests/{before}")
    assert "no prompt or answer is stored" in page.inner_text("#bodies-note")
    page.context.close()

    # The operator's lookup shows them too.
    op.goto(f"{web_server.url}/admin/requests?id={after}")
    assert REPLY in op.inner_text("#lookup-result #body-response")
    assert overflow_x(op) == 0 and axe_violations(op) == []
    op.context.close()

    # Another account: not found, and nothing of the bodies on the page.
    other = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
    browser_log_in(other, web_server.url, "other@example.com")
    answer = other.goto(f"{web_server.url}/app/requests/{after}")
    assert answer is not None and answer.status == 404
    assert "No request with the id" in other.inner_text("#detail-none")
    assert PROMPT not in other.content() and REPLY not in other.content()
    assert axe_violations(other) == []
    other.context.close()
