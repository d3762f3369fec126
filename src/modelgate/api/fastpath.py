"""The hot path as a raw ASGI handler in front of the FastAPI routing.

``POST /v1/chat/completions`` (and ``/chat/completions``) is answered here directly: body read,
``api/chat.execute_chat``, response sent — no routing table, dependency solving or middleware
stack per request. ``app.GatewayApp`` sends everything else (and CORS preflights) through FastAPI,
which also serves the same route for Starlette callers. The CORS headers of the app's
``CORSMiddleware`` are reproduced here for the fast-path responses.

Streams: a task listens for ``http.disconnect`` while frames are sent; when the client leaves,
the frame generator is closed, which hands the upstream to the pipeline's abandon path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from modelgate.api.chat import JSON_HEADERS, ChatOutcome, execute_chat
from modelgate.api.deps import AppState, bearer_from, valid_client_request_id
from modelgate.api.errors import gateway_error_body, new_request_id
from modelgate.errors import GatewayError

log = logging.getLogger("modelgate.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
MAX_BODY = 32 * 1024 * 1024


class ChatFastPath:
    """Answers the chat endpoint for ``app.GatewayApp.__call__`` (``handles`` says when)."""

    def __init__(
        self, state: Callable[[], AppState], *, cors_origins: list[str], expose_headers: list[str]
    ) -> None:
        self._state = state
        self._any_origin = "*" in cors_origins
        self._origins = set(cors_origins)
        self._expose = ", ".join(expose_headers).encode()

    @staticmethod
    def handles(scope: Scope) -> bool:
        return scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in CHAT_PATHS

    @property
    def state(self) -> AppState:
        return self._state()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[bytes, bytes] = dict(scope["headers"])
        try:
            raw = await _read_body(receive)
            outcome = await execute_chat(
                self.state,
                raw=raw,
                path=scope["path"],
                token=bearer_from(_text(headers.get(b"authorization")), _text(headers.get(b"x-api-key"))),
                client_request_id=valid_client_request_id(_text(headers.get(b"x-client-request-id"))),
            )
        except _Disconnected:
            return
        except GatewayError as exc:  # body too large
            rid = new_request_id()
            body = orjson.dumps(gateway_error_body(exc, path=scope["path"], request_id=rid))
            outcome = ChatOutcome(exc.status_code, {"x-inference-id": rid, **JSON_HEADERS}, body)
        except Exception:
            rid = new_request_id()
            log.exception("unhandled error on POST %s (request %s)", scope["path"], rid)
            err = GatewayError(f"Internal server error (request id {rid})")
            body = orjson.dumps(gateway_error_body(err, path=scope["path"], request_id=rid))
            outcome = ChatOutcome(500, {"x-inference-id": rid, **JSON_HEADERS}, body)
        raw_headers = [(k.encode(), v.encode()) for k, v in outcome.headers.items()]
        origin = headers.get(b"origin")
        if origin is not None and (self._any_origin or origin.decode("latin-1") in self._origins):
            raw_headers.append((b"access-control-allow-origin", b"*" if self._any_origin else origin))
            raw_headers.append((b"access-control-expose-headers", self._expose))
            if not self._any_origin:
                raw_headers.append((b"vary", b"Origin"))
        if outcome.frames is None:
            raw_headers.append((b"content-length", str(len(outcome.body)).encode()))
            await send({"type": "http.response.start", "status": outcome.status, "headers": raw_headers})
            await send({"type": "http.response.body", "body": outcome.body})
            return
        await send({"type": "http.response.start", "status": outcome.status, "headers": raw_headers})
        await _stream(outcome.frames, receive, send)


class _Disconnected(Exception):
    pass


class _BodyTooLarge(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    if message["type"] == "http.disconnect":
        raise _Disconnected
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    parts = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _BodyTooLarge(f"Body validation error: the request body is larger than {MAX_BODY} bytes")
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


async def _stream(frames: AsyncIterator[bytes], receive: Receive, send: Send) -> None:
    """Send frames as they come; stop (closing the generator) as soon as the client leaves."""
    sender = asyncio.ensure_future(_send_frames(frames, send))
    watcher = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        await asyncio.wait((sender, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, watcher):
            if not task.done():
                task.cancel()
        for task in (sender, watcher):
            with contextlib.suppress(BaseException):
                await task
        close = getattr(frames, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()


async def _send_frames(frames: AsyncIterator[bytes], send: Send) -> None:
    async for frame in frames:
        if frame:
            await send({"type": "http.response.body", "body": frame, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None
