"""``POST /v1/responses/compact`` (``client.responses.compact``): passed through to a native Responses
upstream's own compaction; done by the gateway on translated routes (the routed model writes the
summary, sealed into the ``compaction`` item, which a later request turns back into the summary).
Charged as a model call, exactly."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import openai
import orjson
import pytest
import requests

from modelgate.doors.responses.compact import PROMPT
from modelgate.doors.responses.translate import SUMMARY_PREFIX
from tests.books import Books, read_books
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.fakes.responses_server import ResponsesFake

SUMMARY = "The user wants a landing page for a dog cafe; a first draft was written."
CONVERSATION: list[Any] = [
    {"role": "user", "content": "Create a simple landing page for a dog petting cafe."},
    {
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "id": "msg_001",
        "content": [{"type": "output_text", "text": "Here is the page: <html>...</html>", "annotations": []}],
    },
    {"role": "user", "content": [{"type": "input_text", "text": "Make it blue."}]},
]


def credits(prompt: int, output: int) -> int:  # mock/echo and openai/gpt-fake: $1 in, $2 out per Mtok
    return math.ceil(round((prompt * 1.0 + output * 2.0) * 2, 6))


def _books(server: LiveServer, email: str, rid: str) -> Books:
    """The account's books once the compaction's charge is committed (it is queued, not awaited)."""
    deadline = time.monotonic() + 20
    while True:
        books = asyncio.run(read_books(server.settings.database_url, email=email))
        if (rid in books.charges and books.holds == 0) or time.monotonic() > deadline:
            return books
        time.sleep(0.05)


def _output(raw: Any) -> list[dict[str, Any]]:
    """The compacted items as JSON (the SDK's output model types user messages as assistant ones)."""
    out: list[dict[str, Any]] = raw.http_response.json()["output"]
    return out


def test_translated_compaction_round_trip(server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    email = "compact@example.com"
    c = openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key(email=email), max_retries=0)
    openai_upstream.script(Scripted(text=SUMMARY, usage={"prompt_tokens": 40, "completion_tokens": 14}))
    raw = c.responses.with_raw_response.compact(model="echo", input=CONVERSATION, instructions="Be brief.")
    compacted = raw.parse()
    assert compacted.object == "response.compaction" and compacted.id.startswith("resp_")
    # The summary was asked of the routed model: the conversation, then the compaction instruction.
    asked = openai_upstream.requests[-1]
    assert asked["model"] == "mock-model" and asked["stream"] is False
    assert asked["messages"][0] == {"role": "system", "content": "Be brief."}
    assert asked["messages"][-1] == {"role": "user", "content": PROMPT}
    assert [m["role"] for m in asked["messages"]] == ["system", "user", "assistant", "user", "user"]
    # The answer: the user's messages, then one compaction item with the sealed summary.
    assert len(compacted.output) == 3
    items = _output(raw)
    assert [i["type"] for i in items] == ["message", "message", "compaction"]
    assert [i["role"] for i in items[:2]] == ["user", "user"]
    assert items[0]["content"] == [{"type": "input_text", "text": CONVERSATION[0]["content"]}]
    sealed = items[2]["encrypted_content"]
    assert items[2]["id"].startswith("cmp_") and SUMMARY not in sealed and "dog" not in sealed
    assert compacted.usage.input_tokens == 40 and compacted.usage.output_tokens == 14
    charged = credits(40, 14)
    assert raw.headers["x-aimlapi-credits-used"] == str(charged)
    rid = raw.headers["x-inference-id"]
    books = _books(server, email, rid)
    books.assert_exact()
    assert books.charges[rid] == charged

    # The compacted window as the next request's input: the summary reaches the upstream.
    follow = c.responses.create(
        model="echo", input=[*items, {"role": "user", "content": "Now add a footer."}]
    )
    sent = openai_upstream.requests[-1]["messages"]
    assert {"role": "user", "content": SUMMARY_PREFIX + SUMMARY} in sent
    assert sent[-1] == {"role": "user", "content": "Now add a footer."}
    assert follow.output_text == "Now add a footer."
    c.close()


def test_a_tampered_or_foreign_compaction_is_a_400(server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    a = openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=server.create_key(email="a@example.com"), max_retries=0
    )
    b = openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=server.create_key(email="b@example.com"), max_retries=0
    )
    openai_upstream.script(Scripted(text="the secret plan of A"))
    items = _output(a.responses.with_raw_response.compact(model="echo", input="A's private conversation"))
    sealed = items[-1]["encrypted_content"]
    tampered = sealed[:-6] + ("AAAAAA" if not sealed.endswith("AAAAAA") else "BBBBBB")
    before = len(openai_upstream.requests)
    for client, content in ((a, tampered), (b, sealed), (a, "gAAAA-from-openai")):
        compaction = {**items[-1], "encrypted_content": content}
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="echo", input=[compaction, {"role": "user", "content": "go on"}])
        body = info.value.body
        assert isinstance(body, dict) and body.get("param") == "input[0].encrypted_content", body
        assert body.get("code") == "invalid_encrypted_content"
    assert len(openai_upstream.requests) == before  # refused before anything went upstream
    a.close()
    b.close()


