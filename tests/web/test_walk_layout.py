"""Issue 30's walk, layout: a long code line scrolls inside its block instead of widening the
playground (defect 1); the request-log table shows every column at 1366 px, whole statuses, and
error messages that wrap between words (defect 5); on phones the console's model and provider
cards keep their values inside, the playground's model picker comes before the transcript, and the
nav never leaves "Log out" alone on a line (defect 8). At desktop and phone widths and in dark
mode, axe-core at 0 serious/critical."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.web.conftest import LOOK_IDS, LOOKS, PHONE, WIDE, new_page
from tests.web.helpers import (
    AXE,
    axe_violations,
    browser_log_in,
    create_key,
    eventually,
    make_account,
    overflow_x,
)

pytestmark = [
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run `make axe` (npm ci)"),
]

LONG_LINE = "value = " + " + ".join(f"compute_something_long({i})" for i in range(40))


def _requests_of_every_kind(server: LiveServer, upstream: FakeOpenAI, email: str) -> None:
    """A success, an upstream error, a spending-limit refusal (a long message), a stopped stream,
    a scope refusal."""
    key = create_key(server, email=email, usd=0, name="walk key", scopes=["model:chat"])
    headers = {"Authorization": f"Bearer {key}"}
    url = f"{server.url}/v1/chat/completions"
    body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(url, headers=headers, json=body, timeout=30).status_code == 200
    upstream.script(Scripted(status=500, body={"error": {"message": "boom"}}))
    assert httpx.post(url, headers=headers, json=body, timeout=30).status_code >= 500
    tiny = create_key(server, email=email, usd=0, name="tiny limit", limit_credits=2, limit_retention="week")
    limited = httpx.post(url, headers={"Authorization": f"Bearer {tiny}"}, json=body, timeout=30)
    assert limited.status_code == 403, limited.text  # a long error message
    upstream.script(Scripted(text=" ".join(f"w{i}" for i in range(60)), chunk_delay=0.1))
    with httpx.stream("POST", url, headers=headers, json={**body, "stream": True}, timeout=30) as r:
        for n, _ in enumerate(r.iter_lines()):
            if n > 3:
                break  # the client stops reading and closes the stream
    other = create_key(server, email=email, usd=0, name="embeddings only", scopes=["model:embeddings"])
    scope = httpx.post(url, headers={"Authorization": f"Bearer {other}"}, json=body, timeout=30)
    assert scope.status_code == 403, scope.text


@pytest.mark.parametrize(("viewport", "scheme"), LOOKS, ids=LOOK_IDS)
def test_long_code_scrolls_inside_its_block(
    web_server: LiveServer, openai_upstream: FakeOpenAI, browser: Any, viewport: Any, scheme: str
) -> None:
    make_account(web_server, "code@example.com", usd=5)
    page = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
    browser_log_in(page, web_server.url, "code@example.com")
    page.goto(f"{web_server.url}/app/playground?model=mock/echo")
    openai_upstream.script(Scripted(text=f"Here:\n\n```python\n{LONG_LINE}\n```\n"))
    page.fill("#pg-input", "long code please")
    page.keyboard.press("Enter")
    page.wait_for_selector(".msg.assistant .reply-meta")
    assert overflow_x(page) == 0
    pre = page.locator(".msg.assistant pre")
    assert pre.evaluate("(p) => p.scrollWidth > p.clientWidth + 50")  # it scrolls inside itself
    assert pre.evaluate("(p) => p.getBoundingClientRect().right <= window.innerWidth")
    assert axe_violations(page) == []
    page.context.close()


@pytest.mark.parametrize(("viewport", "scheme"), LOOKS, ids=LOOK_IDS)
def test_the_request_log_shows_every_column_and_whole_statuses(
    web_server: LiveServer, openai_upstream: FakeOpenAI, browser: Any, viewport: Any, scheme: str
) -> None:
    make_account(web_server, "logs@example.com", usd=5)
    _requests_of_every_kind(web_server, openai_upstream, "logs@example.com")
    page = new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)
    browser_log_in(page, web_server.url, "logs@example.com")

    def all_rows() -> bool:
        page.goto(f"{web_server.url}/app/billing")
        return page.locator("#logs-table tbody tr").count() >= 5

    eventually(all_rows, what="five log rows (the stopped one is written once the upstream is drained)")
    assert overflow_x(page) == 0
    table = page.locator("#logs-table")
    if viewport["width"] > 760:  # every column header inside the window, nothing to scroll to
        for header in ("Latency", "Key", "Request"):
            box = table.locator("th", has_text=header).bounding_box()
            assert box is not None and box["x"] + box["width"] <= viewport["width"], header
        wrap = page.locator("#logs .table-wrap")
        assert wrap.evaluate("(w) => w.scrollWidth <= w.clientWidth + 1")
    labels = [t.strip() for t in table.locator("[data-status]").all_inner_texts()]
    assert "stopped" in labels and "success" in labels and any(t.startswith("error") for t in labels), labels
    assert not any("499" in t for t in labels)
    for tag in table.locator(".tag").all():  # whole, never cut
        assert tag.evaluate(
            "(t) => t.scrollWidth <= t.clientWidth + 1"
            " && t.getBoundingClientRect().right <= window.innerWidth"
        )
    error = table.locator(".error-text", has_text="Spending limit reached").first
    # Wrapped between words: every line ends at a word boundary (no word is split across lines).
    words = error.evaluate(
        """(el) => {
          const range = document.createRange(); const text = el.firstChild; const split = [];
          let top = null;
          for (let i = 0; i < text.length; i++) {
            range.setStart(text, i); range.setEnd(text, i + 1);
            const r = range.getClientRects()[0]; if (!r) continue;
            const inWord = !/\\s/.test(text.data[i - 1]) && !/\\s/.test(text.data[i]);
            if (top !== null && r.top > top + 2 && inWord) split.push(i);
            top = r.top;
          }
          return split;
        }"""
    )
    assert words == [], f"words split at {words}"
    assert axe_violations(page) == []
    page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_phone_console_cards_playground_picker_and_nav(
    web_server: LiveServer, openai_upstream: FakeOpenAI, browser: Any, scheme: str
) -> None:
    make_account(web_server, "phone-op@example.com", operator=True, usd=5)
    _requests_of_every_kind(web_server, openai_upstream, "phone-op@example.com")
    page = new_page(browser, viewport=PHONE, color_scheme=scheme, bypass_csp=True)
    browser_log_in(page, web_server.url, "phone-op@example.com")
    page.goto(f"{web_server.url}/admin/models")
    assert overflow_x(page) == 0
    for cell in page.locator("#providers-table td, #models-table td").all():
        assert cell.evaluate("(c) => c.scrollWidth <= c.clientWidth + 1"), cell.inner_text()
        assert cell.evaluate("(c) => c.getBoundingClientRect().right <= window.innerWidth + 0.5"), (
            cell.inner_text()
        )
    for wrap in page.locator(".table-wrap").all():
        assert wrap.evaluate("(w) => w.scrollWidth <= w.clientWidth + 1")
    assert axe_violations(page) == []
    # The nav: "Log out" shares its line with other items.
    logout = page.locator(".nav button", has_text="Log out").bounding_box()
    same_line = [
        b
        for b in (a.bounding_box() for a in page.locator(".nav a").all())
        if b and abs(b["y"] - logout["y"]) < 8
    ]  # type: ignore[index]
    assert same_line, "Log out is alone on its line"
    # A user's nav too (no Console link: six items).
    make_account(web_server, "phone-user@example.com")
    user = new_page(browser, viewport=PHONE, color_scheme=scheme)
    browser_log_in(user, web_server.url, "phone-user@example.com")
    user.goto(f"{web_server.url}/app/playground")  # the longest current item, in bold
    out = user.locator(".nav button", has_text="Log out").bounding_box()
    beside = [
        b
        for b in (a.bounding_box() for a in user.locator(".nav a").all())
        if b and abs(b["y"] - out["y"]) < 8
    ]  # type: ignore[index]
    assert beside, "Log out is alone on its line"
    user.context.close()
    # The playground: the model picker comes before the conversation.
    page.goto(f"{web_server.url}/app/playground")
    picker = page.locator("#pg-model").bounding_box()
    chat = page.locator(".pg-main").bounding_box()
    assert picker and chat and picker["y"] < chat["y"]
    assert not page.locator("#pg-system").is_visible()  # the other settings fold away on phones
    page.locator("#pg-more summary").click()
    assert page.locator("#pg-system").is_visible()
    assert overflow_x(page) == 0
    assert axe_violations(page) == []
    page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_desktop_console_cards_playground_picker_and_nav(
    web_server: LiveServer, openai_upstream: FakeOpenAI, browser: Any, scheme: str
) -> None:
    """Defect 8's pages at the desktop width, light and dark (the phone test above has the phone
    width): the console's model and provider tables keep every value inside the window, the nav keeps
    "Log out" beside the other items, and the playground shows its picker and settings."""
    make_account(web_server, "wide-op@example.com", operator=True, usd=5)
    _requests_of_every_kind(web_server, openai_upstream, "wide-op@example.com")
    page = new_page(browser, viewport=WIDE, color_scheme=scheme, bypass_csp=True)
    browser_log_in(page, web_server.url, "wide-op@example.com")
    page.goto(f"{web_server.url}/admin/models")
    assert overflow_x(page) == 0
    for cell in page.locator("#providers-table td, #models-table td").all():
        assert cell.evaluate("(c) => c.getBoundingClientRect().right <= window.innerWidth + 0.5"), (
            cell.inner_text()
        )
    assert axe_violations(page) == []
    logout = page.locator(".nav button", has_text="Log out").bounding_box()
    beside = [
        b
        for b in (a.bounding_box() for a in page.locator(".nav a").all())
        if b and abs(b["y"] - logout["y"]) < 8
    ]  # type: ignore[index]
    assert beside, "Log out is alone on its line"
    page.goto(f"{web_server.url}/app/playground")
    assert page.locator("#pg-model").is_visible()
    assert page.locator("#pg-system").is_visible()  # nothing folds away at this width
    assert overflow_x(page) == 0
    assert axe_violations(page) == []
    page.context.close()
