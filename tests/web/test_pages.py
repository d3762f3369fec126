"""Web UI without a browser: CSRF rejection, log-in rate limit, sessions, escaping, docs generation."""

from __future__ import annotations

import asyncio
import html
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import jsonschema
import pytest

from modelgate.accounts.service import get_or_create_account, top_up
from modelgate.catalog.kinds import KINDS
from modelgate.store.db import Database
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.web.conftest import CSRF_FIELD, CSRF_META


def _client(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, follow_redirects=False, timeout=20)


def sign_up(client: httpx.Client, email: str = "web@example.com", password: str = "correct horse") -> None:
    """Sign up: a new account is signed in at once."""
    page = client.get("/app/signup")
    token = CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/app/signup", data={"email": email, "password": password, "csrf_token": token})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/app/keys?welcome=1"
    assert "mg_session" in r.cookies


def log_in(client: httpx.Client, email: str, password: str) -> None:
    page = client.get("/app/login")
    token = CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/app/login", data={"email": email, "password": password, "csrf_token": token})
    assert r.status_code == 303, r.text


def top_up_account(server: LiveServer, email: str, usd: float = 5.0) -> None:
    async def run() -> None:
        db = Database(server.settings.database_url)
        try:
            async with db.engine.begin() as conn:
                await top_up(conn, account_id=await get_or_create_account(conn, email=email), usd=usd)
        finally:
            await db.aclose()

    # In a worker thread: the sync Playwright API keeps an event loop running in the test thread.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


def test_session_cookie_flags_and_logout(web_server: LiveServer) -> None:
    with _client(web_server) as c:
        page = c.get("/app/signup")
        token = CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
        r = c.post(
            "/app/signup", data={"email": "a@example.com", "password": "password123", "csrf_token": token}
        )
        signed_up = next(v for v in r.headers.get_list("set-cookie") if v.startswith("mg_session="))
        assert "HttpOnly" in signed_up  # a new account is signed in at once
        token = CSRF_FIELD.search(c.get("/app/keys").text).group(1)  # type: ignore[union-attr]
        assert c.post("/app/logout", data={"csrf_token": token}).status_code == 303
        token = CSRF_FIELD.search(c.get("/app/login").text).group(1)  # type: ignore[union-attr]
        r = c.post(
            "/app/login", data={"email": "a@example.com", "password": "password123", "csrf_token": token}
        )
        cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith("mg_session="))
        assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Secure" not in cookie
        keys = c.get("/app/keys")
        assert keys.status_code == 200 and "a@example.com" in keys.text
        token = CSRF_FIELD.search(keys.text).group(1)  # type: ignore[union-attr]
        assert c.post("/app/logout", data={"csrf_token": token}).status_code == 303
        assert c.get("/app/keys").status_code == 303  # the server-side session is gone


def test_sign_up_form_errors(web_server: LiveServer) -> None:
    with _client(web_server) as c:
        sign_up(c, "taken@example.com")
    with _client(web_server) as c:
        token = CSRF_FIELD.search(c.get("/app/signup").text).group(1)  # type: ignore[union-attr]
        r = c.post("/app/signup", data={"email": "nope", "password": "short", "csrf_token": token})
        assert r.status_code == 400
        assert "Enter a valid email address" in r.text and "at least 8 characters" in r.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_csrf_is_required_on_every_form(web_server: LiveServer) -> None:
    with _client(web_server) as c:
        # Anonymous forms: no token, or a token that does not match the cookie.
        c.get("/app/signup")
        r = c.post("/app/signup", data={"email": "x@example.com", "password": "password123"})
        assert r.status_code == 403 and "Request refused" in r.text
        r = c.post("/app/login", data={"email": "x@example.com", "password": "x", "csrf_token": "forged" * 8})
        assert r.status_code == 403
        sign_up(c)
        good = CSRF_FIELD.search(c.get("/app/keys").text).group(1)  # type: ignore[union-attr]
        for path in ("/app/keys", "/app/keys/1/toggle", "/app/keys/1/delete", "/app/logout"):
            assert c.post(path, data={"name": "k", "scopes": "model:chat"}).status_code == 403, path
            assert c.post(path, data={"name": "k", "csrf_token": good + "x"}).status_code == 403, path
        body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
        r = c.post("/app/playground/chat", json=body)
        assert r.status_code == 403 and r.json()["error"]["type"] == "csrf_error"
        r = c.post("/app/playground/chat", json=body, headers={"X-CSRF-Token": "wrong"})
        assert r.status_code == 403
        # The key was never created, the session is still valid.
        assert "No keys yet" in c.get("/app/keys").text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_login_rate_limit(web_server: LiveServer) -> None:
    with _client(web_server) as c:
        sign_up(c, "victim@example.com", "the right password")
    with _client(web_server) as c:
        token = CSRF_FIELD.search(c.get("/app/login").text).group(1)  # type: ignore[union-attr]
        form = {"email": "victim@example.com", "password": "wrong", "csrf_token": token}
        for _ in range(5):
            r = c.post("/app/login", data=form)
            assert r.status_code == 400 and "Wrong email or password" in r.text
        r = c.post("/app/login", data={**form, "password": "the right password"})
        assert r.status_code == 429
        assert "Too many failed log-in attempts" in r.text and int(r.headers["retry-after"]) > 0
        # Another email from the same address is not affected.
        r = c.post("/app/login", data={**form, "email": "other@example.com"})
        assert r.status_code == 400


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_pages_require_login(web_server: LiveServer) -> None:
    with _client(web_server) as c:
        for path in ("/app/keys", "/app/billing", "/app/playground"):
            r = c.get(path)
            assert r.status_code == 303 and r.headers["location"].startswith("/app/login?next=")
        r = c.post("/app/playground/chat", json={}, headers={"X-CSRF-Token": "x"})
        assert r.status_code == 401
        r = c.get("/")  # the landing page for a signed-out visitor
        assert r.status_code == 200 and 'href="/app/signup"' in r.text and "/v1/chat/completions" in r.text
        r = c.get("/app")
        assert r.status_code == 303 and r.headers["location"] == "/app/login"


