"""The provider registry builds adapters and refuses, at start-up, one that does not declare every
member of the ``Provider`` Protocol (the gateway never guesses a capability)."""

from __future__ import annotations

from typing import Any

import pytest

from modelgate.catalog.models import ModelSpec, Pricing, ProviderConfig, Route
from modelgate.catalog.registry import Catalog
from modelgate.providers.base import AdapterDefaults, ProviderContext, undeclared
from modelgate.providers.registry import ProviderTypeRegistry, build_providers


class OldAdapter:
    """Written against an older contract: no vision, embeddings, unknown-fields flags, dialects or
    side contract (start, ready, queue_depth)."""

    supports_tools = supports_json_schema = supports_streaming = True
    drain_on_disconnect = True

    def __init__(self, name: str) -> None:
        self.name = name

    async def complete(self, call: Any) -> Any: ...

    def stream(self, call: Any) -> Any: ...

    async def aclose(self) -> None: ...


class Adapter(OldAdapter, AdapterDefaults):
    supports_vision = True
    supports_embeddings = forwards_unknown_fields = False
    dialects: frozenset[str] = frozenset()


def _build(cls: type[OldAdapter]) -> dict[str, Any]:
    registry = ProviderTypeRegistry()
    registry.register("mine", lambda name, conf, ctx: cls(name))  # type: ignore[arg-type,return-value]
    model = ModelSpec(
        id="m",
        pricing=Pricing(input_usd_per_mtok=1, output_usd_per_mtok=1),
        routes=[Route(provider="p", model="up")],
    )
    catalog = Catalog(providers={"p": ProviderConfig(type="mine")}, models=[model])
    return dict(build_providers(catalog, registry, ProviderContext()))


def test_a_complete_adapter_is_built() -> None:
    built = _build(Adapter)
    assert isinstance(built["p"], Adapter) and undeclared(built["p"]) == []


def test_an_adapter_missing_declared_members_is_a_start_up_error_naming_them() -> None:
    assert undeclared(OldAdapter("p")) == [
        "supports_vision",
        "supports_embeddings",
        "forwards_unknown_fields",
        "dialects",
        "start",
        "ready",
        "queue_depth",
    ]
    with pytest.raises(
        ValueError,
        match="supports_vision, supports_embeddings, forwards_unknown_fields, dialects, start, ready, "
        "queue_depth",
    ):
        _build(OldAdapter)
