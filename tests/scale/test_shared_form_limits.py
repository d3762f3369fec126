"""Issue 18: the log-in and sign-up limits lived in each worker's memory, so N workers or instances
allowed N times the attempts. With Redis configured they are shared: two instances on one real
Redis count the same failures and sign-ups."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.web.helpers import csrf

pytestmark = pytest.mark.postgres


def _client(server: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)


def test_failed_log_ins_are_counted_across_instances(cluster: Any) -> None:
    a, b = cluster(2)
    clients = [_client(a), _client(b)]
    try:
        tokens = [csrf(c.get("/app/login")) for c in clients]
        statuses = []
        for n in range(6):  # the limit is 5 failures per (email, address), alternating instances
            c, token = clients[n % 2], tokens[n % 2]
            r = c.post(
                "/app/login", data={"email": "victim@example.com", "password": "x", "csrf_token": token}
            )
            statuses.append(r.status_code)
        assert statuses == [400] * 5 + [429], statuses
        assert "for this email" in r.text and int(r.headers["retry-after"]) > 0
        # The other instance refuses too: the count is the same everywhere.
        r = clients[0].post(
            "/app/login", data={"email": "victim@example.com", "password": "x", "csrf_token": tokens[0]}
        )
        assert r.status_code == 429
    finally:
        for c in clients:
            c.close()


def test_sign_ups_are_counted_across_instances(cluster: Any) -> None:
    """At most 10 sign-ups per address an hour, counted across instances. A sign-up signs its browser
    in (its session and CSRF token change), so each one comes from a new browser, as a script of
    sign-ups would."""
    a, b = cluster(2)
    statuses = []
    for n in range(11):
        with _client((a, b)[n % 2]) as c:
            token = csrf(c.get("/app/signup"))
            r = c.post(
                "/app/signup",
                data={"email": f"new{n}@example.com", "password": "a good password", "csrf_token": token},
            )
            statuses.append(r.status_code)
    assert statuses == [303] * 10 + [429], statuses
