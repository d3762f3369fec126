"""The Responses door on Gemini and Anthropic routes (their own protocols, faked at the protocol
level): the ``openai`` SDK's Responses client, translated to chat and then to each upstream."""

from __future__ import annotations

from typing import Any

import openai
import requests
from pydantic import BaseModel

from tests.conftest import LiveServer
from tests.doors.responses.spec import check_events, check_response, parse_sse
from tests.fakes import Reply, load
from tests.fakes.anthropic_server import AnthropicFake, anthropic_sse
from tests.fakes.gemini_server import GeminiFake, gemini_sse


def gemini_reply(
    parts: list[dict[str, Any]], *, prompt: int = 9, out: int = 5, finish: str = "STOP"
) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": out,
            "totalTokenCount": prompt + out,
        },
        "modelVersion": "gemini-2.5-flash",
    }


class Answer(BaseModel):
    city: str
    year: int


TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


def test_gemini_create_stream_and_chain(client: openai.OpenAI, gemini_up: GeminiFake) -> None:
    gemini_up.add(Reply(body=load("gemini_text.json")))
    raw = client.responses.with_raw_response.create(model="gemini-fake", input="What about mankind?")
    resp = raw.parse()
    check_response(raw.http_response.json())
    assert [i.type for i in resp.output] == ["reasoning", "message"]
    assert resp.output_text.startswith("That's one of the biggest questions")
    assert resp.usage is not None and resp.usage.input_tokens == 24
    assert resp.usage.output_tokens_details.reasoning_tokens == 1339
    gemini_up.add(gemini_sse(load("gemini_stream_text.json")))
    with client.responses.stream(model="gemini-fake", input="again", previous_response_id=resp.id) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in kinds and final.output_text
    contents = gemini_up.last.json["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[0]["parts"][0]["text"] == "What about mankind?"


def test_gemini_parse_and_function_calling(client: openai.OpenAI, gemini_up: GeminiFake) -> None:
    gemini_up.add(Reply(body=gemini_reply([{"text": '{"city": "Rome", "year": 753}'}])))
    parsed = client.responses.parse(model="gemini-fake", input="Founding?", text_format=Answer)
    assert parsed.output_parsed == Answer(city="Rome", year=753)
    config = gemini_up.last.json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    gemini_up.add(Reply(body=load("gemini_function_call.json")))
    first = client.responses.create(model="gemini-fake", input="Weather and time in Paris?", tools=[TOOL])  # type: ignore[list-item]
    calls = [i for i in first.output if i.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert calls[0].arguments == '{"location":"Paris","unit":"celsius"}'
    gemini_up.add(Reply(body=gemini_reply([{"text": "It is 18C and noon."}])))
    second = client.responses.create(
        model="gemini-fake",
        previous_response_id=first.id,
        input=[
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "18C"},
            {"type": "function_call_output", "call_id": calls[1].call_id, "output": "noon"},
        ],
        tools=[TOOL],  # type: ignore[list-item]
    )
    assert second.output_text == "It is 18C and noon."
    contents = gemini_up.last.json["contents"]
    model_turn = contents[1]["parts"]
    assert [p["functionCall"]["name"] for p in model_turn] == ["get_weather", "get_time"]
    responses = [p["functionResponse"]["name"] for p in contents[2]["parts"]]
    assert responses == ["get_weather", "get_time"]


def test_gemini_stream_events_validate(server: LiveServer, gemini_up: GeminiFake) -> None:
    gemini_up.add(gemini_sse(load("gemini_stream_function_call.json")))
    key = server.create_key()
    r = requests.post(
        f"{server.url}/v1/responses",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "gemini-fake", "input": "weather?", "stream": True, "tools": [TOOL]},
        timeout=30,
    )
    events = parse_sse(r.content)
    check_events(events)
    final = events[-1]["response"]
    assert any(i["type"] == "function_call" for i in final["output"])


def test_anthropic_create_stream_and_tool_turn(client: openai.OpenAI, anthropic_up: AnthropicFake) -> None:
    anthropic_up.add(Reply(body=load("anthropic_text.json")))
    resp = client.responses.create(
        model="claude-fake", input="Hello", instructions="Be kind.", max_output_tokens=300
    )
    assert resp.status == "completed" and resp.output_text
    sent = anthropic_up.last.json
    assert sent["system"] == "Be kind." and sent["max_tokens"] == 300
    assert sent["model"] == "claude-sonnet-4-5-20250929"
    anthropic_up.add(anthropic_sse(load("anthropic_stream_text.json")))
    with client.responses.stream(model="claude-fake", input="Hi") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text and final.output_text == text and final.usage is not None
    anthropic_up.add(Reply(body=load("anthropic_tool_use.json")))
    first = client.responses.create(model="claude-fake", input="Weather?", tools=[TOOL])  # type: ignore[list-item]
    call = next(i for i in first.output if i.type == "function_call")
    anthropic_up.add(Reply(body=load("anthropic_text.json")))
    client.responses.create(
        model="claude-fake",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[TOOL],  # type: ignore[list-item]
    )
    messages = anthropic_up.last.json["messages"]
    assert messages[1]["role"] == "assistant" and messages[1]["content"][-1]["type"] == "tool_use"
    result = messages[2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == call.call_id


def test_anthropic_stream_events_validate(server: LiveServer, anthropic_up: AnthropicFake) -> None:
    anthropic_up.add(anthropic_sse(load("anthropic_stream_tool_use.json")))
    key = server.create_key()
    r = requests.post(
        f"{server.url}/v1/responses",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "claude-fake", "input": "weather?", "stream": True, "tools": [TOOL]},
        timeout=30,
    )
    events = parse_sse(r.content)
    check_events(events)
    final = events[-1]["response"]
    call = next(i for i in final["output"] if i["type"] == "function_call")
    assert call["status"] == "completed" and call["arguments"]
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert done["arguments"] == call["arguments"]