def test_native_compaction_passes_through(server: LiveServer, responses_up: ResponsesFake) -> None:
    email = "native-compact@example.com"
    key = server.create_key(email=email)
    body = orjson.dumps({"model": "gpt-fake", "input": CONVERSATION, "future_field": [1]})
    r = requests.post(
        f"{server.url}/v1/responses/compact",
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    sent = responses_up.last
    assert sent.path == "/v1/responses/compact"
    assert sent.body == body.replace(b'"gpt-fake"', b'"gpt-fake-upstream"')
    assert r.content == responses_up.sent[-1]  # the upstream's answer, unchanged
    out = r.json()
    assert out["object"] == "response.compaction" and out["output"][-1]["type"] == "compaction"
    assert r.headers["x-aimlapi-credits-used"] == str(credits(30, 7))
    rid = r.headers["x-inference-id"]
    books = _books(server, email, rid)
    books.assert_exact()
    assert books.charges[rid] == credits(30, 7)
    # Its compaction item goes back to the native upstream unchanged (the upstream's own).
    c = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    c.responses.create(model="gpt-fake", input=[*out["output"], {"role": "user", "content": "more"}])
    forwarded = orjson.loads(responses_up.last.body)["input"]
    assert forwarded[-2] == out["output"][-1]
    c.close()


def test_compaction_errors(server: LiveServer, client: openai.OpenAI) -> None:
    auth = {"Authorization": f"Bearer {client.api_key}"}
    url = f"{server.url}/v1/responses/compact"
    streamed = requests.post(
        url, headers=auth, json={"model": "echo", "input": "hi", "stream": True}, timeout=30
    )
    assert streamed.status_code == 400 and streamed.json()["error"]["param"] == "stream"
    with pytest.raises(openai.NotFoundError):
        client.responses.compact(model="no-such-model", input="hi")
    bad = requests.post(url, headers=auth, json={"model": "echo", "input": [{"content": "x"}]}, timeout=30)
    assert bad.status_code == 400 and "input[0].type" in bad.json()["error"]["message"], bad.text
    with pytest.raises(openai.NotFoundError):
        client.responses.compact(model="echo", input="hi", previous_response_id="resp_nope")


def test_compaction_of_a_stored_conversation(client: openai.OpenAI, openai_upstream: FakeOpenAI) -> None:
    first = client.responses.create(model="echo", input="the first question")
    openai_upstream.script(Scripted(text="they asked two questions"))
    raw = client.responses.with_raw_response.compact(
        model="echo", input="the second question", previous_response_id=first.id
    )
    asked = openai_upstream.requests[-1]["messages"]
    assert [m["content"] for m in asked[:3]] == [
        "the first question",
        "the first question",
        "the second question",
    ]
    users = [i["content"][0]["text"] for i in _output(raw) if i["type"] == "message"]
    assert users == ["the first question", "the second question"]
