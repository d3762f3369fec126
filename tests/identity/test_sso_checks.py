"""Single sign-on over plain HTTP (SQLite and PostgreSQL): the happy path, and what is refused —
a callback that did not start in this browser, a replayed callback, a client the provider does
not accept, an unknown provider. The provider is tests/fakes/oidc_provider.py (authlib)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.oidc_provider import OpenIDProvider
from tests.fakes.openai_server import FakeOpenAI


def start(
    make_live_server: Any, upstream: FakeOpenAI, idp: OpenIDProvider, *, secret: str = "s3cret"
) -> LiveServer:
    provider = {"name": "corp", "issuer": idp.issuer, "client_id": "mg", "client_secret": secret}
    server: LiveServer = make_live_server(
        MOCK_CONFIG.format(base_url=upstream.base_url), oidc_providers=[provider]
    )
    idp.add_client("mg", "s3cret", f"{server.url}/app/sso/corp/callback")
    return server


def to_callback(c: httpx.Client, user: str, password: str) -> str:
    """Start a sign-in and sign in at the provider; the callback URL it sends the browser to."""
    r = c.get("/app/sso/corp?next=/app/billing")
    assert r.status_code == 303, r.text
    authorize = r.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    r = httpx.post(authorize, data={"username": user, "password": password}, timeout=30)
    assert r.status_code == 302, r.text
    return str(r.headers["location"])


def test_sign_in_and_what_is_refused(
    make_live_server: Any, openai_upstream: FakeOpenAI, corp_idp: OpenIDProvider
) -> None:
    server = start(make_live_server, openai_upstream, corp_idp)
    with (
        httpx.Client(base_url=server.url, timeout=30) as c,
        httpx.Client(base_url=server.url, timeout=30) as other,
    ):
        callback = to_callback(c, "alice", "alice-pass")
        # Another browser cannot complete this sign-in (it has not the state cookie).
        r = other.get(callback)
        assert r.status_code == 400 and "did not start in this browser" in r.text
        assert "mg_session" not in other.cookies
        r = c.get(callback)
        assert r.status_code == 303 and r.headers["location"] == "/app/billing", r.text
        assert c.get("/app/billing").status_code == 200
        assert "alice@corp.example" in c.get("/app/keys").text
        # Replayed: the state was used up.
        c.cookies.set("mg_sso_state", parse_qs(urlsplit(callback).query)["state"][0], path="/app/sso/")
        r = c.get(callback)
        assert r.status_code == 400 and "used already" in r.text
        assert other.get("/app/sso/nope").status_code == 404


def test_a_client_secret_the_provider_refuses(
    make_live_server: Any, openai_upstream: FakeOpenAI, corp_idp: OpenIDProvider
) -> None:
    server = start(make_live_server, openai_upstream, corp_idp, secret="wrong")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.get(to_callback(c, "alice", "alice-pass"))
        assert r.status_code == 403 and "refused the sign-in (401" in r.text, r.text
        assert "wrong" not in r.text and "Traceback" not in r.text
        assert c.get("/app/keys").status_code == 303  # not signed in
