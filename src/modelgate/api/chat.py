"""``POST /v1/chat/completions``: parse, authenticate, call the gateway, render JSON or SSE.

``execute_chat`` is the framework-free core, returning a ``ChatOutcome``. Two front-ends use it:
``api/fastpath.py`` serves the public endpoint as a raw ASGI handler in front of FastAPI (the hot
path pays for no routing, dependency or middleware layers), and ``run_chat`` below serves
Starlette callers such as the web playground.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from modelgate.accounts.keys import KeyIdentity
from modelgate.api.deps import AppState, app_state, bearer_from, valid_client_request_id
from modelgate.api.errors import gateway_error_body, new_request_id, validate_body
from modelgate.errors import GatewayError
from modelgate.gateway.recorder import RequestMeta
from modelgate.gateway.render import usd_header
from modelgate.wire.chat import ChatRequest

router = APIRouter()

SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no"}
JSON_HEADERS = {"content-type": "application/json"}


@dataclass(slots=True)
class ChatOutcome:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    frames: AsyncIterator[bytes] | None = None
    extra: dict[str, str] = field(default_factory=dict)


def parse_chat_request(raw: bytes) -> ChatRequest:
    return validate_body(raw, ChatRequest)


async def execute_chat(
    state: AppState,
    *,
    raw: bytes,
    path: str,
    token: str | None,
    client_request_id: str | None,
    origin: str = "api",
    ident: KeyIdentity | None = None,
) -> ChatOutcome:
    """Run one chat request; ``ident`` skips bearer authentication (the web playground's own)."""
    inference_id = new_request_id()
    headers = {"x-inference-id": inference_id}
    if client_request_id:
        headers["x-client-request-id"] = client_request_id
    meta = RequestMeta(
        inference_id=inference_id, client_request_id=client_request_id, origin=origin, path=path
    )
    try:
        if ident is None:
            ident = await state.keys.authenticate(token)
        req = parse_chat_request(raw)
        if req.stream:
            result = await state.gateway.stream(req, ident, meta)
            headers["x-modelgate-provider"] = result.provider
            if meta.rate_headers:
                headers.update(meta.rate_headers)
            _count(state, path, 200)
            return ChatOutcome(200, {**headers, **SSE_HEADERS}, frames=result.frames)
        done = await state.gateway.complete(req, ident, meta)
    except GatewayError as exc:
        _count(state, path, exc.status_code)
        body = orjson.dumps(gateway_error_body(exc, path=path, request_id=inference_id))
        return ChatOutcome(exc.status_code, {**exc.headers, **headers, **JSON_HEADERS}, body)
    _count(state, path, 200)
    if meta.rate_headers:
        headers.update(meta.rate_headers)
    headers["x-modelgate-provider"] = done.provider
    headers["x-aimlapi-credits-used"] = str(done.credits)
    headers["x-aimlapi-usd-spent"] = usd_header(done.credits)
    headers.update(JSON_HEADERS)
    return ChatOutcome(200, headers, orjson.dumps(done.body))


async def run_chat(request: Request, *, origin: str = "api", ident: KeyIdentity | None = None) -> Response:
    """``execute_chat`` for Starlette callers (the web playground; the route below as a fallback)."""
    outcome = await execute_chat(
        app_state(request),
        raw=await request.body(),
        path=request.url.path,
        token=bearer_from(request.headers.get("authorization"), request.headers.get("x-api-key")),
        client_request_id=valid_client_request_id(request.headers.get("x-client-request-id")),
        origin=origin,
        ident=ident,
    )
    request.state.inference_id = outcome.headers["x-inference-id"]
    if outcome.frames is not None:
        return StreamingResponse(outcome.frames, status_code=outcome.status, headers=outcome.headers)
    return Response(outcome.body, status_code=outcome.status, headers=outcome.headers)


def _count(state: AppState, path: str, status: int) -> None:
    metrics = state.extras.get("metrics")
    if metrics is not None:
        metrics.http.inc((path, str(status)))


@router.post("/v1/chat/completions", response_model=None)
@router.post("/chat/completions", response_model=None, include_in_schema=False)
async def chat_completions(request: Request) -> Response:
    return await run_chat(request)
