"""OpenAI's Responses API passed through (``POST {base}/responses``) for an ``openai`` provider that
declares it (catalogue ``options: {responses: true}``): the client's body goes up unchanged, the
answer and every stream event come back unchanged; usage and the finish are read on the way for
billing, from the response object (whole answers) or the ``response.completed`` /
``response.incomplete`` / ``response.failed`` event (streams) — without re-encoding anything.

An ``error`` event after a 200 becomes an ``UpstreamStatusError`` (the door renders it in its
dialect); a stream that ends without a terminal event is a connection error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from modelgate.errors import UpstreamConnectionError, UpstreamProtocolError, UpstreamStatusError
from modelgate.providers.base import RawEvent, RawReply, Usage
from modelgate.providers.http import HTTPUpstream
from modelgate.providers.sse import iter_sse_frames, loads_event

DIALECT = "openai-responses"
# ``POST /responses/compact`` passed through (a compaction: ``object: "response.compaction"``).
COMPACT = "openai-responses-compact"
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
# Events whose payload is read (usage, errors); every other one passes without being parsed.
_READ = TERMINAL | {"error"}
_OUTPUT = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
        "response.custom_tool_call_input.delta",
    }
)
# Error codes of ``error`` events -> the HTTP status they stand for.
_ERROR_STATUS = {"rate_limit_exceeded": 429, "server_error": 500, "invalid_prompt": 400}


# Hosted-tool calls among a response's output items -> the price sheet's per-use fee they incur.
_TOOL_CALLS = {"web_search_call": "web_search", "file_search_call": "file_search"}


def response_usage(response: dict[str, Any]) -> Usage:
    """A whole response's usage: its ``usage`` object and the hosted-tool calls of its output."""
    usage = usage_of(response.get("usage"))
    output = response.get("output")
    if isinstance(output, list):
        uses: dict[str, int] = {}
        for item in output:
            name = _TOOL_CALLS.get(str(item.get("type"))) if isinstance(item, dict) else None
            if name is not None:
                uses[name] = uses.get(name, 0) + 1
        usage.uses = uses or None
    return usage


def usage_of(raw: Any) -> Usage:
    """A Responses ``usage`` object (reasoning and cached tokens included in their totals)."""
    if not isinstance(raw, dict):
        return Usage()
    inp, out = _obj(raw.get("input_tokens_details")), _obj(raw.get("output_tokens_details"))
    return Usage(
        prompt_tokens=_count(raw.get("input_tokens")),
        completion_tokens=_count(raw.get("output_tokens")),
        reasoning_tokens=_count(out.get("reasoning_tokens")),
        cached_tokens=_count(inp.get("cached_tokens")),
        audio_input_tokens=_count(inp.get("audio_tokens")),
        image_input_tokens=_count(inp.get("image_tokens")),
        audio_output_tokens=_count(out.get("audio_tokens")),
    )


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return min(value, 2**31 - 1)


def finish_of(response: dict[str, Any]) -> str | None:
    """The response's end in chat terms (logged as the finish reason)."""
    status = response.get("status")
    if status == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return "length" if reason == "max_output_tokens" else str(reason or "incomplete")
    if status == "completed":
        calls = any(
            isinstance(i, dict) and i.get("type") == "function_call" for i in response.get("output") or []
        )
        return "tool_calls" if calls else "stop"
    return str(status) if isinstance(status, str) else None


def error_event(name: str, event: dict[str, Any]) -> UpstreamStatusError:
    err = _obj(event.get("error")) or event
    code, message = err.get("code"), err.get("message")
    status = _ERROR_STATUS.get(str(code), 502)
    exc = UpstreamStatusError(
        f"upstream {name} failed ({code or 'error'}): {message or 'no message'}",
        upstream_status=status,
        provider=name,
    )
    exc.upstream_type = str(code)[:100] if code else None
    exc.upstream_message = str(message)[:1000] if message else None
    return exc


async def passthrough(
    http: HTTPUpstream,
    body: bytes,
    headers: Mapping[str, str],
    *,
    path: str = "/responses",
    kind: str = "response",
) -> RawReply:
    """A whole answer of ``path``: an object of type ``kind`` (``response``, or
    ``response.compaction`` for ``/responses/compact``)."""
    async with http.post(path, body, headers=dict(headers)) as resp:
        raw = await resp.read()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(
            f"upstream {http.name} answered a body that is not JSON", provider=http.name
        ) from exc
    if not isinstance(data, dict) or data.get("object") != kind:
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            raise error_event(http.name, data)
        raise UpstreamProtocolError(f"upstream {http.name} answered no {kind} object", provider=http.name)
    return RawReply(raw, response_usage(data), finish_of(data))


async def input_tokens(
    http: HTTPUpstream, body: bytes, headers: Mapping[str, str], *, path: str
) -> int | None:
    """The upstream's ``POST /responses/input_tokens`` count; None when it has no such endpoint
    (404 / 405: the door estimates)."""
    try:
        data = await http.post_json(path, body, headers=dict(headers))
    except UpstreamStatusError as exc:
        if exc.upstream_status in (404, 405):
            return None
        raise
    tokens = data.get("input_tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, int) or isinstance(tokens, bool) or not 0 <= tokens < 2**31:
        raise UpstreamProtocolError(f"upstream {http.name} answered no token count", provider=http.name)
    return tokens


async def passthrough_stream(
    http: HTTPUpstream, body: bytes, headers: Mapping[str, str], *, path: str = "/responses"
) -> AsyncIterator[RawEvent]:
    ended = False
    async with http.post(path, body, headers=dict(headers)) as resp:
        async for ev, frame in iter_sse_frames(resp):
            kind = ev.event
            if kind is None or kind in _READ:
                event = loads_event(http.name, ev.data)
                if not isinstance(event, dict):
                    raise UpstreamProtocolError(f"upstream {http.name} sent a bad event", provider=http.name)
                kind = str(event.get("type") or kind or "")
                if kind == "error":
                    raise error_event(http.name, event)
                if kind in TERMINAL:
                    response = _obj(event.get("response"))
                    ended = True
                    yield RawEvent(frame, kind, usage=response_usage(response), finish=finish_of(response))
                    break
            yield RawEvent(frame, kind, output=kind in _OUTPUT)
    if not ended:
        raise UpstreamConnectionError(
            f"upstream {http.name} ended the stream before response.completed", provider=http.name
        )
