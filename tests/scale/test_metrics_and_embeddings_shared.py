"""Two instances sharing PostgreSQL and Redis: ``GET /models/metrics`` on each reports the traffic of
both (a model failing on either is absent from both), and embeddings billing stays exact."""

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
        bodies = [requests.get(f"{s.url}/models/metrics", timeout=60).json() for s in (a, b)]
        seen = [{m["alias"] for m in body["models"]} for body in bodies]
        if all(s == want for s in seen) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert seen == [want, want]
    for body in bodies:
        validate(body, SPEC)
    assert [m["metrics"] for m in bodies[0]["models"]] == [m["metrics"] for m in bodies[1]["models"]]
    only = requests.get(f"{b.url}/models/metrics", params=[("aliases", "echo")], timeout=60).json()
    assert [m["alias"] for m in only["models"]] == ["mock/echo"]


def test_embeddings_budget_exact_across_instances(cluster, openai_upstream, monkeypatch):
    """The built-in text-embedding-3-small (pointed at the fake) on two instances, a balance for a
    few holds only: refusals, never an overspend, and the books balance to the credit."""
    import asyncio

    import httpx

    from tests.books import books as read
    from tests.scale.test_multi_instance import _wait_settled

    monkeypatch.setenv("OPENAI_BASE_URL", openai_upstream.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    openai_upstream.embed_dims = 1536
    a, b = cluster(2)
    email = "embed-scale@example.com"
    key = a.create_key(email=email, usd=0.0001)  # 200 credits; a hold is ~41
    text = " ".join(["word"] * 40)  # 199 bytes: held as 201 tokens, charged as 40

    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return list(
                await asyncio.gather(
                    *(
                        client.post(
                            f"{(a, b)[i % 2].url}/v1/embeddings",
                            json={"model": "text-embedding-3-small", "input": [text] * 5},
                            headers={"Authorization": f"Bearer {key}"},
                        )
                        for i in range(30)
                    )
                )
            )

    responses = asyncio.run(fire())
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 403}, codes
    assert 0 < codes.count(200) < 30
    books = _wait_settled(a.settings.database_url, email, len(codes))
    books.assert_exact()
    charged = sum(int(r.headers["x-aimlapi-credits-used"]) for r in responses if r.status_code == 200)
    assert charged == books.charged == 8 * codes.count(200)  # 200 tokens x $0.02/M = 8 credits
    assert read(a.settings.database_url, email=email) == books
