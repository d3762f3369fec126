"""/v2/usage and /v2/usage/detail: totals, breakdowns, groups, time windows, key selection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.billing.helpers import chat, check, error, get, wait_for
from tests.fakes.openai_server import Scripted

U, UD = "usage-v2.json", "usage-detail-v2.json"


def _traffic(server, upstream, key):
    """Two charged echo calls, one charged chain call, one failed call; returns total credits."""
    total = 0
    for text in ("one two", "three four five"):
        total += int(chat(server, key, text).headers["x-aimlapi-credits-used"])
    total += int(chat(server, key, "chain", model="mock/chain").headers["x-aimlapi-credits-used"])
    upstream.script(Scripted(status=500, body={"error": {"message": "boom"}}))
    assert chat(server, key).status_code >= 500
    wait_for(lambda: get(server, "/v2/logs", key, period="1h").json()["pagination"]["total"] == 4)
    return total


def test_usage_totals_and_breakdown(live_server, openai_upstream):
    key = live_server.create_key(email="u@example.com", usd=1.0)
    total = _traffic(live_server, openai_upstream, key)
    body = check(get(live_server, "/v2/usage", key, period="24h"), U, "/v2/usage")
    assert body["api_key_prefix"] is None and body["currency"] == "USD"
    assert body["requests"] == 3 and body["spend"] == total / 2_000_000
    assert body["start"].endswith("Z") and body["end"].endswith("Z")
    assert "models" not in body and "groups" not in body

    detail = check(
        get(live_server, "/v2/usage/detail", key, period="7d", key_prefix=key[:8]), UD, "/v2/usage/detail"
    )
    assert detail["api_key_prefix"] == key[:8] and "groups" not in detail
    assert {m["model"]: m["requests"] for m in detail["models"]} == {"mock/echo": 2, "mock/chain": 1}
    assert detail["models"] == sorted(detail["models"], key=lambda m: -m["spend"])

    by_model = check(
        get(live_server, "/v2/usage/detail", key, period="1d", group_by="model"), UD, "/v2/usage/detail"
    )
    echo = next(g for g in by_model["groups"] if g["model"] == "mock/echo")
    assert echo["requests"] == {"total": 3, "charged": 2, "succeeded": 2, "failed": 1}
    assert echo["tokens"]["total"] == echo["tokens"]["input"] + echo["tokens"]["output"] > 0
    assert sum(g["requests"]["charged"] for g in by_model["groups"]) == by_model["requests"] == 3

    today = datetime.now(UTC).date().isoformat()
    by_day = check(
        get(live_server, "/v2/usage/detail", key, period="3d", group_by="day"), UD, "/v2/usage/detail"
    )
    assert [g["day"] for g in by_day["groups"]] == [today]
    assert by_day["groups"][0]["requests"]["total"] == 4 and "model" not in by_day["groups"][0]
    both = get(
        live_server, "/v2/usage/detail", key, period="3d", group_by="day,model", tz="Pacific/Kiritimati"
    )
    groups = check(both, UD, "/v2/usage/detail")["groups"]
    kiritimati = (datetime.now(UTC) + timedelta(hours=14)).date().isoformat()
    assert {(g["day"], g["model"]) for g in groups} == {(kiritimati, "mock/echo"), (kiritimati, "mock/chain")}

    # An absolute window that ends before the traffic: nothing.
    past = get(
        live_server, "/v2/usage", key, start="2026-01-01T00:00:00", end="2026-01-02T00:00:00+03:00"
    ).json()
    assert past["requests"] == 0 and past["spend"] == 0
    assert past["start"] == "2026-01-01T00:00:00.000Z" and past["end"] == "2026-01-01T21:00:00.000Z"


def test_usage_window_and_parameter_errors(live_server):
    key = live_server.create_key(email="u@example.com", usd=1.0)
    bad = [
        {},
        {"period": "24h", "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
        {"period": "0d"},
        {"period": "24"},
        {"period": "-1d"},
        {"period": "1w"},
        {"period": "93d"},
        {"start": "2026-01-01T00:00:00Z"},
        {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        {"start": "2026-01-01T00:00:00Z", "end": "2026-04-03T00:00:01Z"},
        {"start": "yesterday", "end": "2026-01-01T00:00:00Z"},
    ]
    for params in bad:
        for path in ("/v2/usage", "/v2/usage/detail", "/v2/logs"):
            error(get(live_server, path, key, **params), 400)
    assert get(live_server, "/v2/usage", key, period="92d").status_code == 200
    assert get(live_server, "/v2/usage", key, start="2026-01-01T00:00:00Z", end="2026-04-03T00:00:00Z").ok
    # group_by and tz: /v2/usage/detail only; tz canonical IANA names, exact case.
    error(get(live_server, "/v2/usage", key, period="1d", group_by="day"), 400)
    error(get(live_server, "/v2/usage", key, period="1d", tz="UTC"), 400)
    for tz in ("utc", "+05:00", "europe/berlin", "US/Eastern", "Nowhere/City"):
        error(get(live_server, "/v2/usage/detail", key, period="1d", group_by="day", tz=tz), 400)
    for tz in ("UTC", "Europe/Berlin"):
        assert get(live_server, "/v2/usage/detail", key, period="1d", group_by="day", tz=tz).ok
    error(get(live_server, "/v2/usage/detail", key, period="1d", group_by="week"), 400)
    error(get(live_server, "/v2/usage/detail", key, period="1d", group_by="model,day"), 400)
    error(get(live_server, "/v2/usage", None, period="1d"), 401)


def test_key_prefix_rules(live_server):
    key = live_server.create_key(email="team@example.com", usd=1.0)
    sibling = live_server.create_key(email="team@example.com", usd=0)
    mgmt = live_server.create_key(email="team@example.com", usd=0, management=True)
    stranger = live_server.create_key(email="else@example.com", usd=1.0)
    chat(live_server, key)
    wait_for(lambda: get(live_server, "/v2/usage", key, period="1h").json()["requests"] == 1)
    # Regular key: its own prefix fine, another key's (even a sibling's) 403.
    assert get(live_server, "/v2/usage", key, period="1h", key_prefix=key[:8]).json()["requests"] == 1
    for path in ("/v2/usage", "/v2/usage/detail", "/v2/logs"):
        error(get(live_server, path, sibling, period="1h", key_prefix=key[:8]), 403)
        error(get(live_server, path, stranger, period="1h", key_prefix=key[:8]), 403)
        # Management key: any key of its account; another account's or unknown prefix: 404.
        assert get(live_server, path, mgmt, period="1h", key_prefix=key[:8]).status_code == 200
        error(get(live_server, path, mgmt, period="1h", key_prefix=stranger[:8]), 404)
        error(get(live_server, path, mgmt, period="1h", key_prefix="ffffffff"), 404)
    body = get(live_server, "/v2/usage", mgmt, period="1h", key_prefix=key[:8]).json()
    assert body["requests"] == 1 and body["api_key_prefix"] == key[:8]
    own = get(live_server, "/v2/usage", mgmt, period="1h").json()  # a management key's own spend: none
    assert own["requests"] == 0 and own["api_key_prefix"] is None
