"""Load the catalogue: the built-in YAML, then the operator's file merged over it (same id overrides).

``${VAR}`` in any string value is replaced from the environment. A provider that references an unset
variable stays in the catalogue but is marked unconfigured, so its models answer 503 naming the
variable instead of failing the start.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelgate.catalog.models import CatalogFile, ModelSpec, ProviderConfig

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class CatalogError(Exception):
    """The catalogue cannot be loaded; the message names the file and the key."""


def _interpolate(value: Any, env: Mapping[str, str], missing: list[str]) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            missing.append(name)
            return ""

        return _ENV_RE.sub(sub, value)
    if isinstance(value, list):
        return [_interpolate(v, env, missing) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v, env, missing) for k, v in value.items()}
    return value


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_catalog(text: str, *, source: str, env: Mapping[str, str]) -> CatalogFile:
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise CatalogError(f"{source}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise CatalogError(f"{source}: the top level must be a mapping with 'providers' and 'models'")
    providers_raw = raw.get("providers") or {}
    if not isinstance(providers_raw, dict):
        raise CatalogError(f"{source}: providers: must be a mapping of name -> settings")
    missing_by_provider: dict[str, list[str]] = {}
    providers: dict[str, Any] = {}
    for name, conf in providers_raw.items():
        missing: list[str] = []
        providers[name] = _interpolate(conf, env, missing)
        missing_by_provider[name] = sorted(set(missing))
    models = _interpolate(raw.get("models") or [], env, [])
    unknown = set(raw) - {"providers", "models"}
    if unknown:
        raise CatalogError(f"{source}: unknown top-level key(s): {', '.join(sorted(unknown))}")
    try:
        parsed = CatalogFile.model_validate({"providers": providers, "models": models})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = _format_loc(tuple(err["loc"]))
        if loc.startswith("models[") and isinstance(models, list):
            idx = err["loc"][1]
            if isinstance(idx, int) and idx < len(models) and isinstance(models[idx], dict):
                loc += f" (model {models[idx].get('id', '?')!r})"
        raise CatalogError(f"{source}: {loc}: {err['msg']}") from exc
    for name, conf in parsed.providers.items():
        conf.missing_env = missing_by_provider.get(name, [])
    return parsed


def builtin_catalog_text() -> str:
    return resources.files("modelgate.catalog").joinpath("default.yaml").read_text(encoding="utf-8")


def load_catalog_files(
    config_path: str | os.PathLike[str] | None, *, env: Mapping[str, str] | None = None
) -> tuple[dict[str, ProviderConfig], list[ModelSpec]]:
    """The built-in catalogue with the operator's file merged over it, checked for consistency."""
    env = os.environ if env is None else env
    base = parse_catalog(builtin_catalog_text(), source="built-in catalogue", env=env)
    providers = dict(base.providers)
    models = {m.id: m for m in base.models}
    source = "built-in catalogue"
    if config_path:
        path = Path(config_path)
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogError(f"{path}: cannot read the config file: {exc.strerror}") from exc
        override = parse_catalog(text, source=source, env=env)
        providers.update(override.providers)
        for m in override.models:
            models[m.id] = m
    _check_consistency(providers, list(models.values()), source)
    return providers, list(models.values())


def _check_consistency(providers: dict[str, ProviderConfig], models: list[ModelSpec], source: str) -> None:
    seen: dict[str, str] = {}
    for m in models:
        for name in (m.id, *m.aliases):
            key = name.lower()
            if key in seen and seen[key] != m.id:
                raise CatalogError(
                    f"{source}: models: name {name!r} is used by both {seen[key]!r} and {m.id!r}"
                )
            seen[key] = m.id
        for i, route in enumerate(m.routes):
            if route.provider not in providers:
                raise CatalogError(
                    f"{source}: models ({m.id!r}).routes[{i}].provider: unknown provider {route.provider!r}"
                    f" (known: {', '.join(sorted(providers)) or 'none'})"
                )
