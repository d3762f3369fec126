"""Web hardening: security headers on every HTML page, sign-up that does not reveal registered
emails, log-in failures limited per client IP across emails, hostile form values answered cleanly."""

from __future__ import annotations

import pytest

from modelgate.web.ratelimit import LoginLimiter
from modelgate.web.security import CSP
from tests.conftest import LiveServer
from tests.web.helpers import client, csrf, log_in, logged_in, make_account

ANONYMOUS_PAGES = (
    "/",
    "/app/login",
    "/app/signup",
    "/docs",
    "/docs/models/mock/echo",
    "/api-docs",
    "/nope/x",
)


def _assert_secure_html(response, path: str) -> None:  # type: ignore[no-untyped-def]
    h = response.headers
    assert h["content-type"].startswith("text/html"), path
    csp = h["content-security-policy"]
    assert csp == CSP, path
    for directive in ("default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in csp, (path, directive)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert h["x-frame-options"] == "DENY", path
    assert h["x-content-type-options"] == "nosniff", path
    assert h["referrer-policy"] == "same-origin", path


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_html_page_sends_the_security_headers(web_server: LiveServer) -> None:
    make_account(web_server, "op@example.com", operator=True)
    with client(web_server) as c:
        for path in ANONYMOUS_PAGES:
            r = c.get(path)
            if path == "/nope/x":
                assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
                continue
            _assert_secure_html(r, path)
        r = c.post("/app/login", data={"email": "x@example.com", "password": "x"})  # CSRF error page
        assert r.status_code == 403
        _assert_secure_html(r, "csrf error")
        static = c.get("/static/app.js")
        assert static.headers["x-content-type-options"] == "nosniff"
        icon = c.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
        assert icon.content[:4] == b"\x00\x00\x01\x00"
    with logged_in(web_server, "op@example.com") as op:
        for path in (
            "/app/keys",
            "/app/billing",
            "/app/playground",
            "/app/account",
            "/admin/accounts",
            "/admin/models",
            "/admin/settings",
            "/admin/audit",
            "/admin/requests",
        ):
            r = op.get(path)
            assert r.status_code == 200, path
            _assert_secure_html(r, path)
            # No inline script or style for the policy to block (JSON data blocks are not scripts).
            text = r.text
            assert " style=" not in text and "<style" not in text, path
            for chunk in text.split("<script")[1:]:
                head = chunk.split(">", 1)[0]
                assert "src=" in head or 'type="application/json"' in head, (path, head)


def test_sign_up_signs_in_a_new_account_and_never_a_taken_one(web_server: LiveServer) -> None:
    make_account(web_server, "taken@example.com", "the owner's password")

    def attempt(email: str):  # type: ignore[no-untyped-def]
        with client(web_server) as c:
            token = csrf(c.get("/app/signup"))
            r = c.post("/app/signup", data={"email": email, "password": "guessing123", "csrf_token": token})
            return r.status_code, r.headers.get("location"), "mg_session" in r.cookies

    # A new email is signed in at once; a taken one (any case) is sent to log in, signed in as nobody.
    assert attempt("fresh@example.com") == (303, "/app/keys?welcome=1", True)
    assert attempt("TAKEN@example.com") == (303, "/app/login?signed_up=1&email=taken%40example.com", False)
    # The taken account's password did not change; the new account works.
    with client(web_server) as c:
        assert log_in(c, "taken@example.com", "guessing123").status_code == 400
        assert log_in(c, "taken@example.com", "the owner's password").status_code == 303
    with client(web_server) as c:
        assert log_in(c, "fresh@example.com", "guessing123").status_code == 303


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_failed_log_ins_are_limited_per_client_ip_across_emails(web_server: LiveServer) -> None:
    make_account(web_server, "real@example.com", "the right password")
    statuses = []
    with client(web_server) as c:
        token = csrf(c.get("/app/login"))
        for n in range(30):  # 30 wrong log-ins on 30 different emails from one address
            r = c.post(
                "/app/login", data={"email": f"u{n}@example.com", "password": "x", "csrf_token": token}
            )
            statuses.append(r.status_code)
        assert statuses[:20] == [400] * 20 and set(statuses[20:]) == {429}
        assert "from your network" in r.text and int(r.headers["retry-after"]) > 0
        # Even the right password waits: the address is throttled, whatever the email.
        r = c.post(
            "/app/login",
            data={"email": "real@example.com", "password": "the right password", "csrf_token": token},
        )
        assert r.status_code == 429


async def test_login_limiter_counts_addresses_apart() -> None:
    limiter = LoginLimiter(limit=5, ip_limit=20)
    for n in range(20):
        await limiter.failed(f"u{n}@example.com", "10.0.0.1")
    assert (await limiter.retry_after("anyone@example.com", "10.0.0.1"))[1] == "ip"
    assert (await limiter.retry_after("anyone@example.com", "10.0.0.1"))[0] > 0
    assert await limiter.retry_after("anyone@example.com", "10.0.0.2") == (0, "email")
    for _ in range(5):
        await limiter.failed("victim@example.com", "10.0.0.3")
    assert await limiter.retry_after("victim@example.com", "10.0.0.3") > (0, "")
    await limiter.succeeded("victim@example.com", "10.0.0.3")  # clears this pair, not the address count
    assert await limiter.retry_after("victim@example.com", "10.0.0.3") == (0, "email")


def test_hostile_form_values_get_clean_answers(web_server: LiveServer) -> None:
    """NUL bytes, overlong and non-ASCII values in the anonymous forms: 4xx pages, never a 500
    (PostgreSQL refuses NUL in text)."""
    with client(web_server) as c:
        token = csrf(c.get("/app/signup"))
        for email in ("a\x00b@example.com", "x" * 5000 + "@example.com", "ünï@exämple.com\x00"):
            r = c.post("/app/signup", data={"email": email, "password": "password123", "csrf_token": token})
            assert r.status_code == 400, email
            r = c.post("/app/login", data={"email": email, "password": "password123", "csrf_token": token})
            assert r.status_code == 400, email
        r = c.post(
            "/app/signup", data={"email": "ok@example.com", "password": "pass\x00word1", "csrf_token": token}
        )
        assert r.status_code == 400
        r = c.post("/app/login", data={"email": "x@example.com", "password": "x", "csrf_token": "é" * 40})
        assert r.status_code == 403
        r = c.get("/app/sign-in/" + "x" * 5000)
        assert r.status_code == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_scripts_never_parse_html(web_server: LiveServer) -> None:
    """Model output reaches the page as DOM nodes only: no script of ours hands a string to an HTML
    parser (and nothing is evaluated as code, which the CSP forbids anyway)."""
    with client(web_server) as c:
        for name in ("app.js", "markdown.js", "playground.js"):
            js = c.get(f"/static/{name}").text
            for sink in (
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
            ):
                assert sink not in js, (name, sink)


async def test_form_limits_count_in_memory_while_redis_is_unreachable() -> None:
    """The shared store never fails a form: with Redis refusing connections, the worker counts the
    attempts itself (and still throttles)."""
    from redis.asyncio import Redis

    from modelgate.web.ratelimit import RedisWindows

    client = Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
    limiter = LoginLimiter(limit=3, store=RedisWindows(client, prefix="mgtest:", timeout=0.5))
    try:
        for _ in range(3):
            assert (await limiter.retry_after("x@example.com", "10.0.0.9"))[0] == 0
            await limiter.failed("x@example.com", "10.0.0.9")
        wait, scope = await limiter.retry_after("x@example.com", "10.0.0.9")
        assert wait > 0 and scope == "email"
    finally:
        await client.aclose()
