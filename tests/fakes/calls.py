"""Build the ``ProviderCall`` / ``EmbedCall`` an adapter receives, from a request and a catalogue model."""

from __future__ import annotations

from functools import cache
from typing import Any

from modelgate.catalog.loader import load_catalog_files
from modelgate.catalog.models import ModelSpec, ProviderConfig, Timeouts
from modelgate.gateway.admission import DEFAULT_MAX_TOKENS
from modelgate.providers.base import EmbedCall, ProviderCall
from modelgate.wire.chat import ChatRequest


@cache
def _builtin_models() -> dict[str, ModelSpec]:
    _, models = load_catalog_files(None, env={})
    return {m.id: m for m in models}


def builtin_model(model_id: str) -> ModelSpec:
    """A model of the built-in catalogue YAML (a copy, free to modify)."""
    return _builtin_models()[model_id].model_copy(deep=True)


def build_call(model: str | ModelSpec, body: dict[str, Any]) -> ProviderCall:
    spec = builtin_model(model) if isinstance(model, str) else model
    req = ChatRequest.model_validate({"model": spec.id, **body})
    return ProviderCall(
        request=req,
        upstream_model=spec.routes[0].model,
        max_tokens=req.output_limit or DEFAULT_MAX_TOKENS,
        model=spec,
        inference_id="test-inference",
    )


def build_embed_call(
    model: str | ModelSpec,
    inputs: list[str] | list[list[int]],
    *,
    dimensions: int | None = None,
    extra: dict[str, Any] | None = None,
) -> EmbedCall:
    spec = builtin_model(model) if isinstance(model, str) else model
    return EmbedCall(
        inputs=inputs,
        upstream_model=spec.routes[0].model,
        model=spec,
        dimensions=dimensions,
        inference_id="test-inference",
        extra=extra or {},
    )


def provider_config(
    type_: str,
    base_url: str,
    *,
    api_key: str | None,
    connect: float = 2.0,
    first_byte: float = 5.0,
    total: float = 10.0,
    options: dict[str, Any] | None = None,
) -> ProviderConfig:
    return ProviderConfig(
        type=type_,
        base_url=base_url,
        api_key=api_key,
        timeouts=Timeouts(connect=connect, first_byte=first_byte, total=total),
        options=options or {},
    )
