"""The Billing and Keys pages: ranges and filters, breakdown by key, CSV exports, failed requests
in the logs with lookup by id, money written as money, a chart axis that fits small spends, and
post/redirect/get for new keys. Also /api-docs (rendered here, nothing from a CDN) and the
per-model schema generated from this server's catalogue."""

from __future__ import annotations

import csv
import io
import re
from datetime import date

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.ledger import period_key
from modelgate.store.schema import KeySpend
from modelgate.web.charts import axis, money, nice_max, stacked_bars
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.web.helpers import create_key, csrf, logged_in, make_account, with_db

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def _chat(server: LiveServer, key: str, model: str = "echo", **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}", **headers},
        json={"model": model, "messages": [{"role": "user", "content": "ping"}]},
        timeout=30,
    )


def _wait_for(c: httpx.Client, path: str, needle: str) -> str:
    """Log rows are written in batches; read-your-writes holds after the flush the page waits for."""
    page = c.get(path).text
    assert needle in page, page[-3000:]
    return page


def test_chart_axis_fits_small_spends_and_money_is_money() -> None:
    assert nice_max(0.000016) == 0.00002 and nice_max(0.3) == 0.3 and nice_max(7) == 8 and nice_max(0) == 1
    assert axis(0.000049) == (0.00006, 3)  # grid lines at $0.00002, $0.00004, $0.00006
    assert axis(1, integer=True) == (1, 1) and axis(7, integer=True) == (8, 4)  # whole counts
    assert money(0.000016) == "$0.000016" and money(1234.5) == "$1,234.50" and money(-0.0042) == "-$0.0042"
    today = date(2026, 1, 14)
    svg = stacked_bars([today], {(today, "m"): 0.000016}, {"m": "#123456"}, title="t", fmt=money)
    assert "e-05" not in svg and "$0.000016" in svg  # the tooltip
    assert ">$0.00002<" in svg  # the axis top fits the data (it was fixed at 1 before)
    bar = re.search(r'<rect [^>]*height="([0-9.]+)"', svg)
    assert bar and float(bar.group(1)) > 100  # the bar is drawn, not a sliver of a 0..1 axis


@SQLITE
def test_billing_filters_breakdown_exports_and_failed_requests(
    web_server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    make_account(web_server, "user@example.com", usd=1)
    first = web_server.create_key(email="user@example.com", usd=0, name="first key")
    second = web_server.create_key(email="user@example.com", usd=0, name="=cmd|' /C calc'!A0")
    assert _chat(web_server, first, **{"X-Client-Request-Id": "my-request-1"}).status_code == 200
    assert _chat(web_server, second).status_code == 200
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "upstream exploded"}}))
    failed = _chat(web_server, first)
    assert failed.status_code >= 500
    failed_id = failed.json()["requestId"]
    with logged_in(web_server, "user@example.com") as c:
        page = _wait_for(c, "/app/billing", failed_id)
        assert re.search(r'<tr class="failed">.*?error 50\d', page, re.S)
        assert "$" in page and "e-0" not in page  # money as money, never 1.6e-05
        per_key = page.split('id="usage-per-key">')[1].split("</section>")[0]
        assert "first key" in per_key and "cmd|" in per_key and "Playground" not in per_key
        # Lookup by our id and by the client's own id; other filters narrow the table.
        assert failed_id in c.get("/app/billing", params={"request_id": failed_id}).text
        one = c.get("/app/billing", params={"request_id": "my-request-1"}).text
        assert one.count('class="request-link"') == 1
        assert "No request with this id" in c.get("/app/billing", params={"request_id": "nope"}).text
        only_errors = c.get("/app/billing", params={"status": "error"}).text
        assert only_errors.count('class="request-link"') == 1
        key_id = re.search(r'<option value="(\d+)"[^>]*>first key', page).group(1)  # type: ignore[union-attr]
        by_key = c.get("/app/billing", params={"key": key_id}).text
        assert by_key.count('class="request-link"') == 2
        # A past range holds nothing; bad dates fall back with a message, never a 500.
        old = c.get("/app/billing", params={"from": "2020-01-01", "to": "2020-01-31"}).text
        assert "No requests match" in old
        for bad in (
            {"from": "0001-01-01"},
            {"to": "9999-12-31"},
            {"from": "yesterday"},
            {"key": "9" * 40},
            {"log_page": "9" * 30},
            {"request_id": "\x00"},
        ):
            r = c.get("/app/billing", params=bad)
            assert r.status_code == 200, bad
        assert "the default was used" in c.get("/app/billing", params={"from": "yesterday"}).text

        # CSV exports: every row, formulas defused, our ids.
        logs = c.get("/app/billing/logs.csv")
        assert logs.status_code == 200 and logs.headers["content-type"].startswith("text/csv")
        assert "attachment" in logs.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(logs.text)))
        assert len(rows) == 3 and {r["status"] for r in rows} == {"success", "error"}
        assert failed_id in {r["request_id"] for r in rows}
        assert any(r["key"].startswith("'=cmd") for r in rows)  # a formula is text in a spreadsheet
        assert all(not r["usd"].startswith("'") for r in rows)
        txs = list(csv.DictReader(io.StringIO(c.get("/app/billing/transactions.csv").text)))
        kinds = [t["type"] for t in txs]
        assert kinds.count("charge") == 2 and "topup" in kinds
        assert sum(int(t["credits"]) for t in txs) == _balance_credits(c)
        filtered = c.get("/app/billing/logs.csv", params={"status": "error"}).text
        assert len(list(csv.DictReader(io.StringIO(filtered)))) == 1
        for export in ("/app/billing/logs.csv", "/app/billing/transactions.csv"):
            assert c.get(export, params={"from": "bad", "to": "9999-99-99"}).status_code == 200


