"""The semantic cache's embedder: a catalogue embedding model (by default the embedded
all-MiniLM-L6-v2), called on its first route's provider directly — the operator's own lookup, not a
metered request. Vectors come back at unit length, so that similarity is a dot product."""

from __future__ import annotations

import math
from typing import Any

from modelgate.cache.stage import Embedder
from modelgate.catalog.registry import Catalog
from modelgate.providers.base import EmbedCall, EmbeddingProvider


def catalog_embedder(catalog: Catalog, providers: dict[str, Any], model_id: str) -> Embedder | None:
    """None when the model is not in the catalogue or no route of it can embed."""
    model = catalog.find(model_id)
    if model is None or model.type != "embedding":
        return None
    for route in model.routes:
        provider = providers.get(route.provider)
        if isinstance(provider, EmbeddingProvider):
            return _embedder(provider, route.model, model, route.options)
    return None


def _embedder(provider: EmbeddingProvider, upstream: str, model: Any, options: Any) -> Embedder:
    async def embed(text: str) -> list[float]:
        call = EmbedCall(inputs=[text], upstream_model=upstream, model=model, extra=options)
        vector = (await provider.embed(call)).vectors[0]
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        return [v / norm for v in vector]

    return embed
