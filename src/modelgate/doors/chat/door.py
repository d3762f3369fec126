"""The Chat Completions door (``POST /v1/chat/completions``), as the AI/ML API documents it.

Parse into ``wire/chat.py``'s ``ChatRequest``; meter it on the core with ``ChatInvocation`` (every
adapter speaks the chat shape: ``providers/base.py``); render the OpenAI body or SSE chunks with
``meta.usage``; errors in the AI/ML API envelope (``httpkit/errors.py``), in-stream as one error frame.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from modelgate.cache.policy import CacheAsk
from modelgate.doors.base import (
    DoorRequest,
    DoorResponse,
    OpenAIEnvelopeDoor,
    answer_headers,
    dropped_header,
    stream_headers,
)
from modelgate.doors.chat.render import DONE, ChunkRenderer, completion_body, error_frame
from modelgate.doors.estimate import prompt_tokens_upper_bound
from modelgate.errors import GatewayError
from modelgate.gateway.metered import Attempt, Caller, Event, MeteredRequest, MeteredStream, Outcome, Settled
from modelgate.gateway.streaming import aclose
from modelgate.httpkit.contract import json_body, operation
from modelgate.httpkit.errors import gateway_error_body, validate_body
from modelgate.providers.base import Chunk, Completion, Provider, ProviderCall
from modelgate.providers.checks import checked_chunk, checked_completion
from modelgate.wire.chat import ChatRequest, ImagePart, ResponseFormatText
from modelgate.wire.media import check_chat_media

if TYPE_CHECKING:
    from modelgate.httpkit.deps import AppState


class ChatInvocation:
    """Calls an adapter with the chat request (adapters translate to their upstream's protocol)."""

    __slots__ = ("dropped", "req")

    def __init__(self, req: ChatRequest) -> None:
        self.req = req
        self.dropped: list[str] = []  # unknown top-level fields the last attempt's adapter left out

    def call(self, attempt: Attempt) -> ProviderCall:
        return attempt.call(self.req)

    def _note_dropped(self, provider: Provider) -> None:
        extra = self.req.model_extra
        self.dropped = sorted(extra) if extra and not provider.forwards_unknown_fields else []

    async def complete(self, provider: Provider, attempt: Attempt) -> Outcome:
        self._note_dropped(provider)
        # Checked at the boundary (providers/checks.py): bounded token counts, documented finishes.
        result = checked_completion(await provider.complete(self.call(attempt)), provider=provider.name)
        return Outcome(result, result.usage, first_finish(result))

    async def stream(self, provider: Provider, attempt: Attempt) -> AsyncIterator[Event]:
        self._note_dropped(provider)
        chunks = provider.stream(self.call(attempt))
        try:
            name = provider.name
            async for raw in chunks:
                chunk = checked_chunk(raw, provider=name)
                choices = chunk.choices
                if len(choices) == 1:  # the first choice's finish, inline: a call per chunk fewer
                    finish = choices[0].get("finish_reason") or None
                    yield Event(chunk, chunk.usage, finish, True)
                    continue
                finish = None
                for c in choices:
                    if c.get("finish_reason"):
                        finish = str(c["finish_reason"])
                        break
                yield Event(chunk, chunk.usage, finish, bool(choices))
        finally:
            await aclose(chunks)


def parse_chat_request(raw: bytes) -> ChatRequest:
    req = validate_body(raw, ChatRequest)
    check_chat_media(req)  # inline images, files and audio decode (wire/media.py, every door)
    return req


def chat_needs(req: ChatRequest) -> frozenset[str]:
    needs: set[str] = set()
    if req.stream:
        needs.add("streaming")
    if req.tools:
        needs.add("tools")
    if req.response_format is not None and not isinstance(req.response_format, ResponseFormatText):
        needs.add("structured_output")
    for msg in req.messages:
        if isinstance(msg.content, list) and any(isinstance(p, ImagePart) for p in msg.content):
            needs.add("vision")
            break
    return frozenset(needs)


def metered_chat(req: ChatRequest, raw: bytes | None = None) -> MeteredRequest:
    """``raw``: the request's body, when the response cache may serve it (docs/cache.md)."""
    return MeteredRequest(
        model=req.model,
        invocation=ChatInvocation(req),
        stream=req.stream,
        provider=req.provider,
        max_tokens=req.output_limit,
        max_tokens_field="max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens",
        prompt_estimate=prompt_tokens_upper_bound(req),
        n=req.n or 1,
        needs=chat_needs(req),
        cache=CacheAsk(raw, "messages") if raw is not None else None,
    )


class ChatDoor(OpenAIEnvelopeDoor):
    name = "chat"
    note = (
        "OpenAI-compatible chat completions (JSON or SSE stream). Each model's request schema, limits "
        "and code samples are on its page under Docs."
    )
    paths = frozenset({"/v1/chat/completions", "/chat/completions"})

    def openapi(self) -> dict[str, dict[str, Any]]:
        op = operation(
            summary="Create a chat completion (JSON, or server-sent events with stream: true)",
            body=json_body(ChatRequest),
            upstream=True,
            responses={
                "200": {
                    "description": "The completion, or its stream of chunks",
                    "content": {"application/json": {}, "text/event-stream": {}},
                }
            },
        )
        return dict.fromkeys(self.paths, op)

    def parse(self, req: DoorRequest) -> ChatRequest:
        return parse_chat_request(req.body)

    async def run(self, state: AppState, parsed: Any, caller: Caller, req: DoorRequest) -> DoorResponse:
        chat: ChatRequest = parsed
        metered = metered_chat(chat, req.body)
        if chat.stream:
            stream = await state.core.stream(metered, caller)
            out = stream_headers(stream, _dropped(metered))
            return DoorResponse(200, out, frames=self._frames(stream, chat, caller, req.path))
        done = await state.core.complete(metered, caller)
        result: Completion = done.payload
        body = completion_body(
            completion_id=f"chatcmpl-{caller.inference_id}",
            created=int(time.time()),
            model=done.model.id,
            result=result,
            credits=done.credits,
        )
        return DoorResponse(200, answer_headers(done, _dropped(metered)), orjson.dumps(body))

    @staticmethod
    async def _frames(
        stream: MeteredStream, chat: ChatRequest, caller: Caller, path: str
    ) -> AsyncIterator[bytes]:
        renderer = ChunkRenderer(
            completion_id=f"chatcmpl-{caller.inference_id}", created=int(time.time()), model=stream.model.id
        )
        include_usage = chat.include_usage
        events = stream.events
        try:
            async for item in events:
                if isinstance(item, Settled):
                    yield renderer.tail(item.usage, item.credits, include_usage=include_usage)
                    yield DONE
                    continue
                chunk: Chunk = item.payload
                frame = renderer.choices(chunk, hold_finish=not include_usage)
                if frame is not None:
                    yield frame
        except GatewayError as exc:
            yield renderer.flush() + error_frame(
                gateway_error_body(exc, path=path, request_id=caller.inference_id)
            )
        finally:
            await events.aclose()  # type: ignore[attr-defined]


def _dropped(metered: MeteredRequest) -> dict[str, str]:
    """Unknown top-level fields that a route's adapter could not forward, named (``x-modelgate-dropped``)."""
    invocation = metered.invocation
    return dropped_header(invocation.dropped) if isinstance(invocation, ChatInvocation) else {}


def first_finish(result: Completion) -> str | None:
    return result.choices[0].get("finish_reason") if result.choices else None
