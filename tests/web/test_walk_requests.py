"""Issue 30's walk, request detail: a log row opens to its request id, door, route, attempts, tokens
by category, cost, TTFT, tokens/s and status, for its own account only; the operator's lookup says
"stopped" for a client-stopped reply, not "success 499" (defect 6); a user's scope refusal is no
provider failure in the health figures (defect 10). At desktop (1366 px) and phone (390 px) widths
and in dark mode, axe-core at 0 serious/critical."""

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

BODY = {"model": "echo", "messages": [{"role": "user", "content": "hello there"}]}


def _calls(server: LiveServer, upstream: FakeOpenAI, email: str) -> dict[str, str]:
    """A streamed success, a stopped stream and a scope refusal; their request ids."""
    key = create_key(server, email=email, usd=0, name="detail key", scopes=["model:chat"])
    url = f"{server.url}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {key}"}
    ids: dict[str, str] = {}
    upstream.script(Scripted(text="one two three four five", chunk_delay=0.05))
    with httpx.stream("POST", url, headers=headers, json={**BODY, "stream": True}, timeout=30) as r:
        ids["success"] = r.headers["x-inference-id"]
        r.read()
    upstream.script(Scripted(text=" ".join(f"w{i}" for i in range(40)), chunk_delay=0.1))
    with httpx.stream("POST", url, headers=headers, json={**BODY, "stream": True}, timeout=30) as r:
        ids["stopped"] = r.headers["x-inference-id"]
        for n, _ in enumerate(r.iter_lines()):
            if n > 3:
                break
    embeddings_only = create_key(
        server, email=email, usd=0, name="embeddings only", scopes=["model:embeddings"]
    )
    refused = httpx.post(url, headers={"Authorization": f"Bearer {embeddings_only}"}, json=BODY, timeout=30)
    assert refused.status_code == 403
    ids["scope"] = refused.json()["requestId"]
    return ids


def _logged(server: LiveServer, email: str, request_id: str) -> bool:
    with logged_in(server, email) as c:
        return c.get(f"/app/requests/{request_id}", headers={"Accept": "application/json"}).status_code == 200


@pytest.mark.parametrize(("viewport", "scheme"), LOOKS, ids=LOOK_IDS)
def test_a_log_row_opens_to_its_request_detail(
    web_server: LiveServer,
    openai_upstream: FakeOpenAI,
    browser: Any,
    viewport: Any,
    scheme: str,
    tmp_path: Path,
) -> None:
    make_account(web_server, "detail@example.com", usd=5)
    make_account(web_server, "other@example.com", usd=5)
    ids = _calls(web_server, openai_upstream, "detail@example.com")
    eventually(lambda: _logged(web_server, "detail@example.com", ids["stopped"]), what="the stopped row")
    page = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
    browser_log_in(page, web_server.url, "detail@example.com")
    page.goto(f"{web_server.url}/app/billing#logs")
    page.locator(f"#logs-table a.request-link:has-text('{ids['success']}')").click()
    page.wait_for_url(f"**/app/requests/{ids['success']}")
    rows = {
        th.inner_text(): td.inner_text()
        for th, td in zip(
            page.locator(".request-detail th").all(), page.locator(".request-detail td").all(), strict=True
        )
    }
    assert rows["Request id"] == ids["success"]
    assert rows["Status"].startswith("success") and "HTTP 200" in rows["Status"]
    assert rows["Door"].startswith("chat · streamed")
    assert rows["Route"].startswith("mock/echo → mock") and "mock-model" in rows["Route"]
    assert rows["Attempts"] == "1"
    for category in ("input", "output 5", "reasoning 0", "cache read 0", "cache write 0"):
        assert category in rows["Tokens"], rows["Tokens"]
    assert rows["Cost"].startswith("$0.0000")
    assert rows["Time to first token"].endswith(" ms")
    assert rows["Output speed"].endswith("tokens/s")
    assert "not logged" in page.inner_text("#bodies-note")
    if scheme == "light":  # docs/screenshots with MODELGATE_SCREENSHOTS=1
        name = "request-detail-" + ("phone" if viewport["width"] < 760 else "desktop")
        page.screenshot(path=str(screenshots_dir(tmp_path) / f"{name}.png"), full_page=True)
    assert overflow_x(page) == 0 and axe_violations(page) == []
    # The stopped one, and the refused one.
    page.goto(f"{web_server.url}/app/requests/{ids['stopped']}")
    assert page.inner_text("#detail-status").startswith("stopped")
    assert "499" in page.inner_text("#detail-status") and "success" not in page.inner_text("#detail-status")
    page.goto(f"{web_server.url}/app/requests/{ids['scope']}")
    assert page.inner_text("#detail-status").startswith("error 403")
    assert axe_violations(page) == []
    page.context.close()
    # Never another account's.
    with logged_in(web_server, "other@example.com") as c:
        for rid in ids.values():
            assert c.get(f"/app/requests/{rid}").status_code == 404
            assert c.get(f"/app/requests/{rid}", headers={"Accept": "application/json"}).status_code == 404


@pytest.mark.parametrize(("viewport", "scheme"), LOOKS, ids=LOOK_IDS)
def test_operator_lookup_says_stopped_and_health_ignores_refusals(
    web_server: LiveServer, openai_upstream: FakeOpenAI, browser: Any, viewport: Any, scheme: str
) -> None:
    make_account(web_server, "op@example.com", operator=True, usd=5)
    ids = _calls(web_server, openai_upstream, "op@example.com")
    eventually(lambda: _logged(web_server, "op@example.com", ids["stopped"]), what="the stopped row")
    page = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
    browser_log_in(page, web_server.url, "op@example.com")
    page.goto(f"{web_server.url}/admin/requests?id={ids['stopped']}")
    status = page.inner_text("#lookup-result #detail-status")
    assert status.startswith("stopped") and "success" not in status
    assert overflow_x(page) == 0 and axe_violations(page) == []
    page.goto(f"{web_server.url}/admin/models")
    row = page.locator("#models-table tr[data-model='mock/echo']")
    # The callers' own doing (a reply they stopped, a key without the scope) is no provider failure.
    assert row.locator("td[data-label='Requests']").inner_text() == "1"
    assert row.locator("td[data-label='Success']").inner_text() == "100.0%"
    assert axe_violations(page) == []
    page.context.close()