def _balance_credits(c: httpx.Client) -> int:
    return int(c.get("/app/balance").json()["credits"])


@SQLITE
def test_creating_a_key_redirects_and_a_reload_creates_nothing(web_server: LiveServer) -> None:
    make_account(web_server, "keys@example.com")
    with logged_in(web_server, "keys@example.com") as c:
        token = csrf(c.get("/app/keys"))
        r = c.post("/app/keys", data={"name": "prg", "scopes": "model:chat", "csrf_token": token})
        assert r.status_code == 303 and r.headers["location"].startswith("/app/keys")
        assert "mg_new_key" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
        shown = c.get("/app/keys")
        key = re.search(r'id="new-key-value" class="secret">([0-9a-f]{32})<', shown.text).group(1)  # type: ignore[union-attr]
        assert _chat(web_server, key).status_code in (200, 403)  # valid (no credits: 403)
        again = c.get("/app/keys")  # a reload: the key is not shown again, nothing is created
        assert key not in again.text and again.text.count("data-key-prefix=") == 1
        # A cookie naming someone else's key (or garbage) shows nothing.
        other = web_server.create_key(email="other@example.com", usd=0)
        c.cookies.set("mg_new_key", other, path="/app/keys")
        assert other not in c.get("/app/keys").text


@SQLITE
def test_key_spend_toward_its_limit(web_server: LiveServer) -> None:
    make_account(web_server, "limit@example.com", usd=1)
    with logged_in(web_server, "limit@example.com") as c:
        token = csrf(c.get("/app/keys"))
        data = {
            "name": "capped",
            "scopes": "model:chat",
            "limit_usd": "0.01",
            "retention": "day",
            "csrf_token": token,
        }
        assert c.post("/app/keys", data=data).status_code == 303
        key = re.search(r'class="secret">([0-9a-f]{32})<', c.get("/app/keys").text).group(1)  # type: ignore[union-attr]
        assert _chat(web_server, key).status_code == 200

        def row() -> str:
            page = c.get("/app/keys").text
            return re.search(r'<tr data-key-prefix="' + key[:8] + r'".*?</tr>', page, re.S).group(0)  # type: ignore[union-attr]

        spent = row()
        assert re.search(r"\$0\.0000\d+ of \$0\.01 today", spent), spent
        assert "% of the limit used today" in spent and 'data-state="exhausted"' not in spent

        async def use_it_all(conn: AsyncConnection) -> None:
            await conn.execute(
                update(KeySpend).where(KeySpend.period == period_key("day")).values(spent_credits=20_000)
            )

        with_db(web_server, use_it_all)
        full = row()
        assert 'data-state="exhausted"' in full and "limit reached" in full and 'class="fill full"' in full
        assert _chat(web_server, key).status_code == 403