def test_playground_bills_and_logs_model_output_escaped(
    web_server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    evil = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    with _client(web_server) as c:
        sign_up(c, "pg@example.com")
        top_up_account(web_server, "pg@example.com")
        token = CSRF_META.search(c.get("/app/playground").text).group(1)  # type: ignore[union-attr]
        openai_upstream.script(Scripted(text=evil))
        body = {
            "model": "echo",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        r = c.post("/app/playground/chat", json=body, headers={"X-CSRF-Token": token})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        frames = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
        text = "".join(ch["delta"].get("content") or "" for f in frames for ch in f.get("choices", []))
        assert text.strip() == evil
        assert frames[-1]["meta"]["usage"]["credits_used"] > 0 and "usage" in frames[-1]
        # The log shows the request as origin=playground; the billing page escapes everything.
        for _ in range(100):
            page = c.get("/app/billing", params={"origin": "playground"})
            if 'class="muted origin">playground</div>' in page.text:
                break
            time.sleep(0.05)
        assert 'class="muted origin">playground</div>' in page.text
        assert "<script>alert" not in page.text
        # The internal playground key never shows on the Keys page.
        assert "Playground (internal)" not in c.get("/app/keys").text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_playground_js_renders_text_only(web_server: LiveServer) -> None:
    js = httpx.get(f"{web_server.url}/static/playground.js").text
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "textContent" in js


ENDPOINTS = {kind.listed_as: kind.endpoint for kind in KINDS.values()}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_docs_pages_for_every_model(web_server: LiveServer) -> None:
    with _client(web_server) as c:
        models = c.get("/v1/models").json()["data"]
        for item in models:
            page = c.get(f"/docs/models/{item['id']}")
            assert page.status_code == 200, item["id"]
            assert html.escape(item["id"]) in page.text
            spec = c.get("/docs-json", params={"model": item["id"]}).json()
            path = ENDPOINTS[item["type"]]
            assert f"{web_server.url}{path}" in page.text  # the samples call the right endpoint
            content = spec["paths"][path]["post"]["requestBody"]["content"]  # JSON, or multipart for uploads
            props = next(iter(content.values()))["schema"]["properties"]
            assert props["model"]["enum"] == [item["id"]]
            assert spec["servers"] == [{"url": web_server.url}]
        thinker = c.get("/docs/models/mock/thinker").text
        assert 'id="reasoning-warning"' in thinker and "max_tokens = 15000" in thinker
        assert 'id="reasoning-warning"' not in c.get("/docs/models/mock/echo").text
        index = c.get("/docs", params={"capability": "reasoning"}).text
        assert "/docs/models/mock/thinker" in index and "/docs/models/mock/echo" not in index
        assert 'href="/api-docs"' in index
        assert c.get("/docs/models/nope/missing").status_code == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_docs_json_request_schema_accepts_the_samples(web_server: LiveServer) -> None:
    spec = httpx.get(f"{web_server.url}/docs-json", params={"model": "mock/thinker"}).json()
    schema = spec["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    good = {
        "model": "mock/thinker",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 15000,
        "reasoning_effort": "low",
    }
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**good, "model": "mock/echo"}, schema)
    assert (
        "reasoning_effort"
        not in httpx.get(f"{web_server.url}/docs-json", params={"model": "mock/echo"}).json()["paths"][
            "/v1/chat/completions"
        ]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    )
