"""The operator console: only operators see it; top-ups, disabling accounts (their keys are refused
on the next request), key switches, request lookup, models and providers, settings, the audit log."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.web.helpers import balance, client, csrf, log_in, logged_in, make_account

CONSOLE_PAGES = (
    "/admin",
    "/admin/accounts",
    "/admin/accounts/1",
    "/admin/models",
    "/admin/requests?id=x",
    "/admin/settings",
    "/admin/audit",
)


def _chat(server: LiveServer, key: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "echo", "messages": [{"role": "user", "content": "ping"}]},
        timeout=30,
    )


def _account_id(c: httpx.Client, email: str) -> int:
    page = c.get("/admin/accounts", params={"q": email})
    found = re.search(r'href="/admin/accounts/(\d+)">' + re.escape(email) + "<", page.text)
    assert found, page.text
    return int(found.group(1))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_console_is_a_404_for_everyone_but_operators(web_server: LiveServer) -> None:
    make_account(web_server, "user@example.com")
    make_account(web_server, "op@example.com", operator=True)
    with client(web_server) as anonymous, logged_in(web_server, "user@example.com") as user:
        for c in (anonymous, user):
            for path in CONSOLE_PAGES:
                r = c.get(path)
                assert r.status_code == 404 and "Page not found" in r.text, path
            r = c.post("/admin/accounts/1/top-up", data={"usd": "5", "csrf_token": "x"})
            assert r.status_code == 404
        assert "/admin" not in user.get("/app/keys").text  # no Console link either
    with logged_in(web_server, "op@example.com") as op:
        assert op.get("/admin").headers["location"] == "/admin/accounts"
        for path in CONSOLE_PAGES[1:]:
            assert op.get(path).status_code == 200, path
        assert 'href="/admin"' in op.get("/app/keys").text
    assert balance(web_server, "user@example.com") == 0


def test_operator_tops_up_and_disables_an_account(web_server: LiveServer) -> None:
    make_account(web_server, "op@example.com", operator=True)
    make_account(web_server, "alice@example.com", "alice's password")
    key = web_server.create_key(email="alice@example.com", usd=1)
    assert _chat(web_server, key).status_code == 200
    with (
        logged_in(web_server, "op@example.com") as op,
        logged_in(web_server, "alice@example.com", "alice's password") as alice,
    ):
        account = _account_id(op, "alice@example.com")
        page = op.get(f"/admin/accounts/{account}")
        token = csrf(page)
        before = balance(web_server, "alice@example.com")

        # Top up with a note: the balance, the user's own billing page and the audit log show it.
        for bad in ("", "abc", "0", "1e309", "nan", "2000000", "0.0000001", "1.5.5"):
            r = op.post(f"/admin/accounts/{account}/top-up", data={"usd": bad, "csrf_token": token})
            assert r.status_code == 400 and 'id="usd-error"' in r.text, bad
        r = op.post(f"/admin/accounts/{account}/top-up", data={"usd": "-1", "csrf_token": token})
        assert r.status_code == 400 and "A correction needs a reason" in r.text  # negative: a reason
        r = op.post(f"/admin/accounts/{account}/top-up", data={"usd": "2.5", "note": "invoice 7"})
        assert r.status_code == 403  # no CSRF token: refused, nothing added
        r = op.post(
            f"/admin/accounts/{account}/top-up",
            data={"usd": "2.5", "note": "invoice 7", "csrf_token": token},
        )
        assert r.status_code == 200 and 'id="confirm-amount">$2.50<' in r.text  # confirm first
        assert balance(web_server, "alice@example.com") == before
        confirm = {
            name: re.search(rf'name="{name}" value="([^"]*)"', r.text).group(1)  # type: ignore[union-attr]
            for name in ("credits", "note", "reference", "csrf_token")
        }
        assert confirm["credits"] == "5000000"
        for _ in range(2):  # sent twice (a double click): credited once
            r = op.post(f"/admin/accounts/{account}/top-up/confirm", data=confirm)
            assert r.status_code == 303
        assert r.headers["location"].endswith("done=already")
        assert balance(web_server, "alice@example.com") == before + 5_000_000
        forged = {**confirm, "reference": "console-" + "0" * 24, "credits": "abc"}
        assert op.post(f"/admin/accounts/{account}/top-up/confirm", data=forged).status_code == 404
        assert "invoice 7" in alice.get("/app/billing").text
        audit = op.get("/admin/audit").text
        assert "account.top_up" in audit and "$2.50 — invoice 7" in audit and "op@example.com" in audit

        # Disable: her key is refused on the very next request, her session ends, log-in is refused.
        r = op.post(f"/admin/accounts/{account}/status", data={"disabled": "1", "csrf_token": token})
        assert r.status_code == 303
        refused = _chat(web_server, key)
        assert refused.status_code == 401 and "account is disabled" in refused.json()["error"]["message"]
        assert alice.get("/app/keys").status_code == 303
        r = log_in(alice, "alice@example.com", "alice's password")
        assert r.status_code == 403 and "This account is disabled" in r.text
        assert "disabled" in op.get(f"/admin/accounts/{account}").text

        # Enable again: the key works at once, and she can log in.
        r = op.post(f"/admin/accounts/{account}/status", data={"disabled": "0", "csrf_token": token})
        assert r.status_code == 303
        assert _chat(web_server, key).status_code == 200
        assert log_in(alice, "alice@example.com", "alice's password").status_code == 303
        audit = op.get("/admin/audit").text
        assert "account.disable" in audit and "account.enable" in audit

        # An operator cannot lock themselves out.
        me = _account_id(op, "op@example.com")
        r = op.post(f"/admin/accounts/{me}/status", data={"disabled": "1", "csrf_token": token})
        assert r.status_code == 400 and "cannot disable your own account" in r.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_operator_switches_a_key_and_finds_requests_by_id(web_server: LiveServer) -> None:
    make_account(web_server, "op@example.com", operator=True)
    key = web_server.create_key(email="bob@example.com", usd=1, name="bob's key")
    r = _chat(web_server, key)
    inference_id = r.headers["x-inference-id"]
    with logged_in(web_server, "op@example.com") as op:
        account = _account_id(op, "bob@example.com")
        page = op.get(f"/admin/accounts/{account}")
        key_id = re.search(r'action="/admin/keys/(\d+)/toggle"', page.text).group(1)  # type: ignore[union-attr]
        token = csrf(page)
        assert op.post(f"/admin/keys/{key_id}/toggle", data={"csrf_token": token}).status_code == 303
        assert _chat(web_server, key).status_code == 401
        r = op.post(f"/admin/keys/{key_id}/toggle", data={"enable": "1", "csrf_token": token})
        assert r.status_code == 303 and _chat(web_server, key).status_code == 200
        assert op.post("/admin/keys/999999/toggle", data={"csrf_token": token}).status_code == 404

        found = op.get("/admin/requests", params={"id": inference_id})
        assert found.status_code == 200
        assert (
            "bob@example.com" in found.text
            and "mock/echo" in found.text
            and ">success<" in found.text
            and "HTTP 200" in found.text
        )
        assert "No request with this id" in op.get("/admin/requests", params={"id": "nope"}).text
        assert "at most 128" in op.get("/admin/requests", params={"id": "x" * 500}).text
        assert op.get("/admin/accounts", params={"q": "bob%_\\"}).status_code == 200
        for missing in ("424242", "99999999999", "-1", "abc", "1.5"):
            assert op.get(f"/admin/accounts/{missing}").status_code == 404, missing


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_models_page_shows_providers_breakers_and_recent_success(web_server: LiveServer) -> None:
    make_account(web_server, "op@example.com", operator=True)
    key = web_server.create_key(email="user@example.com", usd=1)
    assert _chat(web_server, key).status_code == 200
    with logged_in(web_server, "op@example.com") as op:
        page = op.get("/admin/models").text
    mock = re.search(r'<tr data-provider="mock">(.*?)</tr>', page, re.S).group(1)  # type: ignore[union-attr]
    assert "configured" in mock and "closed" in mock and "100.0%" in mock
    nokey = re.search(r'<tr data-provider="nokey">(.*?)</tr>', page, re.S).group(1)  # type: ignore[union-attr]
    assert "unconfigured" in nokey and "MODELGATE_TEST_UNSET_KEY" in nokey
    unconfigured = re.search(r'<tr data-model="mock/unconfigured">(.*?)</tr>', page, re.S)
    assert unconfigured and "no" in unconfigured.group(1)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_settings_give_new_accounts_credits_and_tell_them_how_to_get_more(web_server: LiveServer) -> None:
    make_account(web_server, "op@example.com", operator=True)
    with logged_in(web_server, "op@example.com") as op:
        token = csrf(op.get("/admin/settings"))
        for bad in ("-1", "x", "inf", "2000000"):
            r = op.post("/admin/settings", data={"signup_credits_usd": bad, "csrf_token": token})
            assert r.status_code == 400, bad
        r = op.post(
            "/admin/settings",
            data={
                "signup_credits_usd": "1.5",
                "credits_help": "Write to billing@example.com <b>now</b>",
                "csrf_token": token,
            },
        )
        assert r.status_code == 303
        assert "sign-up credits $0.00 → $1.50" in op.get("/admin/audit").text
    with client(web_server) as c:
        token = csrf(c.get("/app/signup"))
        data = {"email": "new@example.com", "password": "new password", "csrf_token": token}
        assert c.post("/app/signup", data=data).headers["location"] == "/app/keys?welcome=1"
        billing = c.get("/app/billing").text
        assert "$1.50" in billing and "sign-up credits" in billing
        assert "Write to billing@example.com &lt;b&gt;now&lt;/b&gt;" in billing
    assert balance(web_server, "new@example.com") == 3_000_000
    with logged_in(web_server, "op@example.com") as op:
        token = csrf(op.get("/admin/settings"))
        assert op.post("/admin/settings", data={"reset": "1", "csrf_token": token}).status_code == 303
        assert 'value="0"' in op.get("/admin/settings").text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sign_up_credits_default_from_the_environment(make_live_server, openai_upstream) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import MOCK_CONFIG

    server = make_live_server(MOCK_CONFIG.format(base_url=openai_upstream.base_url), signup_credits_usd=0.25)
    with client(server) as c:
        token = csrf(c.get("/app/signup"))
        data = {"email": "env@example.com", "password": "new password", "csrf_token": token}
        assert c.post("/app/signup", data=data).status_code == 303
    assert balance(server, "env@example.com") == 500_000


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_models_page_shows_credits_over_hold(web_server: LiveServer, openai_upstream: Any) -> None:
    """The overdraft rule is visible to operators: a request whose upstream reported more than its
    hold covered shows on the model's row (credits over hold, and how many requests)."""
    from tests.fakes.openai_server import Scripted

    make_account(web_server, "op@example.com", operator=True)
    key = web_server.create_key(email="user@example.com", usd=1)
    openai_upstream.script(
        Scripted(usage={"prompt_tokens": 100_000, "completion_tokens": 10, "total_tokens": 100_010})
    )
    assert _chat(web_server, key).status_code == 200
    with logged_in(web_server, "op@example.com") as op:
        page = op.get("/admin/models").text
    echo = re.search(r'<tr data-model="mock/echo">(.*?)</tr>', page, re.S)
    assert echo and re.search(r"[\d,]+ cr · 1 req", echo.group(1)), echo
