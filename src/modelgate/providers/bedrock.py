"""Amazon Bedrock's Converse API, ``type: bedrock``: any chat model Bedrock hosts, one protocol.

``POST {base}/model/{modelId}/converse`` and ``/converse-stream`` (``base`` default
``https://bedrock-runtime.{region}.amazonaws.com``; a route's upstream ``model`` is the model id or
inference-profile id, e.g. ``us.anthropic.claude-sonnet-4-5-20250929-v1:0``, percent-encoded in the
path). Every request is signed with SigV4 (service ``bedrock``) from the standard credential chain
(``providers.sigv4``). The chat <-> Converse mapping is ``bedrock_convert``'s.

Streams are AWS event-stream binary frames (``providers.eventstream``): ``:message-type: event``
with the event name in ``:event-type`` and a JSON payload; ``exception`` frames (a throttling or
validation failure after the 200) become ``UpstreamStatusError``s with the status their name
stands for. A body that ends inside a frame, or before ``messageStop``, is a connection error.
Errors over HTTP are ``{"message": ...}`` bodies with the exception's name in ``x-amzn-ErrorType``.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import orjson

from modelgate.catalog.models import ProviderConfig
from modelgate.errors import UpstreamConnectionError, UpstreamProtocolError, UpstreamStatusError
from modelgate.providers.base import AdapterDefaults, Chunk, Completion, ProviderCall, ProviderContext
from modelgate.providers.bedrock_convert import EXCEPTION_STATUS, StreamState, build_request, parse_converse
from modelgate.providers.eventstream import EventStreamDecoder, Message
from modelgate.providers.http import HTTPUpstream, upstream_status_error
from modelgate.providers.httpclient import Response
from modelgate.providers.sigv4 import SigV4Signer, resolve_credentials, resolve_region
from modelgate.sanitize import db_text

SERVICE = "bedrock"


def bedrock_upstream(name: str, config: ProviderConfig, context: ProviderContext) -> HTTPUpstream:
    """The pooled client for one region, signing every request with SigV4."""
    region = resolve_region(name, config.options, context.environ)
    credentials = resolve_credentials(name, config.options, context.environ)
    signer = SigV4Signer(credentials, region=region, service=SERVICE)
    base = config.base_url or f"https://bedrock-runtime.{region}.amazonaws.com"
    return HTTPUpstream(
        name,
        config,
        default_headers={"User-Agent": context.user_agent},
        signer=signer,
        base_url=base,
        environ=context.environ,
    )


def model_path(model: str, operation: str) -> str:
    return f"/model/{quote(model, safe='-._~')}/{operation}"


def exception_error(provider: str, message: Message) -> UpstreamStatusError:
    """An ``exception`` or ``error`` frame as the status error it stands for."""
    if message.header(":message-type") == "error":
        code, said = message.header(":error-code"), message.header(":error-message")
        return upstream_status_error(
            provider, 502, db_text(f"{code}: {said}", 500), during="failed with status"
        )
    name = message.header(":exception-type")
    try:
        body = orjson.loads(message.payload)
    except orjson.JSONDecodeError:
        body = {}
    text = body.get("message") if isinstance(body, dict) else None
    status = EXCEPTION_STATUS.get(name, 502)
    err = upstream_status_error(
        provider, status, db_text(text or name, 500) or None, during="failed mid-stream with status"
    )
    err.upstream_type = name[:100] or None
    return err


async def read_events(resp: Response, provider: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(event name, JSON payload) of each ``event`` frame of an event-stream body, as it arrives."""
    decoder = EventStreamDecoder(provider)
    async for data in resp.chunks():
        for message in decoder.feed(data):
            kind = message.header(":message-type") or "event"
            if kind != "event":
                raise exception_error(provider, message)
            try:
                payload = orjson.loads(message.payload) if message.payload else {}
            except orjson.JSONDecodeError as exc:
                raise UpstreamProtocolError(
                    f"upstream {provider} sent a stream event that is not JSON", provider=provider
                ) from exc
            if not isinstance(payload, dict):
                raise UpstreamProtocolError(f"upstream {provider} sent a bad stream event", provider=provider)
            yield message.header(":event-type"), payload
    if decoder.pending:
        raise UpstreamConnectionError(
            f"upstream {provider} ended the stream inside a frame", provider=provider
        )


def chunk_payload(provider: str, payload: dict[str, Any]) -> bytes:
    """InvokeModel streams wrap each model event as ``{"bytes": "<base64>"}``."""
    raw = payload.get("bytes")
    if not isinstance(raw, str):
        raise UpstreamProtocolError(f"upstream {provider} sent a chunk without bytes", provider=provider)
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise UpstreamProtocolError(
            f"upstream {provider} sent a chunk that is not base64", provider=provider
        ) from exc


class BedrockProvider(AdapterDefaults):
    supports_tools = True
    supports_json_schema = False  # Converse has no JSON mode (a forced tool would be a translation)
    supports_streaming = True
    supports_vision = True
    supports_embeddings = False
    forwards_unknown_fields = False
    drain_on_disconnect = True  # usage comes in the last (metadata) event
    dialects: frozenset[str] = frozenset()

    def __init__(self, name: str, config: ProviderConfig, context: ProviderContext) -> None:
        self.name = name
        self._http = bedrock_upstream(name, config, context)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def complete(self, call: ProviderCall) -> Completion:
        data = await self._http.post_json(model_path(call.upstream_model, "converse"), build_request(call))
        choice, usage = parse_converse(data, self.name)
        request_id = data.get("ResponseMetadata", {}).get("RequestId") if isinstance(data, dict) else None
        return Completion(
            choices=[choice], usage=usage, upstream_id=request_id if isinstance(request_id, str) else None
        )

    async def stream(self, call: ProviderCall) -> AsyncIterator[Chunk]:
        state = StreamState(provider=self.name)
        stopped = False
        path = model_path(call.upstream_model, "converse-stream")
        async with self._http.post(path, build_request(call)) as resp:
            async for kind, event in read_events(resp, self.name):
                delta = state.feed(kind, event)
                if kind == "messageStop":
                    stopped = True
                    yield Chunk(choices=[_choice({}, state.finish)])
                elif delta is not None:
                    yield Chunk(choices=[_choice(delta, None)])
                if kind == "metadata":
                    break
        if not stopped:
            raise UpstreamConnectionError(
                f"upstream {self.name} ended the stream before messageStop", provider=self.name
            )
        if state.usage is None:
            raise UpstreamConnectionError(
                f"upstream {self.name} ended the stream without usage", provider=self.name
            )
        yield Chunk(choices=[], usage=state.usage)


def _choice(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}


def create(name: str, config: ProviderConfig, context: ProviderContext) -> BedrockProvider:
    return BedrockProvider(name, config, context)
