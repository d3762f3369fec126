"""The in-memory catalogue: lookup by id or alias, case-insensitive."""

from __future__ import annotations

from collections.abc import Iterable

from modelgate.catalog.models import ModelSpec, ProviderConfig


class Catalog:
    def __init__(self, *, providers: dict[str, ProviderConfig], models: Iterable[ModelSpec]) -> None:
        self.providers = providers
        self.models: list[ModelSpec] = list(models)
        # What the catalogue files define (the source of truth the console's entries never replace).
        self._file_providers = dict(providers)
        self._file_models = list(self.models)
        self._by_name: dict[str, ModelSpec] = {}
        self._index()

    def _index(self) -> None:
        by_name: dict[str, ModelSpec] = {}
        for m in self.models:
            for name in (m.id, *m.aliases):
                by_name[name.lower()] = m
        self._by_name = by_name

    def defined_by_file(self, kind: str, name: str) -> bool:
        """Whether the catalogue files define this provider or model name (or alias)."""
        if kind == "provider":
            return name in self._file_providers
        return any(name.lower() in (x.lower() for x in (m.id, *m.aliases)) for m in self._file_models)

    def set_overlay(self, providers: dict[str, ProviderConfig], models: list[ModelSpec]) -> None:
        """The files' entries plus these (added on the console), in place: the router and the core
        hold this object and see the change on their next lookup."""
        self.providers.clear()
        self.providers.update(self._file_providers)
        self.providers.update(providers)
        self.models[:] = [*self._file_models, *models]
        self._index()

    def find(self, name: str) -> ModelSpec | None:
        return self._by_name.get(name.lower())

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.models)

    def unavailable_reason(self, model: ModelSpec) -> str | None:
        """Why no route of ``model`` can run now, or None when one can."""
        reasons: list[str] = []
        for route in model.routes:
            conf = self.providers[route.provider]
            if conf.configured:
                return None
            reasons.append(not_configured_message(route.provider, conf))
        return "; ".join(dict.fromkeys(reasons))


def not_configured_message(name: str, conf: ProviderConfig) -> str:
    return f"provider {name} is not configured: set {', '.join(conf.missing_env)}"
