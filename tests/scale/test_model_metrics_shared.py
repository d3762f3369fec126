"""``GET /models/metrics`` on two instances sharing Redis: each reports the traffic of both, and a
model failing on either is absent from both."""

from __future__ import annotations

import time

import pytest
import requests

from tests.fakes.openai_server import Scripted
from tests.spec_helpers import response_schema, validate

pytestmark = pytest.mark.postgres
SPEC = response_schema("model-metrics.json", "/models/metrics")


def chat(url, key, model):
    body = {"model": model, "messages": [{"role": "user", "content": "hi there"}]}
    return requests.post(
        f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def test_two_instances_report_the_same_window(cluster, openai_upstream):
    a, b = cluster(2)
    key = a.create_key()
    for _ in range(2):
        assert chat(a.url, key, "echo").status_code == 200
        assert chat(b.url, key, "smollm2").status_code == 200
    openai_upstream.script(*[Scripted(status=500, body={"error": {"message": "down"}})] * 2)
    assert chat(b.url, key, "mock/chain").status_code >= 500

    want = {"mock/echo", "local/smollm2-135m-instruct"}
    deadline = time.monotonic() + 30  # instances share their counts about once a second
    while True:
        bodies = [requests.get(f"{s.url}/models/metrics", timeout=10).json() for s in (a, b)]
        seen = [{m["alias"] for m in body["models"]} for body in bodies]
        if all(s == want for s in seen) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert seen == [want, want]
    for body in bodies:
        validate(body, SPEC)
    assert [m["metrics"] for m in bodies[0]["models"]] == [m["metrics"] for m in bodies[1]["models"]]
    only = requests.get(f"{b.url}/models/metrics", params=[("aliases", "echo")], timeout=10).json()
    assert [m["alias"] for m in only["models"]] == ["mock/echo"]
