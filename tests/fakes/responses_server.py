"""A fake of OpenAI's Responses API: ``POST /v1/responses`` (JSON or SSE with ``event:`` lines and
``sequence_number``s, as the real service frames them), ``Authorization: Bearer`` checked (401 in
OpenAI's error envelope), and the service's own state: responses made with ``store`` (default true)
are kept, so ``previous_response_id`` continues them (an unknown one is a 404), and an
``item_reference`` is resolved from every stored item, whoever made it (the fake, like the service,
has one key: the operator's), an unknown one a 404.

When nothing is scripted it answers deterministically from the request:
- the last input item is a ``function_call_output`` -> text ``"tool said: <output>"``;
- function tools (and ``tool_choice`` not ``none``) -> a ``function_call`` of the first one, with
  arguments built from its parameter schema;
- ``text.format`` ``json_schema`` / ``json_object`` -> JSON text that fits the schema;
- otherwise the last user text, echoed; with ``previous_response_id`` the text is prefixed with the
  number of items the conversation had (``"[n items] ..."``), proving the state was used.
``reasoning`` adds a reasoning item with a summary (and ``encrypted_content`` when ``include`` asks
for ``reasoning.encrypted_content``); a ``web_search`` tool adds a ``web_search_call`` item (a hosted
tool run upstream); ``max_output_tokens`` below the word count cuts the text (``incomplete``).

``POST /v1/responses/input_tokens`` answers ``{"object": "response.input_tokens", "input_tokens":
1000 + the number of input items}`` (404 with ``counts`` False, as a server without the endpoint);
``POST /v1/responses/compact`` answers a ``response.compaction`` with the user messages and one
``compaction`` item of its own (``gAAAA-compacted-<n>``), usage 30 in / 7 out (404 with ``compacts``
False).

Every body or stream sent is kept in ``sent`` (bytes), for byte-for-byte assertions.
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from aiohttp import web

from tests.fakes import ScriptedServer

_COUNT = "/v1/responses/input_tokens"
_COMPACT = "/v1/responses/compact"


def _error(
    status: int, message: str, *, kind: str, param: str | None = None, code: str | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status)


def sample(schema: Any) -> Any:
    """A value that fits a JSON schema (enough of it for tests)."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if "anyOf" in schema:
        return sample(schema["anyOf"][0])
    if kind == "object":
        return {k: sample(v) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [sample(schema.get("items"))]
    return {"string": "Paris", "integer": 42, "number": 1.5, "boolean": True}.get(str(kind))


def _text_of(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


class ResponsesFake(ScriptedServer):
    def __init__(self, *, api_key: str | None = "test-openai-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.sent: list[bytes] = []
        self.stored: dict[str, list[dict[str, Any]]] = {}  # response id -> its conversation
        self._ids = itertools.count(1)
        self.counts = True  # serves /v1/responses/input_tokens
        self.compacts = True  # serves /v1/responses/compact

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    async def guard(self, request: web.Request) -> web.StreamResponse | None:
        served = {"/v1/responses": True, _COUNT: self.counts, _COMPACT: self.compacts}
        if request.method != "POST" or not served.get(request.path):
            return _error(404, f"Invalid URL ({request.method} {request.path})", kind="invalid_request_error")
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(
                401, "Incorrect API key provided.", kind="invalid_request_error", code="invalid_api_key"
            )
        return None

    async def default_reply(self, request: web.Request, body: bytes) -> web.StreamResponse | None:
        req = orjson.loads(body)
        if request.path == _COUNT:
            raw = req.get("input") or []
            count = {
                "object": "response.input_tokens",
                "input_tokens": 1000 + (len(raw) if isinstance(raw, list) else 1),
            }
            return web.json_response(count)
        if request.path == _COMPACT:
            return self._compact(req)
        history: list[dict[str, Any]] = []
        prev = req.get("previous_response_id")
        if prev is not None:
            if prev not in self.stored:
                return _error(
                    404,
                    f"Previous response with id '{prev}' not found.",
                    kind="invalid_request_error",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
            history = self.stored[prev]
        raw_input = req.get("input") or []
        items = [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else list(raw_input)
        for i, item in enumerate(items):
            if isinstance(item, dict) and item.get("type") == "item_reference":
                found = self._stored_item(item.get("id"))
                if found is None:
                    return _error(
                        404,
                        f"Item with id '{item.get('id')}' not found.",
                        kind="invalid_request_error",
                        param="input",
                    )
                items[i] = found
        n = next(self._ids)
        rid = f"resp_fake{n:06d}"
        output, status = self._output(req, history, items, n)
        words = sum(len(_text_of(i).split()) for i in output if i["type"] == "message") or 1
        usage = {
            "input_tokens": 11,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": words + (5 if any(i["type"] == "reasoning" for i in output) else 0),
            "output_tokens_details": {
                "reasoning_tokens": 5 if any(i["type"] == "reasoning" for i in output) else 0
            },
            "total_tokens": 0,
        }
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        response = {
            "id": rid,
            "object": "response",
            "created_at": 1_760_000_000 + n,
            "status": status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": req.get("instructions"),
            "max_output_tokens": req.get("max_output_tokens"),
            "model": req.get("model"),
            "output": output,
            "parallel_tool_calls": req.get("parallel_tool_calls", True),
            "previous_response_id": prev,
            "reasoning": {"effort": (req.get("reasoning") or {}).get("effort"), "summary": None},
            "store": req.get("store", True),
            "temperature": req.get("temperature", 1.0),
            "text": req.get("text") or {"format": {"type": "text"}},
            "tool_choice": req.get("tool_choice", "auto"),
            "tools": req.get("tools") or [],
            "top_p": req.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": usage,
            "metadata": req.get("metadata") or {},
        }
        if req.get("store", True) is not False:
            self.stored[rid] = [*history, *items, *output]
        if req.get("stream"):
            return await self._stream(request, response)
        raw = orjson.dumps(response)
        self.sent.append(raw)
        return web.Response(body=raw, content_type="application/json")

    def _compact(self, req: dict[str, Any]) -> web.Response:
        n = next(self._ids)
        raw = req.get("input") or []
        items = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw)
        users = [
            {"type": "message", "role": "user", "content": i["content"]}
            for i in items
            if isinstance(i, dict) and i.get("role") == "user"
        ]
        compaction = {
            "type": "compaction",
            "id": f"cmp_fake{n:06d}",
            "encrypted_content": f"gAAAA-compacted-{n}",
        }
        body = {
            "id": f"resp_fake{n:06d}",
            "object": "response.compaction",
            "created_at": 1_760_000_000 + n,
            "output": [*users, compaction],
            "usage": {
                "input_tokens": 30,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 7,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 37,
            },
        }
        raw_body = orjson.dumps(body)
        self.sent.append(raw_body)
        return web.Response(body=raw_body, content_type="application/json")

    def _stored_item(self, item_id: Any) -> dict[str, Any] | None:
        for conversation in self.stored.values():
            for item in conversation:
                if isinstance(item, dict) and item.get("id") == item_id and item_id is not None:
                    return item
        return None

    def _output(
        self, req: dict[str, Any], history: list[dict[str, Any]], items: list[dict[str, Any]], n: int
    ) -> tuple[list[dict[str, Any]], str]:
        out: list[dict[str, Any]] = []
        tools = req.get("tools") or []
        if req.get("reasoning"):
            reasoning: dict[str, Any] = {
                "id": f"rs_fake{n:06d}",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "Thinking it over."}],
            }
            if "reasoning.encrypted_content" in (req.get("include") or []):
                reasoning["encrypted_content"] = f"gAAAA-encrypted-{n}"
            out.append(reasoning)
        if any(t.get("type", "").startswith("web_search") for t in tools):
            out.append(
                {
                    "id": f"ws_fake{n:06d}",
                    "type": "web_search_call",
                    "status": "completed",
                    "action": {"type": "search", "query": "fake query"},
                }
            )
        functions = [t for t in tools if t.get("type") == "function"]
        last = items[-1] if items else {}
        if last.get("type") == "function_call_output":
            text = f"tool said: {last.get('output')}"
        elif functions and req.get("tool_choice") != "none":
            fn = functions[0]
            args = orjson.dumps(sample(fn.get("parameters") or {"type": "object"}) or {}).decode()
            out.append(
                {
                    "id": f"fc_fake{n:06d}",
                    "type": "function_call",
                    "status": "completed",
                    "arguments": args,
                    "call_id": f"call_fake{n:06d}",
                    "name": fn["name"],
                }
            )
            return out, "completed"
        else:
            fmt = (req.get("text") or {}).get("format") or {}
            if fmt.get("type") == "json_schema":
                text = orjson.dumps(sample(fmt.get("schema"))).decode()
            elif fmt.get("type") == "json_object":
                text = '{"ok": true}'
            else:
                users = [i for i in items if i.get("role") == "user"]
                text = _text_of(users[-1]) if users else "hello"
                if history:
                    text = f"[{len(history)} items] {text}"
        status = "completed"
        cap = req.get("max_output_tokens")
        if isinstance(cap, int) and len(text.split()) > cap:
            text, status = " ".join(text.split()[:cap]), "incomplete"
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        out.append(
            {
                "id": f"msg_fake{n:06d}",
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": [part],
            }
        )
        return out, status

    async def _stream(self, request: web.Request, response: dict[str, Any]) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        seq = itertools.count()
        sent: list[bytes] = []

        async def ev(kind: str, **fields: Any) -> None:
            frame = (
                b"event: "
                + kind.encode()
                + b"\ndata: "
                + orjson.dumps({"type": kind, "sequence_number": next(seq), **fields})
                + b"\n\n"
            )
            sent.append(frame)
            await resp.write(frame)

        start = {k: v for k, v in response.items() if k != "usage"}
        start.update(status="in_progress", output=[])
        await ev("response.created", response=start)
        await ev("response.in_progress", response=start)
        for index, item in enumerate(response["output"]):
            await self._stream_item(ev, index, item)
        await ev(f"response.{response['status']}", response=response)
        self.sent.append(b"".join(sent))
        await resp.write_eof()
        return resp

    @staticmethod
    async def _stream_item(ev: Any, index: int, item: dict[str, Any]) -> None:
        where = {"item_id": item["id"], "output_index": index}
        kind = item["type"]
        if kind == "message":
            await ev(
                "response.output_item.added",
                output_index=index,
                item={**item, "content": [], "status": "in_progress"},
            )
            part = item["content"][0]
            await ev("response.content_part.added", **where, content_index=0, part={**part, "text": ""})
            words = part["text"].split(" ")
            for delta in [words[0], *(" " + w for w in words[1:])]:
                await ev("response.output_text.delta", **where, content_index=0, delta=delta, logprobs=[])
            await ev("response.output_text.done", **where, content_index=0, text=part["text"], logprobs=[])
            await ev("response.content_part.done", **where, content_index=0, part=part)
        elif kind == "function_call":
            await ev(
                "response.output_item.added",
                output_index=index,
                item={**item, "arguments": "", "status": "in_progress"},
            )
            await ev("response.function_call_arguments.delta", **where, delta=item["arguments"])
            await ev(
                "response.function_call_arguments.done",
                **where,
                name=item["name"],
                arguments=item["arguments"],
            )
        elif kind == "reasoning":
            await ev("response.output_item.added", output_index=index, item={**item, "summary": []})
            text = item["summary"][0]["text"]
            await ev(
                "response.reasoning_summary_part.added",
                **where,
                summary_index=0,
                part={"type": "summary_text", "text": ""},
            )
            await ev("response.reasoning_summary_text.delta", **where, summary_index=0, delta=text)
            await ev("response.reasoning_summary_text.done", **where, summary_index=0, text=text)
            await ev(
                "response.reasoning_summary_part.done",
                **where,
                summary_index=0,
                part={"type": "summary_text", "text": text},
            )
        else:
            await ev("response.output_item.added", output_index=index, item=item)
        await ev("response.output_item.done", output_index=index, item=item)
