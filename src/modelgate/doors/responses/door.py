"""The OpenAI Responses door: ``POST /v1/responses``.

Auth by ``Authorization: Bearer`` (or ``x-api-key``); errors in the OpenAI-compatible envelope the
chat door uses (``httpkit/errors.py``), in-stream as an ``error`` event (+ ``response.failed``).

On a route whose adapter speaks Responses natively (an ``openai`` provider with ``options:
{responses: true}``) the body and the event stream cross unchanged apart from the model name —
hosted tools, ``include``, encrypted reasoning and the upstream's own ``previous_response_id``
chains included. Elsewhere the request is translated to chat (``doors/responses/translate.py``) and
the answer back, event by event (``doors/responses/render.py``); hosted tools that route cannot run
are left out and named in the ``x-modelgate-dropped-tools`` header.

State (``store``, default true; ``doors/responses/state.py``): the response and its items are kept
per account (``store/responses.py``) before the answer (or the stream's last event) is sent, so that a
``previous_response_id`` or ``item_reference`` in the very next request finds them. The GET /
DELETE / input_items endpoints are ``doors/responses/routes.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from modelgate.cache.policy import CacheAsk
from modelgate.doors.base import (
    DROPPED_HEADER,
    DoorRequest,
    DoorResponse,
    OpenAIEnvelopeDoor,
    answer_headers,
    dropped_header,
    schema_error_in,
    stream_headers,
)
from modelgate.doors.rawjson import data_span, replace_string_in_frame, replace_top_level_string
from modelgate.doors.responses import namespaces
from modelgate.doors.responses.compact import compact, open_compactions
from modelgate.doors.responses.count import count
from modelgate.doors.responses.estimate import hosted_tool_bounds, prompt_upper_bound
from modelgate.doors.responses.render import EventTranslator, ResponseShape, output_items, tools_echo
from modelgate.doors.responses.state import Keeper, context, names_stored_reasoning, response_store
from modelgate.doors.responses.translate import left_out, to_chat
from modelgate.doors.responses.wire import ResponsesRequest, needs_of
from modelgate.errors import GatewayError, InvalidRequestError
from modelgate.gateway.admission import supports
from modelgate.gateway.metered import Attempt, Caller, Event, MeteredRequest, MeteredStream, Outcome, Settled
from modelgate.gateway.streaming import aclose
from modelgate.httpkit.contract import json_body, operation
from modelgate.httpkit.errors import validate_body
from modelgate.providers.base import Chunk, Completion, Provider, ProviderCall, RawEvent, RawReply, native
from modelgate.providers.openai_responses import DIALECT, TERMINAL
from modelgate.store.responses import Chain
from modelgate.wire.chat import ChatRequest
from modelgate.wire.media import check_responses_media

if TYPE_CHECKING:
    from modelgate.catalog.models import Route
    from modelgate.httpkit.deps import AppState

FORWARDED_HEADERS = ("openai-beta",)
DROPPED_TOOLS_HEADER = "x-modelgate-dropped-tools"  # before x-modelgate-dropped; kept
COUNT_PATHS = frozenset({"/v1/responses/input_tokens", "/responses/input_tokens"})
COMPACT_PATHS = frozenset({"/v1/responses/compact", "/responses/compact"})
_RESPONSE_EVENTS = frozenset({"response.created", "response.in_progress", "response.queued"}) | TERMINAL


class ResponsesInvocation:
    """Pass-through on routes that speak Responses, translation to chat elsewhere."""

    __slots__ = (
        "_chat",
        "_last",
        "chain",
        "dropped",
        "fields",
        "headers",
        "native",
        "owned",
        "raw",
        "refs",
        "req",
        "summaries",
    )

    def __init__(
        self,
        req: ResponsesRequest,
        raw: bytes,
        headers: dict[str, str],
        chain: Chain | None,
        refs: dict[str, dict[str, Any]],
        owned: frozenset[str] = frozenset(),
        summaries: Mapping[str, str | None] | None = None,
    ) -> None:
        self.req = req
        self.raw = raw
        self.headers = headers
        self.chain = chain
        self.refs = refs
        self.owned = owned  # reasoning items given by id that are the caller's own stored outputs
        self.summaries = summaries or {}  # compaction items' encrypted_content -> summary (compact.py)
        self._chat: dict[bool, tuple[ChatRequest, list[str]]] = {}
        self._last: ChatRequest | None = None
        self.dropped: list[str] = []  # tools the last translated attempt left out
        self.fields = left_out(req)  # request fields any translated attempt leaves out
        self.native = False  # the last attempt passed through

    def chat(self, tools_ok: bool = True) -> ChatRequest:
        """The request as chat; ``tools_ok`` False: for a model or route that cannot call tools
        (offered function tools are left out and named; a forced one was refused at admission)."""
        if tools_ok not in self._chat:
            history = self.chain.items if self.chain is not None else []
            self._chat[tools_ok] = to_chat(
                self.req,
                history,
                self.refs,
                stream=self.req.stream,
                tools_ok=tools_ok,
                summaries=self.summaries,
            )
        chat, self.dropped = self._chat[tools_ok]
        self._last = chat
        return chat

    @property
    def cacheable(self) -> bool:
        """Whether the response cache may keep this answer (``gateway/cached.py``): not a stored
        answer passed through, whose id is the upstream's own and is stored once (a translated
        answer gets a new id on every request, a hit too)."""
        return not (self.native and self.req.stored)

    def last_chat(self) -> ChatRequest:
        """The chat request of the last translated attempt (the answer echoes its tools)."""
        return self._last if self._last is not None else self.chat()

    def _call(self, provider: Provider, attempt: Attempt) -> ProviderCall:
        self.native = False
        model = attempt.model
        declared = "capabilities" not in model.model_fields_set or "tools" in model.capabilities
        return attempt.call(self.chat(declared and supports(provider, "tools")))

    def body(self, attempt: Attempt) -> bytes:
        return self.body_for(attempt.route)

    def body_for(self, route: Route) -> bytes:
        """The client's body for the upstream: byte for byte apart from the model name, unless the
        conversation behind ``previous_response_id`` lives here rather than at that upstream, or
        ``input`` names stored items by id (``doors/responses/state.py``: the upstream would resolve
        them under the operator's key, so the caller's own copies are sent instead)."""
        self.native = True
        chain = self.chain
        here = chain is None or (chain.native and chain.provider == route.provider)
        if here and not any(self._by_id(item) for item in self.req.items):
            return replace_top_level_string(self.raw, "model", route.model)
        data = orjson.loads(self.raw)
        data["model"] = route.model
        items: list[dict[str, Any] | None] = []
        if not here:
            assert chain is not None
            data.pop("previous_response_id", None)
            items.extend(_replayable(item) for item in chain.items)
        for item in self.req.items:
            if item.get("type") == "item_reference":
                items.append(_replayable(self.refs[item["id"]]))  # the caller's own (state.context)
            elif names_stored_reasoning(item) and item["id"] not in self.owned:
                items.append(None)  # another account's, or unknown: the upstream must not read it
            else:
                items.append(item)
        data["input"] = [item for item in items if item is not None]
        return orjson.dumps(data)

    def _by_id(self, item: dict[str, Any]) -> bool:
        """An input item the upstream would read from its own store by id, for us to rewrite."""
        if item.get("type") == "item_reference":
            return True
        return names_stored_reasoning(item) and item["id"] not in self.owned

    async def complete(self, provider: Provider, attempt: Attempt) -> Outcome:
        nat = native(provider, DIALECT)
        if nat is not None:
            reply = await nat.passthrough(DIALECT, self.body(attempt), {**self.headers, **attempt.headers})
            return Outcome(reply, reply.usage, reply.finish)
        result = await provider.complete(self._call(provider, attempt))
        finish = result.choices[0].get("finish_reason") if result.choices else None
        return Outcome(result, result.usage, finish)

    async def stream(self, provider: Provider, attempt: Attempt) -> AsyncIterator[Event]:
        nat = native(provider, DIALECT)
        if nat is not None:
            events = nat.passthrough_stream(DIALECT, self.body(attempt), {**self.headers, **attempt.headers})
            try:
                async for ev in events:
                    yield Event(ev, ev.usage, ev.finish, output=ev.output)
            finally:
                await aclose(events)
            return
        chunks = provider.stream(self._call(provider, attempt))
        try:
            async for chunk in chunks:
                finish = next(
                    (str(c["finish_reason"]) for c in chunk.choices if c.get("finish_reason")), None
                )
                yield Event(chunk, chunk.usage, finish, output=bool(chunk.choices))
        finally:
            await aclose(chunks)


def _replayable(item: dict[str, Any]) -> dict[str, Any] | None:
    """A stored item as input for a Responses upstream that did not make it: without our ids, and
    reasoning only when it carries its encrypted content."""
    if item.get("type") == "reasoning" and not item.get("encrypted_content"):
        return None
    return {k: v for k, v in item.items() if k != "id"}


class ResponsesDoor(OpenAIEnvelopeDoor):
    name = "responses"
    note = "OpenAI's Responses API."
    paths = frozenset({"/v1/responses", "/responses", *COUNT_PATHS, *COMPACT_PATHS})

    def openapi(self) -> dict[str, dict[str, Any]]:
        create = "Create a model response (JSON, or server-sent events with stream: true)"
        ops = {
            "/responses": operation(summary=create, body=json_body(ResponsesRequest), upstream=True),
            "/responses/input_tokens": operation(
                summary="Count the input tokens of a response request (not billed)",
                body=json_body(ResponsesRequest),
            ),
            "/responses/compact": operation(
                summary="Compact a conversation into its user messages and one compaction item",
                body=json_body(ResponsesRequest),
                upstream=True,
            ),
        }
        return {path: ops[path.removeprefix("/v1")] for path in self.paths}

    def parse(self, req: DoorRequest) -> ResponsesRequest:
        parsed = validate_body(req.body, ResponsesRequest)
        check_responses_media(parsed.items)  # on every route, passed through or not (wire/media.py)
        refused = parsed.unsupported()
        if refused is not None:
            field, why = refused
            raise InvalidRequestError(f"{field}: {why}", param=field, code="unsupported_parameter")
        if parsed.stream and req.path in COMPACT_PATHS:
            raise InvalidRequestError("stream: a compaction is never streamed", param="stream")
        return parsed

    def error(self, exc: GatewayError, req: DoorRequest, request_id: str) -> DoorResponse:
        return super().error(schema_error_in(exc, "text.format.schema"), req, request_id)

    async def run(self, state: AppState, parsed: Any, caller: Caller, req: DoorRequest) -> DoorResponse:
        rr: ResponsesRequest = parsed
        store = response_store(state)
        try:
            chain, refs, owned = await context(store, rr, caller)
        except GatewayError as exc:
            state.core.reject(caller, exc, model=rr.model, stream=rr.stream)
            raise
        headers = {h: v for h in FORWARDED_HEADERS if (v := req.header(h))}
        history = chain.items if chain is not None else []
        summaries = await open_compactions(state, caller, [*history, *rr.items, *refs.values()])
        invocation = ResponsesInvocation(rr, req.body, headers, chain, refs, owned, summaries)
        if req.path in COUNT_PATHS:
            return await count(state, invocation, caller)
        if req.path in COMPACT_PATHS:
            return await compact(state, invocation, caller, needs_of(rr))
        metered = MeteredRequest(
            model=rr.model,
            invocation=invocation,
            stream=rr.stream,
            provider=rr.provider,
            max_tokens=rr.max_output_tokens,
            max_tokens_field="max_output_tokens",
            prompt_estimate=prompt_upper_bound(rr, history, refs),
            needs=needs_of(rr),
            **hosted_tool_bounds(rr),
            cache=CacheAsk(req.body, "input", tuple(sorted(headers.items()))),
        )
        keep = Keeper(state, store, rr, caller, chain, refs) if store.enabled and rr.stored else None
        if rr.stream:
            stream = await state.core.stream(metered, caller)
            out = stream_headers(stream, _dropped(invocation))
            return DoorResponse(200, out, frames=_frames(stream, rr, invocation, caller, keep))
        done = await state.core.complete(metered, caller)
        if isinstance(done.payload, RawReply):
            body = replace_top_level_string(done.payload.body, "model", rr.model)
            if keep is not None:
                await keep.save(body, done.provider, native=True)
        else:
            result: Completion = done.payload
            rid = caller.inference_id
            items, status, incomplete = output_items(result, rid)
            shape = _shape(rr, invocation, rid)
            items = [namespaces.split(item, shape.names) for item in items]
            obj = shape.body(
                status=status, output=items, usage=done.usage, credits=done.credits, incomplete=incomplete
            )
            body = orjson.dumps(obj)
            if keep is not None:
                await keep.save(body, done.provider, native=False, obj=obj)
        return DoorResponse(200, answer_headers(done, _dropped(invocation)), body)


def _shape(rr: ResponsesRequest, invocation: ResponsesInvocation, rid: str) -> ResponseShape:
    chat = invocation.last_chat()
    kept = {t.function.name for t in chat.tools or []}
    return ResponseShape(response_id=f"resp_{rid}", model=rr.model, req=rr, tools=tools_echo(rr, kept))


def _dropped(invocation: ResponsesInvocation) -> dict[str, str]:
    """``x-modelgate-dropped`` (every door's header), and the older ``x-modelgate-dropped-tools``
    with the hosted tools' bare names, kept for clients that read it."""
    if invocation.native:
        return {}
    out = dropped_header([f"tools[{n}]" for n in invocation.dropped] + invocation.fields)
    if invocation.dropped:
        out[DROPPED_TOOLS_HEADER] = dropped_header(invocation.dropped)[DROPPED_HEADER]
    return out


async def _frames(
    stream: MeteredStream,
    rr: ResponsesRequest,
    invocation: ResponsesInvocation,
    caller: Caller,
    keep: Keeper | None,
) -> AsyncIterator[bytes]:
    events = stream.events
    translator: EventTranslator | None = None
    passed = 0  # upstream events passed through (their sequence numbers are 0..passed-1)
    held: bytes | None = None  # a pass-through stream's terminal event, sent once stored
    try:
        async for item in events:
            if isinstance(item, Settled):
                if translator is not None:
                    out, obj = translator.end(item.usage, item.credits)
                    if keep is not None:
                        await keep.save(orjson.dumps(obj), stream.provider, native=False, obj=obj)
                    yield out
                elif held is not None:
                    if keep is not None:
                        await keep.save(_response_in(held), stream.provider, native=True)
                    yield held
                continue
            payload = item.payload
            if isinstance(payload, RawEvent):
                passed += 1
                frame = payload.frame
                if payload.kind in _RESPONSE_EVENTS:
                    frame = replace_string_in_frame(frame, ("response", "model"), rr.model)
                if payload.kind in TERMINAL:
                    held = frame
                else:
                    yield frame
                continue
            chunk: Chunk = payload
            if translator is None:
                translator = EventTranslator(_shape(rr, invocation, caller.inference_id), caller.inference_id)
                yield translator.start()
            out = translator.chunk(chunk)
            if out:
                yield out
    except GatewayError as exc:
        code = getattr(exc, "upstream_type", None) or exc.code or exc.error_type
        if translator is not None:
            yield translator.fail(code, exc.message, exc.param)
        else:
            event = {"type": "error", "code": code, "message": exc.message, "param": exc.param}
            yield b"event: error\ndata: " + orjson.dumps({**event, "sequence_number": passed}) + b"\n\n"
    finally:
        await events.aclose()  # type: ignore[attr-defined]


def _response_in(frame: bytes) -> bytes:
    """The response object inside a terminal event (JSON), for storing."""
    span = data_span(frame)
    if span is None:
        return b""
    try:
        event = orjson.loads(frame[span[0] : span[1]])
    except orjson.JSONDecodeError:
        return b""
    response = event.get("response") if isinstance(event, dict) else None
    return orjson.dumps(response) if isinstance(response, dict) else b""
