"""The Responses door on a chat route (the OpenAI-compatible fake): the official ``openai`` SDK's
Responses client against modelgate, translated to chat and back, event by event."""

from __future__ import annotations

import math
from typing import Any

import openai
import pytest
import requests
from pydantic import BaseModel

from tests.conftest import LiveServer
from tests.doors.responses.spec import check, check_events, check_response, parse_sse
from tests.fakes.openai_server import FakeOpenAI, Scripted


def credits(prompt: int, output: int) -> int:  # mock/echo: $1 in, $2 out per Mtok
    return math.ceil(round((prompt * 1.0 + output * 2.0) * 2, 6))


def chat_body(
    message: dict[str, Any], finish: str = "stop", usage: tuple[int, int] = (20, 7)
) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }


WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
WEATHER_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"SF"}'},
}


def test_create_translates_and_renders(
    server: LiveServer, client: openai.OpenAI, openai_upstream: FakeOpenAI
) -> None:
    raw = client.responses.with_raw_response.create(
        model="echo",
        instructions="Be brief.",
        input="one two three",
        max_output_tokens=64,
        temperature=0.5,
        metadata={"k": "v"},
        store=False,
    )
    resp = raw.parse()
    assert resp.object == "response" and resp.status == "completed" and resp.model == "echo"
    assert resp.output_text == "one two three"
    assert resp.usage is not None and resp.usage.input_tokens == 11 and resp.usage.output_tokens == 3
    assert resp.usage.output_tokens_details.reasoning_tokens == 0
    assert resp.metadata == {"k": "v"} and resp.instructions == "Be brief."
    body = raw.http_response.json()
    check_response(body)
    assert body["meta"]["usage"]["credits_used"] == credits(11, 3)
    assert raw.headers["x-aimlapi-credits-used"] == str(credits(11, 3))
    assert body["id"] == f"resp_{raw.headers['x-inference-id']}"
    sent = openai_upstream.requests[-1]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one two three"},
    ]
    assert sent["max_tokens"] == 64 and sent["temperature"] == 0.5 and sent["model"] == "mock-model"


def test_stream_events_validate_and_arrive_in_order(server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    openai_upstream.script(Scripted(reasoning="let me think", text="alpha beta"))
    key = server.create_key()
    r = requests.post(
        f"{server.url}/v1/responses",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "echo", "input": "hi", "stream": True, "reasoning": {"effort": "low"}},
        timeout=30,
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.content)
    check_events(events)
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert "response.reasoning_summary_text.delta" in kinds and "response.output_text.delta" in kinds
    final = events[-1]["response"]
    assert events[-1]["type"] == "response.completed" and final["status"] == "completed"
    assert [i["type"] for i in final["output"]] == ["reasoning", "message"]
    assert final["output"][0]["summary"][0]["text"] == "let me think"
    assert final["output"][1]["content"][0]["text"].strip() == "alpha beta"
    assert final["usage"]["input_tokens"] == 11 and final["meta"]["usage"]["credits_used"] > 0
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == final["output"][1]["content"][0]["text"]
    assert openai_upstream.requests[-1]["reasoning_effort"] == "low"


def test_sdk_stream_helper(client: openai.OpenAI, openai_upstream: FakeOpenAI) -> None:
    with client.responses.stream(model="echo", input="red green blue") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas).strip() == "red green blue"
    assert final.status == "completed" and final.output_text.strip() == "red green blue"
    assert final.usage is not None and final.usage.output_tokens == 3


class City(BaseModel):
    name: str
    population: int


def test_parse_with_a_pydantic_model(client: openai.OpenAI, openai_upstream: FakeOpenAI) -> None:
    openai_upstream.script(Scripted(text='{"name": "Paris", "population": 2100000}'))
    resp = client.responses.parse(model="echo", input="Largest French city?", text_format=City)
    assert resp.output_parsed == City(name="Paris", population=2100000)
    fmt = openai_upstream.requests[-1]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "City"
    assert fmt["json_schema"]["strict"] is True and "population" in fmt["json_schema"]["schema"]["properties"]


