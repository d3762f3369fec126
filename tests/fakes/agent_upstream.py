"""A scripted upstream that drives a real coding agent through a multi-step tool task, in the dialect
each request arrives in: Anthropic Messages (``/v1/messages``), OpenAI chat
(``/v1/chat/completions``), OpenAI Responses (``/v1/responses``) and Gemini
(``/v1beta/models/{model}:generateContent`` / ``:streamGenerateContent``), streamed or whole.

The task is a plan: tool calls (``Step(tool, args)``) and then a final text. Which step a request is
at is read from its own conversation — the number of tool results it carries (``tool_result``
blocks, ``role: tool`` messages, ``function_call_output`` items) — so the fake holds no state
between requests and any side request the agent makes (a title, a summary, a warm-up) is answered
with plain text: a request that offers none of the plan's tools never advances the plan. Every
tool result seen is kept in ``results`` (in order) for assertions.

    fake = AgentUpstream(plan=[Step("Read", {...}), Step("Edit", {...})], final="Done.")
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.server import RecordedRequest, ScriptedServer

Json = dict[str, Any]


@dataclass(slots=True)
class Step:
    tool: str
    args: Json


@dataclass(slots=True)
class Turn:
    """What one request asked for, read from its body in any dialect."""

    tools: set[str]
    results: list[str]
    stream: bool


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text(p.get("text") or p.get("content") or "") for p in content if isinstance(p, dict))
    return ""


def _gemini_turn(body: Json, stream: bool) -> Turn:
    tools = {
        d["name"]
        for t in body.get("tools") or []
        for d in t.get("functionDeclarations") or []
        if isinstance(d.get("name"), str)
    }
    results = [
        str(p["functionResponse"].get("response"))
        for c in body.get("contents") or []
        for p in c.get("parts") or []
        if isinstance(p.get("functionResponse"), dict)
    ]
    return Turn(tools, results, stream)


def read_turn(path: str, body: Json) -> Turn:
    if path.startswith("/v1beta/"):
        return _gemini_turn(body, path.endswith(":streamGenerateContent"))
    tools: set[str] = set()
    for tool in body.get("tools") or []:
        fn = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        if isinstance(fn.get("name"), str):
            tools.add(fn["name"])
        for inner in tool.get("tools") or []:  # a Responses namespace
            if isinstance(inner, dict) and isinstance(inner.get("name"), str):
                tools.add(inner["name"])
    results: list[str] = []
    if path.endswith("/messages"):
        for msg in body.get("messages") or []:
            for block in msg.get("content") if isinstance(msg.get("content"), list) else []:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    results.append(_text(block.get("content")))
    elif path.endswith("/chat/completions"):
        results = [_text(m.get("content")) for m in body.get("messages") or [] if m.get("role") == "tool"]
    else:
        items = body.get("input") if isinstance(body.get("input"), list) else []
        results = [_text(i.get("output")) for i in items if i.get("type") == "function_call_output"]
    return Turn(tools, results, bool(body.get("stream")))


class AgentUpstream(ScriptedServer):
    routes = ("/v1/messages", "/v1/chat/completions", "/v1/responses", "/v1beta/models/{tail:.*}")

    def __init__(self, *, plan: list[Step], final: str, api_key: str = "test-agent-key") -> None:
        super().__init__()
        self.plan = plan
        self.final = final
        self.api_key = api_key
        self.results: list[str] = []  # every tool result the plan's requests carried, deduplicated
        self.steps_sent: list[int] = []  # the plan step each planned answer gave
        self.planned: list[RecordedRequest] = []  # the requests that offered the plan's tools
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    async def guard(self, request: web.Request) -> web.StreamResponse | None:
        given = (
            request.headers.get("x-api-key")
            or request.headers.get("x-goog-api-key")
            or request.headers.get("Authorization", "").removeprefix("Bearer ")
        )
        if given != self.api_key:
            return web.json_response(
                {"error": {"message": "bad key", "type": "authentication_error"}}, status=401
            )
        return None

    async def default_reply(self, request: web.Request, body: bytes) -> web.StreamResponse | None:
        data: Json = orjson.loads(body) if body else {}
        turn = read_turn(request.path, data)
        planned = any(s.tool in turn.tools for s in self.plan)
        step: Step | None = None
        text = "ok"
        if planned:
            self.planned.append(self.requests[-1])
            for r in turn.results:
                if r not in self.results:
                    self.results.append(r)
            n = len(turn.results)
            self.steps_sent.append(n)
            if n < len(self.plan):
                step = self.plan[n]
            else:
                text = self.final
        call_id = f"call_{next(self._ids)}"
        model = str(data.get("model", "fake"))
        if request.path.endswith("/messages"):
            return await _send(request, turn.stream, *_anthropic(model, step, text, call_id))
        if request.path.endswith("/chat/completions"):
            return await _send(request, turn.stream, *_chat(model, step, text, call_id))
        if request.path.startswith("/v1beta/"):
            return await _send(request, turn.stream, *_gemini(step, text))
        return await _send(request, turn.stream, *_responses(model, step, text, call_id))


async def _send(
    request: web.Request, stream: bool, whole: Json, events: list[tuple[str | None, Any]]
) -> web.StreamResponse:
    if not stream:
        return web.json_response(whole)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    for name, data in events:
        head = f"event: {name}\n".encode() if name else b""
        payload = data if isinstance(data, bytes) else orjson.dumps(data)
        await resp.write(head + b"data: " + payload + b"\n\n")
    await resp.write_eof()
    return resp


USAGE_IN, USAGE_OUT = 20, 5


def _anthropic(
    model: str, step: Step | None, text: str, call_id: str
) -> tuple[Json, list[tuple[str | None, Any]]]:
    usage = {"input_tokens": USAGE_IN, "output_tokens": USAGE_OUT}
    block: Json
    if step is not None:
        block = {"type": "tool_use", "id": f"toolu_{call_id}", "name": step.tool, "input": step.args}
        start: Json = {**block, "input": {}}
        delta: Json = {"type": "input_json_delta", "partial_json": orjson.dumps(step.args).decode()}
        stop = "tool_use"
    else:
        block = {"type": "text", "text": text}
        start, delta, stop = {"type": "text", "text": ""}, {"type": "text_delta", "text": text}, "end_turn"
    msg: Json = {
        "id": f"msg_{call_id}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [block],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": {**msg, "content": [], "stop_reason": None}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": start}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}, "usage": usage},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return msg, events


def _chat(
    model: str, step: Step | None, text: str, call_id: str
) -> tuple[Json, list[tuple[str | None, Any]]]:
    usage = {"prompt_tokens": USAGE_IN, "completion_tokens": USAGE_OUT, "total_tokens": USAGE_IN + USAGE_OUT}
    base = {
        "id": f"chatcmpl-{call_id}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }
    message: Json
    if step is not None:
        call = {
            "id": call_id,
            "type": "function",
            "function": {"name": step.tool, "arguments": orjson.dumps(step.args).decode()},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        delta: Json = {"role": "assistant", "tool_calls": [{"index": 0, **call}]}
        finish = "tool_calls"
    else:
        message = {"role": "assistant", "content": text}
        delta, finish = {"role": "assistant", "content": text}, "stop"
    whole = {
        **base,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage,
    }
    events: list[tuple[str | None, Any]] = [
        (None, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}),
        (None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}),
        (None, {**base, "choices": [], "usage": usage}),
        (None, b"[DONE]"),
    ]
    return whole, events


def _gemini(step: Step | None, text: str) -> tuple[Json, list[tuple[str | None, Any]]]:
    part: Json = {"functionCall": {"name": step.tool, "args": step.args}} if step else {"text": text}
    answer = {
        "candidates": [{"content": {"parts": [part], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {
            "promptTokenCount": USAGE_IN,
            "candidatesTokenCount": USAGE_OUT,
            "totalTokenCount": USAGE_IN + USAGE_OUT,
        },
        "modelVersion": "gemini-fake",
    }
    return answer, [(None, answer)]


def _responses(
    model: str, step: Step | None, text: str, call_id: str
) -> tuple[Json, list[tuple[str | None, Any]]]:
    usage = {
        "input_tokens": USAGE_IN,
        "output_tokens": USAGE_OUT,
        "total_tokens": USAGE_IN + USAGE_OUT,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    }
    item: Json
    if step is not None:
        args = orjson.dumps(step.args).decode()
        item = {
            "type": "function_call",
            "id": f"fc_{call_id}",
            "call_id": call_id,
            "name": step.tool,
            "arguments": args,
            "status": "completed",
        }
        added = {**item, "arguments": "", "status": "in_progress"}
        deltas: list[Json] = [
            {
                "type": "response.function_call_arguments.delta",
                "item_id": item["id"],
                "output_index": 0,
                "delta": args,
            },
            {
                "type": "response.function_call_arguments.done",
                "item_id": item["id"],
                "output_index": 0,
                "arguments": args,
            },
        ]
    else:
        part = {"type": "output_text", "text": text, "annotations": []}
        item = {
            "type": "message",
            "id": f"msg_{call_id}",
            "role": "assistant",
            "status": "completed",
            "content": [part],
        }
        added = {**item, "content": [], "status": "in_progress"}
        deltas = [
            {
                "type": "response.content_part.added",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "part": {**part, "text": ""},
            },
            {
                "type": "response.output_text.delta",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "delta": text,
            },
            {
                "type": "response.output_text.done",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "text": text,
            },
            {
                "type": "response.content_part.done",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "part": part,
            },
        ]
    resp: Json = {
        "id": f"resp_{call_id}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": model,
        "output": [item],
        "usage": usage,
    }
    seq = [
        {
            "type": "response.created",
            "response": {**resp, "status": "in_progress", "output": [], "usage": None},
        },
        {"type": "response.output_item.added", "output_index": 0, "item": added},
        *deltas,
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": resp},
    ]
    events: list[tuple[str | None, Any]] = [
        (e["type"], {**e, "sequence_number": i}) for i, e in enumerate(seq)
    ]
    return resp, events
