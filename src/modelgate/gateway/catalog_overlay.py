"""Catalogue entries added on the operator console: providers (type, base URL, an API key stored
sealed) and models (a route to a provider, token prices), stored in the database
(``store/catalog_edits.py``) and merged over the catalogue files on every instance without a restart.

Each instance polls the catalogue version (``MODELGATE_CATALOG_POLL_INTERVAL``, 5 s) and reloads the
entries when it moved; the instance that saved an edit applies it at once. The files stay the source
of truth for what they define: an entry named like a file's provider or model is refused with the
reason, and the console offers it as a YAML patch to the file instead (``as_yaml_patch``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from modelgate.catalog.models import ModelSpec, ProviderConfig
from modelgate.catalog.registry import Catalog
from modelgate.providers.base import Provider, ProviderContext
from modelgate.providers.registry import ProviderTypeRegistry
from modelgate.store.catalog_edits import Entry, catalog_version, list_entries
from modelgate.store.db import Engine

log = logging.getLogger("modelgate.catalog")


class EntryError(ValueError):
    """An entry the console refuses (the message says why)."""


def first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def parse_provider(
    name: str, body: dict[str, Any], registry: ProviderTypeRegistry, *, secret: str | None
) -> ProviderConfig:
    if body.get("type") not in registry.types():
        raise EntryError(f"type: one of {', '.join(registry.types())}")
    try:
        return ProviderConfig.model_validate({**body, "api_key": secret or body.get("api_key")})
    except ValidationError as exc:
        raise EntryError(first_error(exc)) from exc


def parse_model(body: dict[str, Any], catalog: Catalog) -> ModelSpec:
    try:
        spec = ModelSpec.model_validate(body)
    except ValidationError as exc:
        raise EntryError(first_error(exc)) from exc
    for route in spec.routes:
        if route.provider not in catalog.providers:
            raise EntryError(f"routes: no provider named {route.provider!r}")
    return spec


def refusal(catalog: Catalog, kind: str, name: str, source: str) -> str | None:
    """Why the console must not define this name (the file does), or None."""
    if catalog.defined_by_file(kind, name):
        return (
            f"The {kind} {name!r} is defined by the catalogue file ({source}), the source of truth for "
            "what it defines: change it there (the patch below has this edit) and restart, or choose "
            "another name."
        )
    return None


def as_yaml_patch(kind: str, name: str, body: dict[str, Any]) -> str:
    """The edit as the catalogue file would hold it (secrets left out: reference an environment
    variable such as ``${MY_PROVIDER_KEY}`` there instead)."""
    clean = {k: v for k, v in body.items() if k != "api_key"}
    doc: dict[str, Any] = {"providers": {name: clean}} if kind == "provider" else {"models": [clean]}
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


@dataclass
class CatalogOverlay:
    """Applies the console's entries to the live catalogue and provider instances of one process."""

    catalog: Catalog
    providers: dict[str, Provider]  # the instances the router and the core use (the same dict)
    registry: ProviderTypeRegistry
    context: ProviderContext
    spawn: Callable[[Awaitable[None]], object]
    version: int = -1
    problems: dict[str, str] = field(default_factory=dict)
    # Called after each change (the live model figures learn the new model ids).
    on_change: Callable[[Catalog], None] | None = None
    _configs: dict[str, ProviderConfig] = field(default_factory=dict)

    async def refresh(self, engine: Engine) -> bool:
        """Reload the entries when the catalogue version moved; True when it did."""
        async with engine.begin() as conn:
            version = await catalog_version(conn)
            if version == self.version:
                return False
            entries = await list_entries(conn)
        self.apply(entries)
        self.version = version
        return True

    def apply(self, entries: list[Entry]) -> None:
        problems: dict[str, str] = {}
        configs: dict[str, ProviderConfig] = {}
        for e in entries:
            if e.kind != "provider":
                continue
            if self.catalog.defined_by_file("provider", e.name):
                problems[f"provider {e.name}"] = "defined by the catalogue file: ignored"
                continue
            try:
                configs[e.name] = parse_provider(e.name, json.loads(e.body), self.registry, secret=e.secret)
            except (EntryError, ValueError) as exc:
                problems[f"provider {e.name}"] = str(exc)
        self.catalog.set_overlay(configs, [])
        models: list[ModelSpec] = []
        for e in entries:
            if e.kind != "model":
                continue
            if self.catalog.defined_by_file("model", e.name):
                problems[f"model {e.name}"] = "defined by the catalogue file: ignored"
                continue
            try:
                models.append(parse_model(json.loads(e.body), self.catalog))
            except (EntryError, ValueError) as exc:
                problems[f"model {e.name}"] = str(exc)
        self._swap_providers(configs)
        self.catalog.set_overlay(configs, models)
        self.problems = problems
        if self.on_change is not None:
            self.on_change(self.catalog)
        for where, why in problems.items():
            log.warning("console catalogue entry %s not applied: %s", where, why)

    def _swap_providers(self, configs: dict[str, ProviderConfig]) -> None:
        for name in list(self._configs):
            if name not in configs or configs[name] != self._configs[name]:
                old = self.providers.pop(name, None)
                if old is not None:
                    self.spawn(old.aclose())
        for name, conf in configs.items():
            if name in self.providers or not conf.configured:
                continue
            provider = self.registry.factory(conf.type)(name, conf, self.context)
            self.providers[name] = provider
            self.spawn(provider.start())
        self._configs = dict(configs)
