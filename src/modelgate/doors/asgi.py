"""The edge of the app: every HTTP request passes here first, once.

- Body size: one limit for every endpoint (``Settings.max_body_bytes``), applied while reading: a
  declared ``Content-Length`` over it is refused before any byte is read, a streamed body as soon as
  it crosses it — 413 in the envelope of the door (or the service's envelope elsewhere).
- Doors (``doors/``): ``POST`` to a door's path is answered here directly as raw ASGI — no routing
  table, dependency solving or middleware per request — through ``serve_door``, which also serves
  the web playground (with its own identity). Everything else goes to FastAPI.
- For a door: the request id, authentication, parsing, logging of refused requests, the door's error
  envelope for unexpected errors, CORS headers, and streaming with client-disconnect detection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson

from modelgate.cache.policy import MODE_HEADER, TTL_HEADER, CacheMode, parse_mode, parse_ttl
from modelgate.doors.base import JSON_HEADERS, Door, DoorRequest, DoorResponse
from modelgate.errors import GatewayError, InvalidRequestError
from modelgate.gateway.metered import Caller
from modelgate.httpkit.deps import valid_client_request_id
from modelgate.httpkit.errors import gateway_error_body, new_request_id
from modelgate.store.keys import KeyIdentity, KeyRevokedError
from modelgate.store.outage import is_unreachable, unavailable

if TYPE_CHECKING:
    from modelgate.httpkit.deps import AppState

log = logging.getLogger("modelgate.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"
    default_code = "request_too_large"


class ClientGone(Exception):
    pass


def too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(f"Body validation error: the request body is larger than {limit} bytes")


def declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def read_body(receive: Receive, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts) if len(parts) != 1 else parts[0]


async def serve_door(
    state: AppState,
    door: Door,
    req: DoorRequest,
    *,
    ident: KeyIdentity | None = None,
    origin: str = "api",
) -> DoorResponse:
    """One door request: authenticate, parse, meter, render — every failure in the door's envelope.
    ``ident`` skips key authentication (the web playground's own identity)."""
    rid = new_request_id()
    client_id = valid_client_request_id(req.header("x-client-request-id"))
    caller: Caller | None = None
    parsed: Any = None
    try:
        if ident is None:
            ident = await state.keys.authenticate(door.token(req))
        cache_mode, cache_ttl = cache_options(req)
        caller = Caller(
            ident=ident,
            inference_id=rid,
            door=door.name,
            path=req.path,
            origin=origin,
            client_request_id=client_id,
            cache_mode=cache_mode,
            cache_ttl=cache_ttl,
            traceparent=req.headers.get("traceparent"),
        )
        try:
            parsed = door.parse(req)
        except GatewayError as exc:
            state.core.reject(caller, exc, model=_model_hint(req.body))
            raise
        resp = await door.run(state, parsed, caller, req)
    except GatewayError as exc:
        if isinstance(exc, KeyRevokedError):  # revoked through another instance: stop caching it
            state.keys.forget(key_id=exc.key_id)
        resp = door.error(exc, req, rid)
        resp.headers = {**exc.headers, **resp.headers}
        _count(state, req.path, exc.status_code)
    except Exception as exc:
        if is_unreachable(exc):  # the database is down, cut or frozen: 503, not a bug (store/outage.py)
            log.warning("database unreachable on POST %s (request %s): %r", req.path, rid, exc)
            err = unavailable()
            resp = door.error(err, req, rid)
            resp.headers = {**err.headers, **resp.headers}
            _count(state, req.path, err.status_code)
        else:
            log.exception("unhandled error on POST %s (request %s)", req.path, rid)
            resp = door.error(GatewayError(f"Internal server error (request id {rid})"), req, rid)
            _count(state, req.path, 500)
    else:
        _count(state, req.path, resp.status)
    resp.headers["x-inference-id"] = rid
    if client_id:
        resp.headers["x-client-request-id"] = client_id
    return resp


def cache_options(req: DoorRequest) -> tuple[CacheMode | None, int | None]:
    """``x-modelgate-cache`` and ``x-modelgate-cache-ttl`` (docs/cache.md); a bad value is a 400."""
    mode, ttl = req.headers.get(MODE_HEADER), req.headers.get(TTL_HEADER)
    if mode is None and ttl is None:
        return None, None
    try:
        return parse_mode(mode), parse_ttl(ttl)
    except ValueError as exc:
        raise InvalidRequestError(
            str(exc), param=TTL_HEADER if TTL_HEADER in str(exc) else MODE_HEADER
        ) from exc


def _model_hint(body: bytes) -> str | None:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    model = data.get("model") if isinstance(data, dict) else None
    return model[:200] if isinstance(model, str) else None


def _count(state: AppState, path: str, status: int) -> None:
    metrics = state.extras.get("metrics")
    if metrics is not None:
        metrics.http.inc((path, str(status)))


class Edge:
    """The outermost ASGI app (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        state: Callable[[], AppState],
        doors: list[Door],
        *,
        max_body: int,
        cors_origins: list[str],
        expose_headers: list[str],
    ) -> None:
        self.app = app
        self._state = state
        self._doors = {path: door for door in doors for path in door.paths}
        self._max_body = max_body
        self._any_origin = "*" in cors_origins
        self._origins = set(cors_origins)
        self._expose = ", ".join(expose_headers).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        door = self._doors.get(scope["path"])
        if door is not None and scope["method"] == "POST":
            await self._door(door, scope, receive, send)
            return
        if door is not None and scope["method"] != "OPTIONS":  # preflights go to CORS in FastAPI
            await self._not_allowed(door, scope, send)
            return
        length = declared_length(scope)
        if length is not None and length > self._max_body:
            await self._plain_413(scope, send)
            return
        await self.app(scope, self._limited(receive), send)

    def _limited(self, receive: Receive) -> Receive:
        size = 0
        limit = self._max_body

        async def limited() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > limit:
                    raise too_large(limit)  # rendered by the app's GatewayError handler
            return message

        return limited

    async def _plain_413(self, scope: Scope, send: Send) -> None:
        rid = new_request_id()
        body = orjson.dumps(gateway_error_body(too_large(self._max_body), path=scope["path"], request_id=rid))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-inference-id", rid.encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _not_allowed(self, door: Door, scope: Scope, send: Send) -> None:
        req = DoorRequest(path=scope["path"], headers={}, body=b"")
        exc = GatewayError(f"Cannot {scope['method']} {scope['path']}: use POST")
        exc.status_code, exc.error_type = 405, "invalid_request_error"
        resp = door.error(exc, req, new_request_id())
        resp.headers["allow"] = "POST, OPTIONS"
        await self._respond(resp, None, _no_receive, send)

    async def _door(self, door: Door, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        req = DoorRequest(
            path=scope["path"],
            headers=headers,
            body=b"",
            query=scope.get("query_string", b"").decode("latin-1"),
        )
        state = self._state()
        length = declared_length(scope)
        try:
            if length is not None and length > self._max_body:
                raise too_large(self._max_body)
            req.body = await read_body(receive, self._max_body)
        except ClientGone:
            return
        except GatewayError as exc:
            resp = door.error(exc, req, new_request_id())
            resp.headers["connection"] = "close"
        else:
            resp = await serve_door(state, door, req)
        del req  # not kept while the answer streams: a body can be hundreds of KB (an agent's)
        await self._respond(resp, headers.get("origin"), receive, send)

    async def _respond(self, resp: DoorResponse, origin: str | None, receive: Receive, send: Send) -> None:
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()]
        if origin is not None and (self._any_origin or origin in self._origins):
            raw.append(
                (b"access-control-allow-origin", b"*" if self._any_origin else origin.encode("latin-1"))
            )
            raw.append((b"access-control-expose-headers", self._expose))
            if not self._any_origin:
                raw.append((b"vary", b"Origin"))
        if resp.frames is None:
            raw.append((b"content-length", str(len(resp.body)).encode()))
            await send({"type": "http.response.start", "status": resp.status, "headers": raw})
            await send({"type": "http.response.body", "body": resp.body})
            return
        await send({"type": "http.response.start", "status": resp.status, "headers": raw})
        await stream_frames(resp.frames, receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


async def stream_frames(frames: AsyncIterator[bytes], receive: Receive, send: Send) -> None:
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


__all__ = ["JSON_HEADERS", "BodyTooLarge", "Edge", "read_body", "serve_door", "stream_frames"]
