"""``GET /models/metrics`` after real traffic through the gateway, validated against the vendored
AI/ML API spec: successful requests only, absent when none, ``aliases`` filters exactly."""

from __future__ import annotations

import requests

from tests.fakes.openai_server import Scripted
from tests.spec_helpers import response_schema, validate

SPEC = response_schema("model-metrics.json", "/models/metrics")


def chat(server, key, model, **extra):
    body = {"model": model, "messages": [{"role": "user", "content": "one two three"}], **extra}
    return requests.post(
        f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def metrics(server, query=""):
    return requests.get(f"{server.url}/models/metrics{query}", timeout=60)


def test_metrics_after_mixed_traffic(live_server, openai_upstream):
    empty = metrics(live_server)
    assert empty.status_code == 200
    validate(empty.json(), SPEC)
    assert empty.json()["models"] == [] and empty.json()["window_seconds"] == 300

    key = live_server.create_key()
    for _ in range(3):
        assert chat(live_server, key, "echo").status_code == 200
    streamed = chat(live_server, key, "mock/echo", stream=True)
    assert streamed.status_code == 200 and "[DONE]" in streamed.text
    # A model whose every request fails must be absent, not reported as zeros.
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "down"}}))
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "down"}}))
    assert chat(live_server, key, "mock/chain").status_code >= 500
    assert chat(live_server, key, "mock/unconfigured").status_code == 503

    body = metrics(live_server).json()  # no key needed
    validate(body, SPEC)
    (entry,) = body["models"]
    assert entry["alias"] == "mock/echo" and entry["endpoint"] == "/v1/chat/completions"
    figures = entry["metrics"]
    assert set(figures) == {"duration_ms", "tps", "ttft_ms"}  # ttft from the one streamed request
    assert figures["ttft_ms"]["p99"] <= figures["duration_ms"]["p99"] * 1.05
    d = figures["duration_ms"]
    assert 0 < d["p50"] <= d["p75"] <= d["p90"] <= d["p99"]
    assert body["generated_at"].endswith("Z")


def test_aliases_filter_exactly(live_server):
    key = live_server.create_key()
    assert chat(live_server, key, "echo").status_code == 200
    by_alias = metrics(live_server, "?aliases=echo").json()
    assert [m["alias"] for m in by_alias["models"]] == ["mock/echo"]
    by_id = metrics(live_server, "?aliases=mock/echo&aliases=google/gemini-2.5-pro").json()
    assert [m["alias"] for m in by_id["models"]] == ["mock/echo"]
    assert metrics(live_server, "?aliases=echo,mock/echo").json()["models"] == []  # not split
    assert metrics(live_server, "?aliases=nothing").json()["models"] == []
    bad = metrics(live_server, "?alias=echo")
    assert bad.status_code == 400 and "alias" in bad.json()["error"]["message"]
    many = metrics(live_server, "?" + "&".join(f"aliases=m{i}" for i in range(101)))
    assert many.status_code == 400 and many.json()["error"]["param"] == "aliases"
