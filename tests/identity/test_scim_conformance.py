"""SCIM 2.0 conformance: scim2-tester (a checker from PyPI) runs its discovery, create, read,
search, replace, patch and delete checks against modelgate's /scim/v2, on SQLite and PostgreSQL;
and the token is required."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from tests.conftest import MOCK_CONFIG
from tests.fakes.openai_server import FakeOpenAI

TOKEN = "scim-test-token-0123456789"


def scim_client(url: str, token: str = TOKEN) -> Any:
    httpx2 = pytest.importorskip("httpx2")
    from scim2_client.engines.httpx2 import SyncSCIMClient

    return SyncSCIMClient(
        httpx2.Client(base_url=f"{url}/scim/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    )


def test_scim2_tester_passes(make_live_server: Any, openai_upstream: FakeOpenAI) -> None:
    from scim2_tester import Status, check_server

    server = make_live_server(MOCK_CONFIG.format(base_url=openai_upstream.base_url), scim_token=TOKEN)
    results = check_server(scim_client(server.url))
    failed = [r for r in results if r.status not in (Status.SUCCESS, Status.SKIPPED)]
    assert not failed, "\n".join(f"{r.status.name} {r.title}: {r.reason}" for r in failed)
    counts = Counter(r.status for r in results)
    assert counts[Status.SUCCESS] >= 100, counts  # Users and Groups: every kind of check ran


def test_scim_requires_its_token(make_live_server: Any, openai_upstream: FakeOpenAI) -> None:
    server = make_live_server(MOCK_CONFIG.format(base_url=openai_upstream.base_url), scim_token=TOKEN)
    with httpx.Client(base_url=f"{server.url}/scim/v2", timeout=30) as c:
        assert c.get("/ServiceProviderConfig").status_code == 200  # RFC 7643 section 5: no auth
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            r = c.get("/Users", headers=headers)
            assert r.status_code == 401, r.text
            assert r.json()["status"] == "401" and "WWW-Authenticate" in r.headers
        r = c.get("/Users", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and r.json()["totalResults"] == 0


def test_scim_refuses_without_a_token(live_server: Any) -> None:
    r = httpx.get(f"{live_server.url}/scim/v2/Users", headers={"Authorization": "Bearer x"}, timeout=30)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/scim+json")
