"""The Anthropic Messages door: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

Auth by ``x-api-key`` or ``Authorization: Bearer``; errors in Anthropic's envelope
(``{"type": "error", "error": {"type", "message"}, "request_id"}``) with Anthropic's status codes.

On a route whose adapter speaks Messages natively (``providers/anthropic.py``) the request body and
the event stream cross unchanged apart from the model name (``anthropic-version`` and
``anthropic-beta`` forwarded), usage read from the events as they pass. Elsewhere the request is
translated to chat (``doors/messages/translate.py``) and the answer back, event by event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from modelgate.cache.policy import CacheAsk
from modelgate.doors.base import (
    JSON_HEADERS,
    BearerKeyDoor,
    DoorRequest,
    DoorResponse,
    answer_headers,
    dropped_header,
    schema_error_in,
    stream_headers,
)
from modelgate.doors.chat.door import ChatInvocation
from modelgate.doors.messages.body import Count, Messages, read_count, read_messages
from modelgate.doors.messages.count import count_request
from modelgate.doors.messages.estimate import prompt_bound
from modelgate.doors.messages.render import EventTranslator, sse, to_message
from modelgate.doors.messages.translate import to_chat
from modelgate.doors.messages.wire import CountTokensRequest, MessagesRequest
from modelgate.doors.rawjson import replace_string_in_frame, replace_top_level_string
from modelgate.errors import GatewayError, InsufficientCreditsError, InvalidRequestError, UpstreamStatusError
from modelgate.gateway.admission import supports
from modelgate.gateway.metered import (
    Attempt,
    Caller,
    Event,
    MeteredRequest,
    MeteredStream,
    Outcome,
    Settled,
)
from modelgate.gateway.streaming import aclose
from modelgate.httpkit.contract import json_body, operation
from modelgate.providers.base import Chunk, Completion, Provider, RawEvent, RawReply, native
from modelgate.wire.chat import ChatRequest

if TYPE_CHECKING:
    from modelgate.httpkit.deps import AppState

DIALECT = "anthropic-messages"
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")

# Our status -> Anthropic's error type (https://docs.anthropic.com/en/api/errors).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
    529: "overloaded_error",
}
# Out of credits reads as Anthropic's billing error (402), worded so that agents recognise it
# (Claude Code matches "credit balance is too low"), not as a failed authentication.
BILLING_STATUS = 402
BILLING_PREFIX = "Your credit balance is too low. "
# Statuses no retry can fix: Anthropic's clients (Claude Code retries 11 times over ~3 minutes
# otherwise) honour ``x-should-retry: false``.
NO_RETRY = frozenset({400, 401, 402, 403, 404, 413})


def anthropic_error(exc: GatewayError, request_id: str) -> DoorResponse:
    status = exc.status_code
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    message = exc.message
    if isinstance(exc, UpstreamStatusError) and exc.upstream_type and exc.upstream_message:
        # An Anthropic upstream's own wording (agents match on it), already bounded by the adapter.
        kind, message = exc.upstream_type, exc.upstream_message
    elif isinstance(exc, InsufficientCreditsError):
        status, kind, message = BILLING_STATUS, "billing_error", BILLING_PREFIX + message
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
    headers = {**exc.headers, **JSON_HEADERS, "request-id": request_id}
    if status in NO_RETRY:
        headers["x-should-retry"] = "false"
    return DoorResponse(status, headers, orjson.dumps(body))


ANTHROPIC_ERROR = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
        "request_id": {"type": "string"},
    },
}


class MessagesInvocation:
    """Pass-through on Anthropic routes, translation to chat elsewhere.

    Once a stream's first event has gone on to the core, no other attempt follows: the invocation
    lets the request go (``_release``), so that a stream of minutes does not keep an agent's request
    of hundreds of kilobytes, parsed, alive (memory, and objects every full collection walks)."""

    __slots__ = ("_chat", "dropped", "headers", "raw", "req")

    def __init__(self, req: Messages, raw: bytes, headers: dict[str, str]) -> None:
        self.req: Messages | None = req
        self.raw = raw
        self.headers = headers
        self._chat: dict[tuple[bool, bool], tuple[ChatRequest, list[str]]] = {}
        self.dropped: list[str] = []  # what the last translated attempt left out, as request paths

    def chat(self, provider: Provider, attempt: Attempt) -> ChatRequest:
        """The chat request for this attempt: an effort only for a model that reasons, offered tools
        only for a route that calls tools (Claude Code offers them to every model; a model that
        cannot call them answers in text, as a model that chose not to would)."""
        model = attempt.model
        declared = "capabilities" not in model.model_fields_set or "tools" in model.capabilities
        key = (model.reasoning is not None, declared and supports(provider, "tools"))
        if key not in self._chat:
            if self.req is None:
                raise RuntimeError("a Messages invocation was tried again after its stream began")
            self._chat[key] = to_chat(self.req, reasoning=key[0], tools_ok=key[1])
        chat, self.dropped = self._chat[key]
        return chat

    def _body(self, attempt: Attempt) -> bytes:
        return replace_top_level_string(self.raw, "model", attempt.route.model)

    def _release(self) -> None:
        self.req, self.raw = None, b""
        self._chat.clear()

    async def complete(self, provider: Provider, attempt: Attempt) -> Outcome:
        nat = native(provider, DIALECT)
        if nat is not None:
            self.dropped = []  # a pass-through leaves nothing out
            reply = await nat.passthrough(DIALECT, self._body(attempt), {**self.headers, **attempt.headers})
            return Outcome(reply, reply.usage, reply.finish)
        return await ChatInvocation(self.chat(provider, attempt)).complete(provider, attempt)

    async def stream(self, provider: Provider, attempt: Attempt) -> AsyncIterator[Event]:
        nat = native(provider, DIALECT)
        if nat is not None:
            self.dropped = []
            events = nat.passthrough_stream(DIALECT, self._body(attempt), {**self.headers, **attempt.headers})
            try:
                async for ev in events:  # the first event: resumed past it, the stream is this route's
                    yield Event(ev, ev.usage, ev.finish, output=ev.output)
                    break
                self._release()
                async for ev in events:
                    yield Event(ev, ev.usage, ev.finish, output=ev.output)
            finally:
                await aclose(events)
            return
        translated = ChatInvocation(self.chat(provider, attempt)).stream(provider, attempt)
        try:
            async for event in translated:
                yield event
                break
            self._release()
            async for event in translated:
                yield event
        finally:
            await aclose(translated)


def _needs(msg: Messages) -> frozenset[str]:
    req, tools = msg.head, msg.prompt.tools
    needs: set[str] = set()
    if req.stream:
        needs.add("streaming")
    forced = req.tool_choice is not None and req.tool_choice.type in ("any", "tool")
    if forced and tools and any(t.get("type") in (None, "custom") for t in tools):
        needs.add("tools")  # only a forced tool needs a route that calls tools; offered ones may go
    if req.output_config is not None and req.output_config.format is not None:
        needs.add("structured_output")  # a route that cannot constrain the answer refuses (400)
    if msg.vision:
        needs.add("vision")
    return frozenset(needs)


class MessagesDoor(BearerKeyDoor):
    name = "messages"
    note = "Anthropic's Messages API (and count_tokens), for the Anthropic SDKs and Claude Code."
    paths = frozenset({"/v1/messages", "/v1/messages/count_tokens"})

    def openapi(self) -> dict[str, dict[str, Any]]:
        """Anthropic's Messages API; errors in Anthropic's envelope."""
        error = {"content": {"application/json": {"schema": ANTHROPIC_ERROR}}}
        statuses = {"400", "401", "403", "404", "413", "429", "500", "502", "503", "504", "529"}
        errors = {s: {"description": ERROR_TYPES.get(int(s), "api_error"), **error} for s in statuses}
        return {
            "/v1/messages": operation(
                summary="Create a message (JSON, or server-sent events with stream: true)",
                body=json_body(MessagesRequest),
                upstream=True,
                responses={"200": {"description": "The message, or its stream of events"}, **errors},
            ),
            "/v1/messages/count_tokens": operation(
                summary="Count the input tokens of a message",
                body=json_body(CountTokensRequest),
                responses={"200": {"description": "The input token count"}, **errors},
            ),
        }

    def parse(self, req: DoorRequest) -> Messages | Count:
        if req.path.endswith("/count_tokens"):
            return read_count(req.body)
        parsed = read_messages(req.body)  # one parse; media checked (doors/messages/body.py)
        head = parsed.head
        if head.thinking is not None and head.thinking.type == "enabled":
            budget = head.thinking.budget_tokens
            if budget is None:
                raise InvalidRequestError(
                    "thinking.budget_tokens: Field required", param="thinking.budget_tokens"
                )
            if budget >= head.max_tokens:
                raise InvalidRequestError(
                    "thinking.budget_tokens: must be less than max_tokens", param="thinking.budget_tokens"
                )
        return parsed

    def error(self, exc: GatewayError, req: DoorRequest, request_id: str) -> DoorResponse:
        return anthropic_error(schema_error_in(exc, "output_config.format.schema"), request_id)

    async def run(self, state: AppState, parsed: Any, caller: Caller, req: DoorRequest) -> DoorResponse:
        headers = {h: v for h in FORWARDED_HEADERS if (v := req.header(h))}
        if isinstance(parsed, Count):
            tokens = await state.core.count(count_request(parsed, req.body, headers), caller)
            return DoorResponse(200, {**JSON_HEADERS}, orjson.dumps({"input_tokens": tokens}))
        parsed_msg: Messages = parsed
        msg = parsed_msg.head
        invocation = MessagesInvocation(parsed_msg, req.body, headers)
        # digests only if marked (nothing else can be written to a cache)
        bound = prompt_bound(parsed_msg.prompt, prefixes=b'"cache_control"' in req.body)
        metered = MeteredRequest(
            model=msg.model,
            invocation=invocation,
            stream=msg.stream,
            max_tokens=msg.max_tokens,
            clamp_max_tokens=True,
            prompt_estimate=bound.tokens,
            needs=_needs(parsed_msg),
            cache_write=bound.cache_write,
            cache_prefix=bound.prefix,
            uses=bound.uses or None,
            grows_prompt=bound.grows,
            cache=CacheAsk(req.body, "messages", tuple(sorted(headers.items()))),
        )
        msg_id = f"msg_{caller.inference_id}"
        if msg.stream:
            stream = await state.core.stream(metered, caller)
            out = stream_headers(stream, dropped_header(invocation.dropped))
            return DoorResponse(200, out, frames=_frames(stream, msg.model, msg_id, caller.inference_id))
        done = await state.core.complete(metered, caller)
        if isinstance(done.payload, RawReply):
            body = replace_top_level_string(done.payload.body, "model", msg.model)
        else:
            result: Completion = done.payload
            body = orjson.dumps(to_message(result, msg_id=msg_id, model=msg.model))
        dropped = dropped_header(invocation.dropped)
        return DoorResponse(200, answer_headers(done, {**dropped, "request-id": caller.inference_id}), body)


async def _frames(stream: MeteredStream, model: str, msg_id: str, rid: str) -> AsyncIterator[bytes]:
    """The stream's frames; ``model`` as the client named it (the request itself is not kept)."""
    events = stream.events
    translator: EventTranslator | None = None
    try:
        async for item in events:
            if isinstance(item, Settled):
                if translator is not None:
                    yield translator.end(item.usage)
                continue
            payload = item.payload
            if isinstance(payload, RawEvent):
                if payload.kind == "message_start":
                    yield replace_string_in_frame(payload.frame, ("message", "model"), model)
                else:
                    yield payload.frame
                continue
            chunk: Chunk = payload
            if translator is None:
                translator = EventTranslator(msg_id=msg_id, model=model)
                yield translator.start()
            out = translator.chunk(chunk)
            if out:
                yield out
    except GatewayError as exc:
        err = anthropic_error(exc, rid)
        yield sse("error", orjson.loads(err.body))
    finally:
        await events.aclose()  # type: ignore[attr-defined]
