"""/v2/logs: one row per request (failed ones with zero cost), filters and pagination."""

from __future__ import annotations

from tests.billing.helpers import chat, check, error, get, wait_for
from tests.fakes.openai_server import Scripted

P = "/v2/logs"


def _rows(server, key, **params):
    return check(get(server, P, key, period="1h", **params), "logs-v2.json", P)


def test_logs_rows_and_filters(live_server, openai_upstream):
    key = live_server.create_key(email="logs@example.com", usd=1.0)
    ok = chat(live_server, key, "alpha beta", headers={"X-Client-Request-Id": "order-1"})
    chain = chat(live_server, key, "gamma", model="mock/chain")
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "boom"}}))
    failed = chat(live_server, key, "delta", headers={"X-Client-Request-Id": "order-2"})
    assert failed.status_code >= 500
    bad_crid = chat(live_server, key, "eps", headers={"X-Client-Request-Id": "has spaces!"})
    wait_for(lambda: _rows(live_server, key)["pagination"]["total"] == 4)

    body = _rows(live_server, key)
    rows = body["data"]
    assert body["pagination"] == {"limit": 50, "offset": 0, "total": 4, "has_more": False}
    ids = [r.headers["x-inference-id"] for r in (bad_crid, failed, chain, ok)]
    assert [r["inference_id"] for r in rows] == ids  # newest first
    first = rows[3]
    assert first["status"] == "succeeded" and first["origin"] == "api" and first["model"] == "mock/echo"
    assert first["client_request_id"] == "order-1"
    assert first["cost"]["credits"] == int(ok.headers["x-aimlapi-credits-used"]) > 0
    assert first["tokens"]["total"] == first["tokens"]["input"] + first["tokens"]["output"]
    assert rows[1]["status"] == "failed" and rows[1]["cost"] == {"usd": 0, "credits": 0}
    assert rows[0]["client_request_id"] is None  # invalid header silently dropped

    def ids_of(**params):
        return [r["inference_id"] for r in _rows(live_server, key, **params)["data"]]

    assert ids_of(status="failed") == [ids[1]]
    assert ids_of(status=["succeeded", "failed"]) == ids
    error(get(live_server, P, key, period="1h", status="succeeded,failed"), 400)
    error(get(live_server, P, key, period="1h", status="ok"), 400)
    assert ids_of(model="mock/chain") == [ids[2]]
    assert ids_of(model="echo") == [ids[0], ids[1], ids[3]]  # a bare alias matches exactly
    assert ids_of(model=["echo", "mock/chain"]) == ids
    assert ids_of(model="mock/echo,mock/chain") == []  # a comma list is one (unknown) name
    assert ids_of(client_request_id="order-2") == [ids[1]]
    assert ids_of(inference_id=ids[2]) == [ids[2]]
    assert ids_of(origin="api") == ids and ids_of(origin="playground") == []
    error(get(live_server, P, key, period="1h", origin="web"), 400)

    page = _rows(live_server, key, limit=3, offset=1)
    assert [r["inference_id"] for r in page["data"]] == ids[1:4]
    assert page["pagination"] == {"limit": 3, "offset": 1, "total": 4, "has_more": False}
    assert _rows(live_server, key, limit=2)["pagination"]["has_more"] is True
    for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "ten"}):
        error(get(live_server, P, key, period="1h", **params), 400)
    error(get(live_server, P, key, period="1h", model=[f"m{i}" for i in range(51)]), 400)
    # Another key of the same account sees only its own rows.
    other = live_server.create_key(email="logs@example.com", usd=0)
    assert _rows(live_server, other)["data"] == []
