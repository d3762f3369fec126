"""Native adapter for the Anthropic Messages API, ``type: anthropic``.

``POST {base}/messages`` with ``x-api-key`` and ``anthropic-version: 2023-06-01``. The OpenAI <->
Messages mapping lives in ``anthropic_convert`` (requests) and ``anthropic_response`` (answers);
this module does the I/O: the call, the named SSE events of a stream (``message_start`` ...
``message_stop``, ``ping``, and ``error`` after a 200), and the translation of upstream errors
(``overloaded_error`` / HTTP 529 is retryable).

Thinking blocks become ``reasoning_content``; redacted thinking is dropped. Anthropic does not count
thinking tokens apart from ``output_tokens``, so ``reasoning_tokens`` stays 0.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from modelgate.catalog.models import ProviderConfig
from modelgate.errors import UpstreamConnectionError, UpstreamProtocolError, UpstreamStatusError
from modelgate.providers.anthropic_convert import build_request
from modelgate.providers.anthropic_response import ERROR_STATUS, StreamState, parse_message, parse_usage
from modelgate.providers.anthropic_structured import output_tool
from modelgate.providers.base import (
    AdapterDefaults,
    Chunk,
    Completion,
    ProviderCall,
    ProviderContext,
    RawEvent,
    RawReply,
)
from modelgate.providers.http import HTTPUpstream, upstream_status_error
from modelgate.providers.httpclient import Response
from modelgate.providers.sse import SSEEvent, iter_sse, iter_sse_frames, loads_event
from modelgate.sanitize import db_text

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider(AdapterDefaults):
    supports_tools = True
    supports_json_schema = True  # through a forced output tool (anthropic_convert.output_tool)
    supports_streaming = True
    supports_vision = True
    supports_embeddings = False
    forwards_unknown_fields = False
    drain_on_disconnect = True  # keep reading an abandoned stream: output usage comes at the end
    dialects = frozenset({"anthropic-messages"})

    def __init__(self, name: str, config: ProviderConfig, context: ProviderContext) -> None:
        self.name = name
        self._http = self._upstream(name, config, context)

    def _upstream(self, name: str, config: ProviderConfig, context: ProviderContext) -> HTTPUpstream:
        """The pooled client with this upstream's credentials (``x-api-key``)."""
        headers = {"User-Agent": context.user_agent, "anthropic-version": ANTHROPIC_VERSION}
        if config.api_key:
            headers["x-api-key"] = config.api_key
        return HTTPUpstream(name, config, default_headers=headers, environ=context.environ)

    def _route(self, body: dict[str, Any], *, stream: bool) -> tuple[str, dict[str, Any]]:
        """The path and body of a Messages call built from a chat request (clouds that host Claude
        move the model into the path and name their own ``anthropic_version``: Vertex, Bedrock)."""
        return "/messages", body

    def _route_raw(self, body: bytes, headers: Mapping[str, str], *, stream: bool) -> tuple[str, bytes]:
        """The same for a client's Messages body passed through (here: unchanged)."""
        return "/messages", body

    def _events(self, resp: Response) -> AsyncIterator[SSEEvent]:
        """The named events of a streamed answer (Bedrock frames them its own way)."""
        return iter_sse(resp, self.name)

    def _frames(self, resp: Response) -> AsyncIterator[tuple[SSEEvent, bytes]]:
        """The events with the SSE frame to forward for each (pass-through)."""
        return iter_sse_frames(resp, self.name)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def complete(self, call: ProviderCall) -> Completion:
        path, body = self._route(build_request(call), stream=False)
        data = await self._http.post_json(path, body, headers=call.headers or None)
        if isinstance(data, dict) and data.get("type") == "error":
            raise self._error(data.get("error"))
        choice, usage = parse_message(data, self.name, output_tool(call.request))
        upstream_id = data.get("id")
        return Completion(
            choices=[choice], usage=usage, upstream_id=upstream_id if isinstance(upstream_id, str) else None
        )

    async def stream(self, call: ProviderCall) -> AsyncIterator[Chunk]:
        path, body = self._route({**build_request(call), "stream": True}, stream=True)
        state = StreamState(output=output_tool(call.request), provider=self.name)
        finished = False
        async with self._http.post(path, body, headers=call.headers or None) as resp:
            async for ev in self._events(resp):
                event = loads_event(self.name, ev.data)
                if not isinstance(event, dict):
                    raise UpstreamProtocolError(f"upstream {self.name} sent a bad event", provider=self.name)
                kind = str(event.get("type") or ev.event or "")
                if kind == "error":
                    raise self._error(event.get("error"))
                delta = state.feed(kind, event)
                if kind == "message_delta" and state.finish is not None:
                    yield Chunk(choices=[_choice(delta or {}, state.finish)])
                    finished = True
                elif delta is not None:
                    yield Chunk(choices=[_choice(delta, None)])
                if kind == "message_start":  # exact input and cache figures, after the event they count
                    call.on_usage(state.usage)
                if state.stopped:
                    break
        if not state.stopped:
            raise UpstreamConnectionError(
                f"upstream {self.name} ended the stream before message_stop", provider=self.name
            )
        if not finished:  # a message_delta without stop_reason: still close the choice
            yield Chunk(choices=[_choice({}, "stop")])
        yield Chunk(choices=[], usage=state.usage)

    # ---- native pass-through (the Messages door on an Anthropic route) ------------------------

    async def passthrough(self, dialect: str, body: bytes, headers: Mapping[str, str]) -> RawReply:
        """``POST /messages`` with the client's body as is; usage and stop reason read for billing."""
        path, body = self._route_raw(body, headers, stream=False)
        async with self._http.post(path, body, headers=dict(headers)) as resp:
            raw = await resp.read()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(
                f"upstream {self.name} answered a body that is not JSON", provider=self.name
            ) from exc
        if not isinstance(data, dict) or data.get("type") != "message":
            if isinstance(data, dict) and data.get("type") == "error":
                raise self._error(data.get("error"))
            raise UpstreamProtocolError(f"upstream {self.name} answered no message", provider=self.name)
        stop = data.get("stop_reason")
        usage = parse_usage(data.get("usage"), self.name)
        return RawReply(raw, usage, stop if isinstance(stop, str) else None)

    async def passthrough_stream(
        self, dialect: str, body: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[RawEvent]:
        """The upstream's events as they come; usage read from ``message_start`` / ``message_delta``."""
        usage_raw: dict[str, Any] = {}
        stopped = False
        path, body = self._route_raw(body, headers, stream=True)
        async with self._http.post(path, body, headers=dict(headers)) as resp:
            del body  # sent: not kept while the answer streams (an agent's request is hundreds of KB)
            async for ev, frame in self._frames(resp):
                kind = ev.event or ""
                if kind in ("message_start", "message_delta", "error") or not kind:
                    event = loads_event(self.name, ev.data)
                    if not isinstance(event, dict):
                        raise UpstreamProtocolError(
                            f"upstream {self.name} sent a bad event", provider=self.name
                        )
                    kind = str(event.get("type") or kind)
                    if kind == "error":
                        raise self._error(event.get("error"))
                    if kind == "message_start":
                        message = event.get("message")
                        if isinstance(message, dict) and isinstance(message.get("usage"), dict):
                            usage_raw.update(message["usage"])
                        # The exact input and cache figures, so far: what a stream cut later is charged
                        # (with its output since estimated); message_delta's usage is the last word.
                        yield RawEvent(
                            frame, kind, usage=parse_usage(usage_raw, self.name) if usage_raw else None
                        )
                        continue
                    if kind == "message_delta":
                        if isinstance(event.get("usage"), dict):
                            usage_raw.update({k: v for k, v in event["usage"].items() if v is not None})
                        delta = event.get("delta")
                        stop = delta.get("stop_reason") if isinstance(delta, dict) else None
                        yield RawEvent(
                            frame,
                            kind,
                            usage=parse_usage(usage_raw, self.name),
                            finish=stop if isinstance(stop, str) else None,
                        )
                        continue
                stopped = stopped or kind == "message_stop"
                yield RawEvent(frame, kind, output=kind == "content_block_delta")
                if stopped:
                    break
        if not stopped:
            raise UpstreamConnectionError(
                f"upstream {self.name} ended the stream before message_stop", provider=self.name
            )

    async def count_tokens(self, dialect: str, body: bytes, headers: Mapping[str, str]) -> int | None:
        """The upstream's exact ``/messages/count_tokens`` for a Messages body."""
        if dialect not in self.dialects:
            return None
        data = await self._http.post_json("/messages/count_tokens", body, headers=dict(headers))
        tokens = data.get("input_tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, int) or isinstance(tokens, bool) or not 0 <= tokens < 2**31:
            raise UpstreamProtocolError(f"upstream {self.name} answered no token count", provider=self.name)
        return tokens

    def _error(self, err: Any) -> UpstreamStatusError:
        """An Anthropic ``{"type": ..., "message": ...}`` error object as the matching status error."""
        kind = err.get("type") if isinstance(err, dict) else None
        message = err.get("message") if isinstance(err, dict) else None
        status = ERROR_STATUS.get(str(kind), 502)
        error = upstream_status_error(
            self.name, status, db_text(message, 1000) if message else None, during="failed with status"
        )
        error.upstream_type = str(kind)[:100] if kind else None
        return error


def _choice(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}


def create(name: str, config: ProviderConfig, context: ProviderContext) -> AnthropicProvider:
    return AnthropicProvider(name, config, context)
