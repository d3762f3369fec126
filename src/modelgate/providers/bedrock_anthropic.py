"""Claude on Amazon Bedrock through InvokeModel, ``type: bedrock-anthropic``: Anthropic's own
Messages body and answers, so the Messages door passes requests through and chat requests use the
Anthropic translation.

``POST {base}/model/{modelId}/invoke`` and ``/invoke-with-response-stream``, signed with SigV4 like
``type: bedrock``. The body is the Messages body without ``model`` (it is in the URL) or
``stream`` (the endpoint says it), with ``anthropic_version: "bedrock-2023-05-31"``; a client's
``anthropic-beta`` header becomes the body's ``anthropic_beta`` list. Stream answers are AWS
event-stream frames whose ``chunk`` events carry each Anthropic event base64-encoded in ``bytes``;
they are decoded and, for pass-through, re-framed as the SSE events Anthropic's API sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from modelgate.catalog.models import ProviderConfig
from modelgate.errors import UpstreamProtocolError
from modelgate.providers.anthropic import AnthropicProvider
from modelgate.providers.base import ProviderContext
from modelgate.providers.bedrock import bedrock_upstream, chunk_payload, model_path, read_events
from modelgate.providers.convert import body_model, body_object
from modelgate.providers.http import HTTPUpstream
from modelgate.providers.httpclient import Response
from modelgate.providers.sse import SSEEvent

BEDROCK_ANTHROPIC_VERSION = "bedrock-2023-05-31"


class BedrockAnthropicProvider(AnthropicProvider):
    def _upstream(self, name: str, config: ProviderConfig, context: ProviderContext) -> HTTPUpstream:
        return bedrock_upstream(name, config, context)

    @staticmethod
    def _path(model: str, stream: bool) -> str:
        return model_path(model, "invoke-with-response-stream" if stream else "invoke")

    def _route(self, body: dict[str, Any], *, stream: bool) -> tuple[str, dict[str, Any]]:
        model = str(body.pop("model"))
        body.pop("stream", None)
        body["anthropic_version"] = BEDROCK_ANTHROPIC_VERSION
        return self._path(model, stream), body

    def _route_raw(self, body: bytes, headers: Mapping[str, str], *, stream: bool) -> tuple[str, bytes]:
        data = body_object(body)
        model = body_model(data)
        data.pop("stream", None)
        data.setdefault("anthropic_version", BEDROCK_ANTHROPIC_VERSION)
        betas = [b.strip() for k, v in headers.items() if k.lower() == "anthropic-beta" for b in v.split(",")]
        if betas and "anthropic_beta" not in data:
            data["anthropic_beta"] = [b for b in betas if b]
        return self._path(model, stream), orjson.dumps(data)

    async def _events(self, resp: Response) -> AsyncIterator[SSEEvent]:
        async for event, _ in self._frames(resp):
            yield event

    async def _frames(self, resp: Response) -> AsyncIterator[tuple[SSEEvent, bytes]]:
        async for kind, payload in read_events(resp, self.name):
            if kind != "chunk":
                continue
            raw = chunk_payload(self.name, payload)
            try:
                event = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise UpstreamProtocolError(
                    f"upstream {self.name} sent a stream event that is not JSON", provider=self.name
                ) from exc
            name = str(event.get("type") or "") if isinstance(event, dict) else ""
            if isinstance(event, dict):
                event.pop("amazon-bedrock-invocationMetrics", None)  # Bedrock's, not Anthropic's
                raw = orjson.dumps(event)
            text = raw.decode()
            yield SSEEvent(name or None, text), f"event: {name}\ndata: {text}\n\n".encode()

    async def count_tokens(self, dialect: str, body: bytes, headers: Mapping[str, str]) -> int | None:
        return None  # the door estimates


def create(name: str, config: ProviderConfig, context: ProviderContext) -> BedrockAnthropicProvider:
    return BedrockAnthropicProvider(name, config, context)
