"""The exact response cache on every door (docs/cache.md): a repeated request is answered from the
cache (no upstream call, the door's own shape, streams replayed as streams), only when asked, only
within one tenant, never for errors or n > 1, billed at the operator's hit price."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
import requests

from tests.cache.conftest import log_rows, wait_for_entries
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted

EXACT = {"x-modelgate-cache": "exact"}


def oai(server: LiveServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)


def chat(server: LiveServer, key: str, text: str = "one two three", **kw: Any) -> Any:
    return oai(server, key).chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": text}], extra_headers=EXACT, **kw
    )


def test_chat_hit_costs_nothing_and_says_what_it_saved(
    cache_server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    key = cache_server.create_key()
    first = chat(cache_server, key)
    assert "x-modelgate-cache" not in first.headers and first.headers["x-modelgate-provider"] == "mock"
    wait_for_entries(cache_server, 1)
    calls = len(openai_upstream.requests)
    second = chat(cache_server, key, user="someone-else")  # `user` does not change the answer
    assert len(openai_upstream.requests) == calls  # no upstream call
    assert second.headers["x-modelgate-cache"] == "hit:exact"
    assert second.headers["x-modelgate-provider"] == "cache"
    assert second.headers["x-aimlapi-credits-used"] == "0"
    a, b = first.parse(), second.parse()
    assert a.choices[0].message.content == b.choices[0].message.content == "one two three"
    assert a.id != b.id  # a new answer (its own id), the same content
    miss, hit = log_rows(cache_server, 2)
    assert miss.cache == "miss:exact" and miss.credits > 0 and miss.cache_saved_credits == 0
    assert hit.cache == "hit:exact" and hit.credits == 0 and hit.cache_saved_credits == miss.credits
    assert hit.provider == "cache" and hit.prompt_tokens == miss.prompt_tokens
    logs = requests.get(
        cache_server.url + "/v2/logs?period=1h", headers={"Authorization": f"Bearer {key}"}, timeout=10
    ).json()["data"]
    assert logs[0]["cache"] == {
        "result": "hit",
        "kind": "exact",
        "saved": {
            "usd": logs[0]["cache"]["saved"]["usd"],
            "credits": miss.cache_saved_credits or miss.credits,
        },
    }
    assert logs[1]["cache"]["result"] == "miss"
    metrics = requests.get(cache_server.url + "/metrics", timeout=60).text
    assert 'modelgate_cache_lookups_total{mode="exact",outcome="hit",kind="exact"} 1' in metrics
    assert f'modelgate_cache_saved_credits_total{{model="mock/echo"}} {miss.credits}' in metrics


def test_other_requests_miss(cache_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = cache_server.create_key()
    chat(cache_server, key)
    wait_for_entries(cache_server, 1)
    calls = len(openai_upstream.requests)
    chat(cache_server, key, text="one two four")  # another prompt
    chat(cache_server, key, temperature=0.5)  # another sampling parameter
    oai(cache_server, key).chat.completions.create(  # no header: the cache is not asked
        model="echo", messages=[{"role": "user", "content": "one two three"}]
    )
    oai(cache_server, key).chat.completions.create(  # asked off
        model="echo",
        messages=[{"role": "user", "content": "one two three"}],
        extra_headers={"x-modelgate-cache": "off"},
    )
    assert len(openai_upstream.requests) == calls + 4


def test_alias_and_id_share_an_entry(cache_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = cache_server.create_key()
    chat(cache_server, key)
    wait_for_entries(cache_server, 1)
    calls = len(openai_upstream.requests)
    again = oai(cache_server, key).chat.completions.with_raw_response.create(
        model="mock/echo", messages=[{"role": "user", "content": "one two three"}], extra_headers=EXACT
    )
    assert again.headers["x-modelgate-cache"] == "hit:exact" and len(openai_upstream.requests) == calls


def test_tenants_never_share(cache_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    mine = cache_server.create_key(email="a@example.com")
    theirs = cache_server.create_key(email="b@example.com")
    chat(cache_server, mine)
    wait_for_entries(cache_server, 1)
    calls = len(openai_upstream.requests)
    other = chat(cache_server, theirs)
    assert "x-modelgate-cache" not in other.headers and len(openai_upstream.requests) == calls + 1


def test_errors_and_n_above_one_are_not_kept(cache_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = cache_server.create_key()
    openai_upstream.script(Scripted(status=400, body={"error": {"message": "bad", "type": "invalid"}}))
    with pytest.raises(openai.BadRequestError):
        chat(cache_server, key)
    assert chat(cache_server, key).headers.get("x-modelgate-cache") is None  # the error was not kept
    wait_for_entries(cache_server, 1)
    calls = len(openai_upstream.requests)
    chat(cache_server, key, n=2)
    chat(cache_server, key, n=2)
    assert len(openai_upstream.requests) == calls + 2


def test_chat_stream_is_replayed_as_a_stream(cache_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = cache_server.create_key()
    client = oai(cache_server, key)

    def run() -> tuple[str, Any]:
        with client.chat.completions.with_streaming_response.create(
            model="echo",
            messages=[{"role": "user", "content": "alpha beta gamma"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=EXACT,
        ) as resp:
            chunks = list(resp.parse())
            headers = resp.headers
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return text, (headers, chunks[-1].usage)

    text, (headers, usage) = run()
    assert text.strip() == "alpha beta gamma" and "x-modelgate-cache" not in headers
    wait_for_entries(cache_server, 1)
    calls = len(openai_upstream.requests)
    again, (headers2, usage2) = run()
    assert again == text and headers2["x-modelgate-cache"] == "hit:exact"
    assert headers2["content-type"].startswith("text/event-stream")
    assert usage2.completion_tokens == usage.completion_tokens and len(openai_upstream.requests) == calls
    # a whole answer is not a stream's entry
    whole = chat(cache_server, key, text="alpha beta gamma")
    assert "x-modelgate-cache" not in whole.headers


def test_messages_whole_and_stream(cache_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = cache_server.create_key()
    client = anthropic.Anthropic(base_url=cache_server.url, api_key=key, max_retries=0)
    kw: dict[str, Any] = {
        "model": "echo",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hello there"}],
        "extra_headers": EXACT,
    }
    first = client.messages.with_raw_response.create(**kw)
    wait_for_entries(cache_server, 1)
    calls = len(openai_upstream.requests)
    second = client.messages.with_raw_response.create(**kw)
    assert second.headers["x-modelgate-cache"] == "hit:exact" and len(openai_upstream.requests) == calls
    assert second.parse().content[0].text == first.parse().content[0].text
    with client.messages.stream(**kw) as s:
        streamed = s.get_final_message()
    wait_for_entries(cache_server, 2)
    calls = len(openai_upstream.requests)
    with client.messages.stream(**kw) as s:
        kinds = [e.type for e in s]
        replayed = s.get_final_message()
    assert len(openai_upstream.requests) == calls
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert replayed.content[0].text == streamed.content[0].text  # type: ignore[union-attr]


def test_responses_whole_and_stream(cache_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = cache_server.create_key()
    client = oai(cache_server, key)
    first = client.responses.with_raw_response.create(
        model="echo", input="red green blue", extra_headers=EXACT
    )
    wait_for_entries(cache_server, 1)
    calls = len(openai_upstream.requests)
    second = client.responses.with_raw_response.create(
        model="echo", input="red green blue", extra_headers=EXACT
    )
    assert second.headers["x-modelgate-cache"] == "hit:exact" and len(openai_upstream.requests) == calls
    a, b = first.parse(), second.parse()
    assert a.output_text == b.output_text == "red green blue" and a.id != b.id
    assert client.responses.retrieve(b.id).output_text == "red green blue"  # stored as any answer
    events = [
        e.type for e in client.responses.create(model="echo", input="cyan", stream=True, extra_headers=EXACT)
    ]
    wait_for_entries(cache_server, 2)
    calls = len(openai_upstream.requests)
    replay = list(client.responses.create(model="echo", input="cyan", stream=True, extra_headers=EXACT))
    assert [e.type for e in replay] == events and len(openai_upstream.requests) == calls
    assert replay[-1].type == "response.completed" and replay[-1].response.output_text.strip() == "cyan"


def test_embeddings(cache_server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = cache_server.create_key()
    client = oai(cache_server, key)
    first = client.embeddings.with_raw_response.create(
        model="fake/embed", input=["a b", "c"], extra_headers=EXACT
    )
    wait_for_entries(cache_server, 1)
    calls = len(openai_upstream.requests)
    second = client.embeddings.with_raw_response.create(
        model="fake/embed", input=["a b", "c"], extra_headers=EXACT
    )
    assert second.headers["x-modelgate-cache"] == "hit:exact" and len(openai_upstream.requests) == calls
    assert [d.embedding for d in second.parse().data] == [d.embedding for d in first.parse().data]


def test_hit_price_is_the_operators(make_cache_server: Any) -> None:
    server = make_cache_server(cache_hit_percent=50, cache_mode="exact")  # and on by default
    key = server.create_key()
    client = oai(server, key)
    for _ in range(2):
        last = client.chat.completions.with_raw_response.create(
            model="echo", messages=[{"role": "user", "content": "one two three four"}]
        )
        wait_for_entries(server, 1)
    assert last.headers["x-modelgate-cache"] == "hit:exact"
    miss, hit = log_rows(server, 2)
    assert hit.credits == miss.credits // 2 and hit.cache_saved_credits == miss.credits - hit.credits
    assert int(last.headers["x-aimlapi-credits-used"]) == hit.credits


def test_bad_headers_are_400s(cache_server: LiveServer) -> None:
    key = cache_server.create_key()
    for headers in (
        {"x-modelgate-cache": "always"},
        {"x-modelgate-cache": "exact", "x-modelgate-cache-ttl": "-5"},
    ):
        r = requests.post(
            cache_server.url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}", **headers},
            json={"model": "echo", "messages": [{"role": "user", "content": "x"}]},
            timeout=10,
        )
        assert r.status_code == 400 and "x-modelgate-cache" in r.json()["error"]["message"]


def test_redis_keeps_exact_entries_with_their_ttl(
    make_cache_server: Any, openai_upstream: FakeOpenAI, redis_prefix: str
) -> None:
    import time

    import redis

    from tests.conftest import REDIS_URL

    server = make_cache_server(redis_url=REDIS_URL, redis_prefix=redis_prefix)
    key = server.create_key()
    headers = {**EXACT, "x-modelgate-cache-ttl": "120"}
    oai(server, key).chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "kept in redis"}], extra_headers=headers
    )
    r = redis.Redis.from_url(REDIS_URL)
    deadline = time.monotonic() + 20
    while not (kept := list(r.scan_iter(match=f"{redis_prefix}cache:*"))):
        assert time.monotonic() < deadline, "nothing kept in Redis"
        time.sleep(0.02)
    assert len(kept) == 1 and 100 < r.pttl(kept[0]) <= 120_000  # the request's TTL
    assert kept[0].decode().startswith(f"{redis_prefix}cache:a")  # namespaced by account
    calls = len(openai_upstream.requests)
    again = oai(server, key).chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": "kept in redis"}], extra_headers=EXACT
    )
    assert again.headers["x-modelgate-cache"] == "hit:exact" and len(openai_upstream.requests) == calls
    r.delete(*kept)  # gone from Redis: a miss again (the database holds no exact entry)
    third = chat(server, key, text="kept in redis")
    assert "x-modelgate-cache" not in third.headers and len(openai_upstream.requests) == calls + 1
    r.close()


def test_ttl_header_sets_the_entry_lifetime(cache_server: LiveServer) -> None:
    import asyncio
    import time

    from sqlalchemy import select

    from modelgate.store.db import Database
    from modelgate.store.schema_responses import CachedResponse

    key = cache_server.create_key()
    oai(cache_server, key).chat.completions.create(
        model="echo",
        messages=[{"role": "user", "content": "short-lived"}],
        extra_headers={**EXACT, "x-modelgate-cache-ttl": "60"},
    )
    wait_for_entries(cache_server, 1)

    async def expiry() -> float:
        db = Database(cache_server.settings.database_url)
        try:
            async with db.engine.connect() as conn:
                return float((await conn.execute(select(CachedResponse.expires_at))).scalar_one())
        finally:
            await db.aclose()

    left = asyncio.run(expiry()) - time.time()
    assert 0 < left <= 60


def test_a_keys_policy_applies_when_the_request_says_nothing(
    cache_server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    mgmt = cache_server.create_key(email="owner@example.com", management=True, name="mgmt")
    url = f"{cache_server.url}/v1/keys"
    auth = {"Authorization": f"Bearer {mgmt}"}
    r = requests.post(url, headers=auth, json={"name": "cached", "cache": "exact"}, timeout=60)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    key, prefix = data["key"], data["prefix"]
    assert data["cache"] == "exact"
    client = oai(cache_server, key).chat.completions
    plain = {"model": "echo", "messages": [{"role": "user", "content": "by policy"}]}
    client.create(**plain)  # no header: the key's policy
    wait_for_entries(cache_server, 1)
    calls = len(openai_upstream.requests)
    assert client.with_raw_response.create(**plain).headers["x-modelgate-cache"] == "hit:exact"
    off = client.with_raw_response.create(**plain, extra_headers={"x-modelgate-cache": "off"})
    assert "x-modelgate-cache" not in off.headers  # the request's header wins
    assert len(openai_upstream.requests) == calls + 1
    r = requests.patch(f"{url}/{prefix}", headers=auth, json={"cache": None}, timeout=60)
    assert r.status_code == 200 and r.json()["data"]["cache"] is None
    assert "x-modelgate-cache" not in client.with_raw_response.create(**plain).headers
    bad = requests.patch(f"{url}/{prefix}", headers=auth, json={"cache": "always"}, timeout=60)
    assert bad.status_code == 400
