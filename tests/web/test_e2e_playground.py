"""The playground in a real browser: Stop (billed exactly what the model produced), Clear chat
during a stream (nothing leaks into the next conversation), Markdown with highlighted, copyable code,
Enter / Shift+Enter, history kept in the browser, two models side by side, and the out-of-credits
message that links to the billing page."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema import Account, Hold, RequestLog
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.web.conftest import new_page
from tests.web.helpers import eventually, make_account, with_db

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SLOW_WORDS = 40


def _logged_in_page(browser: Any, server: LiveServer, email: str) -> Any:
    page = new_page(browser)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.goto(f"{server.url}/app/login")
    page.fill("#email", email)
    page.fill("#password", "a good password")
    page.click("main button[type=submit]")
    page.wait_for_url("**/app/keys")
    return page


def _rows(server: LiveServer, email: str) -> list[dict[str, Any]]:
    async def work(conn: AsyncConnection) -> list[dict[str, Any]]:
        account = (await conn.execute(select(Account.id).where(Account.email == email))).scalar_one()
        rows = await conn.execute(
            select(RequestLog).where(RequestLog.account_id == account).order_by(RequestLog.created_at)
        )
        return [dict(r._mapping) for r in rows]

    return with_db(server, work)


def _balance_and_holds(server: LiveServer, email: str) -> tuple[int, int]:
    async def work(conn: AsyncConnection) -> tuple[int, int]:
        account = (
            await conn.execute(select(Account.id, Account.balance_credits).where(Account.email == email))
        ).one()
        holds = (await conn.execute(select(func.count()).where(Hold.account_id == account[0]))).scalar_one()
        return int(account[1]), int(holds)

    return with_db(server, work)


def _slow_reply() -> Scripted:
    return Scripted(text=" ".join(f"w{i}" for i in range(SLOW_WORDS)), chunk_delay=0.2)


def _words_shown(page: Any) -> int:
    return len(page.inner_text(".msg.assistant .content").split())


def test_stop_bills_exactly_what_was_produced(
    web_server: LiveServer, openai_upstream: FakeOpenAI, browser: Any
) -> None:
    make_account(web_server, "stop@example.com", usd=5)
    page = _logged_in_page(browser, web_server, "stop@example.com")
    page.goto(f"{web_server.url}/app/playground?model=mock/echo")
    assert page.is_visible("#pg-send") and not page.is_visible("#pg-stop")
    before, _ = _balance_and_holds(web_server, "stop@example.com")
    openai_upstream.script(_slow_reply())
    page.fill("#pg-input", "count for me")
    page.click("#pg-send")
    page.wait_for_selector("#pg-stop", state="visible")
    assert not page.is_visible("#pg-send")
    eventually(lambda: _words_shown(page) > 4, what="a few words of the reply")
    page.click("#pg-stop")
    page.wait_for_selector("#pg-send", state="visible")
    assert not page.is_visible("#pg-stop")
    meta = page.wait_for_selector(".msg.assistant .reply-meta")
    assert meta is not None and "stopped" in meta.inner_text()
    shown = _words_shown(page)
    assert 3 <= shown < SLOW_WORDS  # stopped midway

    # The server settles the abandoned stream for what the upstream produced: every token of it.
    row = eventually(
        lambda: next((r for r in _rows(web_server, "stop@example.com") if r["http_status"] == 499), None),
        what="the stopped request's log row",
    )
    assert row["origin"] == "playground" and row["stream"]
    assert row["completion_tokens"] == SLOW_WORDS  # what the fake upstream produced, not what was shown
    from modelgate.catalog.models import Pricing

    price = Pricing(input_usd_per_mtok=1.0, output_usd_per_mtok=2.0)
    assert row["credits"] == price.credits(prompt_tokens=row["prompt_tokens"], completion_tokens=SLOW_WORDS)
    after, holds = eventually(
        lambda: (lambda b: b if b[1] == 0 else None)(_balance_and_holds(web_server, "stop@example.com")),
        what="the hold to be settled",
    )
    assert before - after == row["credits"] and holds == 0
    page.context.close()


def test_clear_during_a_stream_and_keyboard(
    web_server: LiveServer, openai_upstream: FakeOpenAI, browser: Any
) -> None:
    make_account(web_server, "clear@example.com", usd=5)
    page = _logged_in_page(browser, web_server, "clear@example.com")
    page.goto(f"{web_server.url}/app/playground?model=mock/echo")
    # Shift+Enter adds a line, Enter sends.
    page.click("#pg-input")
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    assert page.input_value("#pg-input") == "first line\nsecond line"
    assert page.locator(".msg").count() == 0
    page.fill("#pg-input", "")
    openai_upstream.script(_slow_reply())
    page.fill("#pg-input", "a long answer please")
    page.keyboard.press("Enter")
    eventually(lambda: _words_shown(page) > 3, what="a few words of the reply")
    page.click("#clear-chat")
    assert page.locator(".msg").count() == 0 and page.is_visible("#pg-send")
    # The abandoned reply never comes back into the page: wait for the server to settle it.
    eventually(
        lambda: any(r["http_status"] == 499 for r in _rows(web_server, "clear@example.com")),
        what="the cleared request to be settled",
    )
    assert page.locator(".msg").count() == 0
    page.fill("#pg-input", "fresh start")
    page.keyboard.press("Enter")
    page.wait_for_selector(".msg.assistant .reply-meta")
    assert page.locator(".msg").count() == 2
    sent = openai_upstream.requests[-1]["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == ["fresh start"]
    # Esc stops a stream too.
    openai_upstream.script(_slow_reply())
    page.fill("#pg-input", "another long one")
    page.keyboard.press("Enter")
    page.wait_for_selector("#pg-stop:not([hidden])")
    page.keyboard.press("Escape")
    page.wait_for_selector("#pg-send:not([hidden])")
    assert "stopped" in page.locator(".msg.assistant .reply-meta").last.inner_text()
    page.context.close()


def test_markdown_code_copy_history_and_compare(
    web_server: LiveServer, openai_upstream: FakeOpenAI, browser: Any
) -> None:
    make_account(web_server, "md@example.com", usd=5)
    page = _logged_in_page(browser, web_server, "md@example.com")
    page.goto(f"{web_server.url}/app/playground?model=mock/echo")
    reply = (
        "Here:\n```python\ndef add(a, b):\n    return a + b  # sum\n```\n"
        "- [ok](https://example.com) [no](javascript:alert(1))"
    )
    openai_upstream.script(Scripted(text=reply))
    page.fill("#pg-input", "show me code")
    page.keyboard.press("Enter")
    page.wait_for_selector(".msg.assistant .reply-meta")
    block = page.locator(".msg.assistant .codeblock")
    assert block.locator(".code-lang").inner_text() == "python"
    assert block.locator(".tok-kw").first.inner_text() == "def"
    assert block.locator(".tok-com").inner_text().startswith("# sum")
    block.locator(".copy-code").click()
    page.wait_for_selector(".copy-code:has-text('Copied!')")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("def add(a, b):") and "return a + b" in copied
    links = page.locator(".msg.assistant .content a")
    assert links.count() == 1 and links.get_attribute("href") == "https://example.com"
    assert links.get_attribute("rel") == "noopener noreferrer nofollow"

    # A long answer: the view follows it to its end while it streams.
    openai_upstream.script(Scripted(text="\n\n".join(f"paragraph {i}" for i in range(60)), chunk_delay=0.01))
    page.fill("#pg-input", "a long one")
    page.keyboard.press("Enter")
    eventually(lambda: page.locator(".msg.assistant .reply-meta").count() == 2, what="the long reply")
    gap = page.evaluate(
        "() => { const l = document.querySelector('.messages'); "
        "return l.scrollHeight - l.scrollTop - l.clientHeight; }"
    )
    assert page.evaluate("() => document.querySelector('.messages').scrollTop") > 0 and gap < 60

    # The conversation is kept in this browser, for this account only; logging out forgets it.
    page.reload()
    page.wait_for_selector(".msg.assistant .codeblock")
    assert page.locator(".msg").count() == 4
    stored = page.evaluate("() => Object.keys(localStorage)")
    assert len(stored) == 1 and stored[0].startswith("mg-playground-v1:")

    # Two models side by side, each with its usage and cost.
    page.click("#clear-chat")
    page.click("#pg-compare")
    page.select_option("#pg-model-2", "mock/thinker")
    page.fill("#pg-input", "compare us")
    page.keyboard.press("Enter")
    eventually(lambda: page.locator(".msg.assistant .reply-meta").count() == 2, what="both replies")
    panes = page.locator(".pg-pane")
    assert panes.count() == 2
    assert panes.nth(0).locator(".pane-model").inner_text() == "Mock"
    assert panes.nth(1).locator(".pane-model").inner_text() == "Thinker"
    for i in range(2):
        assert int(panes.nth(i).locator("[data-field=credits]").inner_text().split(": ")[1]) > 0
        assert "USD: $" in panes.nth(i).locator(".reply-meta").inner_text()
    assert {r["model"] for r in openai_upstream.requests[-2:]} == {"mock-model", "thinker-model"}
    page.click("nav button:has-text('Log out')")
    page.wait_for_url("**/app/login")
    assert page.evaluate("() => Object.keys(localStorage)") == []
    page.context.close()


def test_out_of_credits_links_to_how_to_get_credits(web_server: LiveServer, browser: Any) -> None:
    make_account(web_server, "broke@example.com")
    page = _logged_in_page(browser, web_server, "broke@example.com")
    page.goto(f"{web_server.url}/app/playground?model=mock/echo")
    assert page.inner_text("#pg-balance") == "$0.00" and page.is_visible("#pg-no-credits")
    page.fill("#pg-input", "hello")
    page.keyboard.press("Enter")
    link = page.wait_for_selector(".msg.error .error-link a")
    assert link is not None and link.get_attribute("href") == "/app/billing#get-credits"
    link.click()
    page.wait_for_url("**/app/billing#get-credits")
    assert "operator" in page.inner_text("#get-credits")
    page.context.close()
