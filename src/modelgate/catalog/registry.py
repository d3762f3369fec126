"""The in-memory catalogue: lookup by id or alias, case-insensitive."""

from __future__ import annotations

from collections.abc import Iterable

from modelgate.catalog.models import ModelSpec, ProviderConfig


class Catalog:
    def __init__(self, *, providers: dict[str, ProviderConfig], models: Iterable[ModelSpec]) -> None:
        self.providers = providers
        self.models: list[ModelSpec] = list(models)
        self._by_name: dict[str, ModelSpec] = {}
        for m in self.models:
            for name in (m.id, *m.aliases):
                self._by_name[name.lower()] = m

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
