"""What a door is: one API dialect in front of the metered core.

A door parses and validates its wire request (``parse``), runs it on the core (``run``: it builds a
``MeteredRequest`` with an ``Invocation`` and renders the ``Metered`` answer or ``MeteredStream`` in
its own wire shape) and renders errors in its own envelope (``error``). Everything HTTP that doors
share — reading the body under the size limit, authentication, request ids, CORS, logging refused
requests, unexpected errors — lives once, in ``doors/asgi.py``.

Adding a dialect = one module implementing ``Door`` + its registration in ``doors/__init__.py``;
its ``note`` attribute is its one-line summary in the API reference (``web/apidocs.py``).
A door also declares its contract for ``/openapi.json``: an ``openapi()`` method returning
``{path: operation}``, built with ``httpkit/contract.py``'s ``operation(...)`` and ``json_body(Model)``
(a door without one is listed with a free-form body; the fuzz test covers it either way).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import orjson

from modelgate.errors import GatewayError, InvalidRequestError
from modelgate.gateway.metered import Attempt, Caller, Event, Metered, MeteredStream
from modelgate.httpkit.deps import bearer_from
from modelgate.httpkit.errors import gateway_error_body
from modelgate.wire.credits import cost_headers

if TYPE_CHECKING:
    from modelgate.catalog.models import ModelSpec
    from modelgate.httpkit.deps import AppState

T = TypeVar("T")

SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no"}
JSON_HEADERS = {"content-type": "application/json"}
# What a translated route left out of a request, on every door: request paths, comma-separated
# (``tools[web_search], context_management, output_config.effort``). Only what dropping does not
# change the answer asked for is ever dropped (docs/architecture.md, "Doors are liberal").
DROPPED_HEADER = "x-modelgate-dropped"
CACHE_HEADER = "x-modelgate-cache"  # on an answer served from the response cache: hit:exact | hit:semantic


@dataclass(slots=True)
class DoorRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    query: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(slots=True)
class DoorResponse:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    frames: AsyncIterator[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Door(Protocol):
    name: str  # chat | messages | responses | embeddings (logged with every request)
    paths: frozenset[str]

    def token(self, req: DoorRequest) -> str | None:
        """The API key the request carries, by the dialect's convention."""
        ...

    def parse(self, req: DoorRequest) -> Any:
        """Validate the body; raise ``InvalidRequestError`` naming the field."""
        ...

    async def run(self, state: AppState, parsed: Any, caller: Caller, req: DoorRequest) -> DoorResponse:
        """Meter the request on ``state.core`` and render the answer (core errors propagate)."""
        ...

    def error(self, exc: GatewayError, req: DoorRequest, request_id: str) -> DoorResponse:
        """``exc`` in the dialect's own envelope and status codes."""
        ...


def dropped_header(names: list[str]) -> dict[str, str]:
    """The ``x-modelgate-dropped`` header for these names (none: no header); printable ASCII only,
    bounded."""
    if not names:
        return {}
    clean = ", ".join("".join(c for c in n if c.isascii() and c.isprintable()) for n in names)
    return {DROPPED_HEADER: clean[:1000]}


def answer_headers(done: Metered, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The headers of a whole answer, in every door: the core's (rate limits), the provider that
    served it, its cost (``x-aimlapi-*``), the door's ``extra``, then the JSON content type."""
    out = {**done.headers, "x-modelgate-provider": done.provider, **cost_headers(done.credits)}
    if done.cache is not None:
        out[CACHE_HEADER] = done.cache
    return {**out, **(extra or {}), **JSON_HEADERS}


def stream_headers(stream: MeteredStream, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The headers of a stream (its cost comes in the last event): the provider, the core's, the
    door's ``extra``, then the SSE ones."""
    out = {"x-modelgate-provider": stream.provider, **stream.headers, **(extra or {}), **SSE_HEADERS}
    if stream.cache is not None:
        out[CACHE_HEADER] = stream.cache
    return out


def bearer_or_api_key(req: DoorRequest) -> str | None:
    """``Authorization: Bearer KEY``, else ``x-api-key: KEY`` (``httpkit/deps.py`` ``bearer_from``)."""
    return bearer_from(req.header("authorization"), req.header("x-api-key"))


class BearerKeyDoor:
    """``Door.token`` as every built-in door reads it (``bearer_or_api_key``), for doors to inherit."""

    def token(self, req: DoorRequest) -> str | None:
        return bearer_or_api_key(req)


class OpenAIEnvelopeDoor(BearerKeyDoor):
    """A door whose errors are the AI/ML API's (OpenAI's) JSON envelope: chat, Responses,
    embeddings, images, audio. (Messages answers in Anthropic's envelope: its own ``error``.)"""

    def error(self, exc: GatewayError, req: DoorRequest, request_id: str) -> DoorResponse:
        body = orjson.dumps(gateway_error_body(exc, path=req.path, request_id=request_id))
        return DoorResponse(exc.status_code, {**exc.headers, **JSON_HEADERS}, body)


def checked(state: AppState, caller: Caller, model: str, check: Callable[[ModelSpec | None], T]) -> T:
    """The prologue of the doors that check a request against its model before metering it
    (embeddings, images, speech, transcriptions): ``check`` gets the catalogue's model (None when
    unknown: admission answers that); a 400 it raises is logged as a refused request and re-raised."""
    try:
        return check(state.catalog.find(model))
    except InvalidRequestError as exc:
        state.core.reject(caller, exc, model=model)
        raise


def whole_answer(
    done: Metered, body: bytes, request: Any, extra: Mapping[str, str] | None = None
) -> DoorResponse:
    """A 200 of a whole answer: ``answer_headers``, the request's unknown top-level fields named in
    ``x-modelgate-dropped`` (tolerated; no adapter forwards them), then ``extra`` (which may set
    another content type)."""
    headers = answer_headers(done, dropped_header(sorted(getattr(request, "model_extra", None) or {})))
    headers.update(extra or {})
    return DoorResponse(200, headers, body)


class NeverStreamed:
    """For the invocation of an endpoint that always answers whole (embeddings, images,
    transcriptions): admission never asks it to stream; if something did, a 400."""

    __slots__ = ()
    unstreamed: ClassVar[str] = "this endpoint is never streamed"

    async def stream(self, provider: Any, attempt: Attempt) -> AsyncIterator[Event]:
        raise InvalidRequestError(self.unstreamed)
        yield  # pragma: no cover  (an async generator, as the protocol wants)


CHAT_SCHEMA = "response_format.json_schema.schema"


def schema_error_in(exc: GatewayError, where: str) -> GatewayError:
    """A 400 about the JSON schema of a request translated to chat (the local model's schema
    bounds, for example) names the field where this door's client wrote the schema: ``where``."""
    if not isinstance(exc, InvalidRequestError) or not (exc.param or "").startswith(CHAT_SCHEMA):
        return exc
    return InvalidRequestError(
        exc.message.replace(CHAT_SCHEMA, where, 1),
        param=where + (exc.param or "")[len(CHAT_SCHEMA) :],
        code=exc.code,
        headers=exc.headers,
    )
