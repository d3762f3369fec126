"""Provider types are a registry, not a branch: ``type: openai`` in the catalogue names a factory.

Built-in adapters are registered exactly as a third-party one is: by an import path, here or in the
``modelgate.providers`` entry-point group of an installed package (``mytype = "pkg.mod:create"``).
A factory is ``create(name, config, context) -> Provider``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from modelgate.catalog.models import ProviderConfig
from modelgate.catalog.registry import Catalog
from modelgate.providers.base import Provider, ProviderContext, ProviderFactory, undeclared

BUILTIN_TYPES: dict[str, str] = {
    "openai": "modelgate.providers.openai_compat:create",
    "espeak": "modelgate.providers.espeak:create",
    "gemini": "modelgate.providers.gemini:create",
    "anthropic": "modelgate.providers.anthropic:create",
    "local": "modelgate.providers.local:create",
    "azure": "modelgate.providers.azure:create",
    "vertex": "modelgate.providers.vertex:create",
    "vertex-anthropic": "modelgate.providers.vertex:create_anthropic",
    "bedrock": "modelgate.providers.bedrock:create",
    "bedrock-anthropic": "modelgate.providers.bedrock_anthropic:create",
}


class ProviderTypeRegistry:
    def __init__(self) -> None:
        self._paths: dict[str, str] = {}
        self._factories: dict[str, ProviderFactory] = {}

    @classmethod
    def with_defaults(cls) -> ProviderTypeRegistry:
        reg = cls()
        for type_name, path in BUILTIN_TYPES.items():
            reg.register_path(type_name, path)
        for ep in entry_points(group="modelgate.providers"):
            reg.register_path(ep.name, ep.value)
        return reg

    def register_path(self, type_name: str, path: str) -> None:
        self._paths[type_name] = path

    def register(self, type_name: str, factory: ProviderFactory) -> None:
        self._factories[type_name] = factory

    def types(self) -> list[str]:
        return sorted({*self._paths, *self._factories})

    def factory(self, type_name: str) -> ProviderFactory:
        if type_name in self._factories:
            return self._factories[type_name]
        path = self._paths.get(type_name)
        if path is None:
            raise KeyError(type_name)
        module_name, _, attr = path.partition(":")
        factory: ProviderFactory = getattr(importlib.import_module(module_name), attr)
        self._factories[type_name] = factory
        return factory


def check_types(catalog: Catalog, registry: ProviderTypeRegistry, source: str) -> None:
    known = registry.types()
    for name, conf in catalog.providers.items():
        if conf.type not in known:
            raise ValueError(
                f"{source}: providers.{name}.type: unknown provider type {conf.type!r} "
                f"(known: {', '.join(known)})"
            )


def build_providers(
    catalog: Catalog, registry: ProviderTypeRegistry, context: ProviderContext
) -> dict[str, Provider]:
    """Instantiate every configured provider that some model routes to (lazy resources inside)."""
    used = {r.provider for m in catalog.models for r in m.routes}
    out: dict[str, Provider] = {}
    for name in sorted(used):
        conf: ProviderConfig = catalog.providers[name]
        if conf.configured:
            provider = registry.factory(conf.type)(name, conf, context)
            missing = undeclared(provider)
            if missing:
                raise ValueError(
                    f"providers.{name}: the {conf.type!r} adapter does not declare {', '.join(missing)} "
                    "(every member of providers/base.py Provider is required)"
                )
            out[name] = provider
    return out