def test_function_call_then_output_turn(
    server: LiveServer, client: openai.OpenAI, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.script(
        Scripted(body=chat_body({"content": None, "tool_calls": [WEATHER_CALL]}, "tool_calls"))
    )
    first = client.responses.create(
        model="echo",
        input="Weather in SF?",
        tools=[WEATHER_TOOL, {"type": "web_search"}],  # type: ignore[list-item]
        tool_choice="required",
    )
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id == "call_1"
    assert call.arguments == '{"city":"SF"}'
    sent = openai_upstream.requests[-1]
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"] and sent[
        "tool_choice"
    ] == "required"
    second = client.responses.create(
        model="echo",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": "call_1", "output": "sunny, 21C"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    assert second.status == "completed" and second.previous_response_id == first.id
    messages = openai_upstream.requests[-1]["messages"]
    assert messages[0] == {"role": "user", "content": "Weather in SF?"}
    assert messages[1]["role"] == "assistant" and messages[1]["tool_calls"][0]["id"] == "call_1"
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"}


def test_hosted_tools_are_left_out_and_named(server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    key = server.create_key()
    r = requests.post(
        f"{server.url}/v1/responses",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": "echo",
            "input": "search",
            "tools": [
                {"type": "web_search"},
                {"type": "file_search", "vector_store_ids": ["vs_1"]},
                {"type": "mcp", "server_label": "deepwiki", "server_url": "https://x"},
                {"type": "custom", "name": "apply_patch"},
            ],
            "tool_choice": {"type": "web_search"},
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert (
        r.headers["x-modelgate-dropped-tools"] == "web_search, file_search, mcp:deepwiki, custom:apply_patch"
    )
    sent = openai_upstream.requests[-1]
    assert "tools" not in sent and "tool_choice" not in sent
    assert r.json()["tools"] == []


def test_previous_response_id_chain_and_state_endpoints(
    server: LiveServer, client: openai.OpenAI, openai_upstream: FakeOpenAI
) -> None:
    first = client.responses.create(model="echo", input="I am Ada", instructions="system one")
    second = client.responses.create(model="echo", input="who am I", previous_response_id=first.id)
    third = client.responses.create(
        model="echo",
        previous_response_id=second.id,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "again"}]}],
    )
    messages = openai_upstream.requests[-1]["messages"]
    # instructions are not carried over (as on OpenAI); the whole conversation is
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == "I am Ada" and messages[3]["content"] == "who am I"
    got = client.responses.retrieve(third.id)
    assert got.id == third.id and got.output_text == third.output_text
    check_response(
        requests.get(
            f"{server.url}/v1/responses/{third.id}",
            headers={"Authorization": f"Bearer {client.api_key}"},
            timeout=10,
        ).json()
    )
    items = client.responses.input_items.list(third.id)
    assert [i.type for i in items.data] == ["message"] and items.data[0].content[0].text == "again"  # type: ignore[union-attr]
    page = requests.get(
        f"{server.url}/v1/responses/{first.id}/input_items?order=asc",
        headers={"Authorization": f"Bearer {client.api_key}"},
        timeout=10,
    ).json()
    check("ResponseItemList", page)
    client.responses.delete(second.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(second.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.create(model="echo", input="x", previous_response_id=second.id)
    assert gone.value.body["param"] == "previous_response_id"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as cancel:
        client.responses.cancel(third.id)
    assert "background" in cancel.value.message


def test_responses_belong_to_their_account(server: LiveServer, client: openai.OpenAI) -> None:
    mine = client.responses.create(model="echo", input="secret")
    other = openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=server.create_key(email="other@example.com"), max_retries=0
    )
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="echo", input="x", previous_response_id=mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.input_items.list(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(mine.id)
    assert client.responses.retrieve(mine.id).id == mine.id


def test_input_items_pages(server: LiveServer, client: openai.OpenAI) -> None:
    items = [{"role": "user", "content": f"part {i}"} for i in range(5)]
    resp = client.responses.create(model="echo", input=items)  # type: ignore[arg-type]
    first = client.responses.input_items.list(resp.id, limit=2, order="asc")
    assert [i.content[0].text for i in first.data] == ["part 0", "part 1"] and first.has_more  # type: ignore[union-attr]
    texts = [i.content[0].text for i in client.responses.input_items.list(resp.id, limit=2, order="asc")]  # type: ignore[union-attr]
    assert texts == [f"part {i}" for i in range(5)]  # the SDK pages on with after=last_id
    newest = client.responses.input_items.list(resp.id, limit=1)
    assert newest.data[0].content[0].text == "part 4"  # type: ignore[union-attr]


def test_store_false_keeps_nothing(client: openai.OpenAI) -> None:
    resp = client.responses.create(model="echo", input="ephemeral", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(resp.id)


def test_cut_by_max_output_tokens_is_incomplete(
    server: LiveServer, client: openai.OpenAI, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.script(Scripted(text="a b c", finish_reason="length"))
    resp = client.responses.create(model="echo", input="long", max_output_tokens=16)
    assert resp.status == "incomplete" and resp.incomplete_details is not None
    assert resp.incomplete_details.reason == "max_output_tokens"
    openai_upstream.script(Scripted(text="a b c", finish_reason="length"))
    key = server.create_key()
    r = requests.post(
        f"{server.url}/v1/responses",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "echo", "input": "long", "stream": True, "max_output_tokens": 16},
        timeout=30,
    )
    events = parse_sse(r.content)
    check_events(events)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_upstream_failure_mid_stream_is_error_then_failed(
    server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    openai_upstream.script(Scripted(text="one two three four", reset_after_chunks=2))
    key = server.create_key()
    r = requests.post(
        f"{server.url}/v1/responses",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "echo", "input": "x", "stream": True},
        timeout=30,
    )
    events = parse_sse(r.content)
    check_events(events)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1]["response"]["status"] == "failed"
    assert events[-1]["response"]["error"]["code"] == "server_error"


def test_typed_errors(server: LiveServer, client: openai.OpenAI) -> None:
    bad_key = openai.OpenAI(base_url=f"{server.url}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.responses.create(model="echo", input="x")
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="no/such-model", input="x")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model="echo", input=[{"type": "bogus_item"}])  # type: ignore[list-item]
    assert bad.value.body["param"] == "input[0].type"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as background:
        client.responses.create(model="echo", input="x", background=True)
    assert background.value.body["param"] == "background"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as temp:
        client.responses.create(model="echo", input="x", temperature=3)
    assert temp.value.body["param"] == "temperature"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as prev:
        client.responses.create(model="echo", input="x", previous_response_id="resp_unknown")
    assert prev.value.code == "previous_response_not_found"
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="echo", input="x", max_output_tokens=10**9)


def test_item_reference_resolves_stored_items(client: openai.OpenAI, openai_upstream: FakeOpenAI) -> None:
    openai_upstream.script(
        Scripted(body=chat_body({"content": None, "tool_calls": [WEATHER_CALL]}, "tool_calls"))
    )
    first = client.responses.create(model="echo", input="Weather?", tools=[WEATHER_TOOL])  # type: ignore[list-item]
    call_id = first.output[0].id
    client.responses.create(
        model="echo",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        input=[
            {"role": "user", "content": "Weather?"},
            {"type": "item_reference", "id": call_id},
            {"type": "function_call_output", "call_id": "call_1", "output": "rain"},
        ],  # type: ignore[list-item]
    )
    messages = openai_upstream.requests[-1]["messages"]
    assert messages[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"SF"}'}
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="echo", input=[{"type": "item_reference", "id": "fc_nope"}])  # type: ignore[list-item]
