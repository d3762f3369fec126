"""``POST /v1/chat/completions``: parse, authenticate, call the gateway, render JSON or SSE."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response, StreamingResponse

from modelgate.accounts.keys import KeyIdentity
from modelgate.api.deps import AppState, app_state, bearer_token, client_request_id
from modelgate.api.errors import error_response, format_validation_errors, new_request_id
from modelgate.errors import GatewayError, InvalidRequestError
from modelgate.gateway.pipeline import RequestMeta
from modelgate.gateway.render import usd_header
from modelgate.wire.chat import ChatRequest

router = APIRouter()

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def parse_chat_request(raw: bytes) -> ChatRequest:
    if not raw.strip():
        raise InvalidRequestError("Body validation error: the request body is empty; send a JSON object")
    try:
        return ChatRequest.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        if errors and errors[0].get("type") == "json_invalid":
            raise InvalidRequestError("Body validation error: the request body is not valid JSON") from None
        if errors and errors[0].get("type") == "model_type" and not errors[0].get("loc"):
            raise InvalidRequestError(
                "Body validation error: the request body must be a JSON object"
            ) from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        message, param = format_validation_errors(list(errors), data)
        raise InvalidRequestError(message, param=param) from None


async def run_chat(request: Request, *, origin: str = "api", ident: KeyIdentity | None = None) -> Response:
    """Run one chat request; ``ident`` skips bearer authentication (the web playground passes its own)."""
    state = app_state(request)
    inference_id = new_request_id()
    request.state.inference_id = inference_id
    crid = client_request_id(request)
    headers = {"x-inference-id": inference_id}
    if crid:
        headers["x-client-request-id"] = crid
    try:
        if ident is None:
            ident = await state.keys.authenticate(bearer_token(request))
        req = parse_chat_request(await request.body())
        meta = RequestMeta(
            inference_id=inference_id, client_request_id=crid, origin=origin, path=request.url.path
        )
        if req.stream:
            result = await state.gateway.stream(req, ident, meta)
            headers["x-modelgate-provider"] = result.provider
            if meta.rate_headers:
                headers.update(meta.rate_headers)
            _count(state, request, 200)
            return StreamingResponse(
                result.frames, media_type="text/event-stream", headers={**headers, **SSE_HEADERS}
            )
        done = await state.gateway.complete(req, ident, meta)
    except GatewayError as exc:
        _count(state, request, exc.status_code)
        return error_response(exc, request, extra_headers=headers)
    _count(state, request, 200)
    if meta.rate_headers:
        headers.update(meta.rate_headers)
    headers["x-modelgate-provider"] = done.provider
    headers["x-aimlapi-credits-used"] = str(done.credits)
    headers["x-aimlapi-usd-spent"] = usd_header(done.credits)
    return Response(orjson.dumps(done.body), media_type="application/json", headers=headers)


def _count(state: AppState, request: Request, status: int) -> None:
    metrics = state.extras.get("metrics")
    if metrics is not None:
        metrics.http.inc((request.scope["path"], str(status)))


@router.post("/v1/chat/completions", response_model=None)
@router.post("/chat/completions", response_model=None, include_in_schema=False)
async def chat_completions(request: Request) -> Response:
    return await run_chat(request)