@SQLITE
def test_api_docs_is_rendered_here(web_server: LiveServer) -> None:
    page = httpx.get(f"{web_server.url}/api-docs", timeout=30)
    assert page.status_code == 200 and "API reference" in page.text
    for op in ("/v1/chat/completions", "/v1/models", "/v2/billing"):
        assert op in page.text, op
    srcs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert all(not s.startswith(("http:", "https:", "//")) or s.startswith(web_server.url) for s in srcs), (
        srcs
    )
    assert "swagger" not in page.text.lower() and "cdn" not in page.text.lower()


@SQLITE
def test_docs_schema_lists_what_this_server_accepts(web_server: LiveServer) -> None:
    def props(model: str) -> dict:  # type: ignore[type-arg]
        spec = httpx.get(f"{web_server.url}/docs-json", params={"model": model}, timeout=30).json()
        op = spec["paths"]["/v1/chat/completions"]["post"]
        return op["requestBody"]["content"]["application/json"]["schema"]["properties"]  # type: ignore[no-any-return]

    chain = props("mock/chain")
    assert chain["provider"]["enum"] == ["auto", "mock", "mock2"]
    thinker = props("mock/thinker")["reasoning_effort"]["enum"]
    assert "xhigh" not in thinker and thinker == ["none", "minimal", "low", "medium", "high"]
    gemini = props("google/gemini-2.5-pro")
    assert gemini["provider"]["enum"] == ["auto", "google"]
    assert "none" not in gemini["reasoning_effort"]["enum"]  # thinking cannot be turned off there
    page = httpx.get(f"{web_server.url}/docs/models/mock/echo", timeout=30).text
    assert "YOUR_MODELGATE_KEY" in page and "YOUR_AIMLAPI_KEY" not in page


@SQLITE
def test_failed_requests_show_in_the_logs_with_their_error(web_server: LiveServer) -> None:
    """404 unknown model, 400 invalid body, 503 unconfigured provider: each is a row (no cost) with
    its status and message, found again by the request id the error carried."""
    make_account(web_server, "fails@example.com", usd=1)
    key = create_key(web_server, email="fails@example.com", usd=0)
    headers = {"Authorization": f"Bearer {key}"}
    bodies = [
        ({"model": "nope/x", "messages": [{"role": "user", "content": "x"}]}, 404, "does not exist"),
        ({"model": "echo", "messages": []}, 400, "at least 1 item"),
        (
            {"model": "mock/unconfigured", "messages": [{"role": "user", "content": "x"}]},
            503,
            "not configured",
        ),
    ]
    ids = {}
    for body, status, _ in bodies:
        r = httpx.post(f"{web_server.url}/v1/chat/completions", headers=headers, json=body, timeout=30)
        assert r.status_code == status
        ids[status] = r.json()["requestId"]
    with logged_in(web_server, "fails@example.com") as c:
        page = c.get("/app/billing", params={"status": "error"}).text
        assert page.count('<tr class="failed">') == 3
        for _, status, message in bodies:
            found = c.get("/app/billing", params={"request_id": ids[status]}).text
            assert f"error {status}" in found and message in found and "$0.00" in found, status


@SQLITE
def test_billing_page_shows_cache_hits_and_savings(
    web_server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    from tests.cache.conftest import log_rows, wait_for_entries

    make_account(web_server, "cache@example.com", usd=1)
    key = web_server.create_key(email="cache@example.com", usd=0)
    assert _chat(web_server, key, **{"x-modelgate-cache": "exact"}).status_code == 200
    wait_for_entries(web_server, 1)
    hit = _chat(web_server, key, **{"x-modelgate-cache": "exact"})
    assert hit.headers["x-modelgate-cache"] == "hit:exact"
    miss_row = log_rows(web_server, 2)[0]
    with logged_in(web_server, "cache@example.com") as c:
        page = _wait_for(c, "/app/billing", "cache hit:exact")
    assert "Saved by the response cache" in page and "1 hits" in page
    assert f"{miss_row.credits:,} credits" in page and "cache miss:exact" in page
