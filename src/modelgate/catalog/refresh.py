"""Refreshing prices from a public machine-readable price map, without hand-typing.

``modelgate catalog prices --from FILE`` reads LiteLLM's ``model_prices_and_context_window.json``
(USD per token; ``cache_read_input_token_cost``, ``cache_creation_input_token_cost`` and its
``_above_1hr``, ``*_above_<N>k_tokens`` tiers, audio token prices, ``search_context_cost_per_query``),
finds each catalogue route's upstream model in it, and shows the operator what would change. Applied
on confirmation, the new sheets are written into the operator's catalogue file (merged over the
built-in one at start), stamped with the file as their source and the date given.

Every figure goes through the price sheet's exact conversion: a value that is not a whole number of
micro-credits (a float artefact such as ``3.0000000000000004e-07``) is refused and reported, never
rounded. Nothing is fetched: the operator downloads the file and reviews the diff.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelgate.catalog.models import ModelSpec, ProviderConfig
from modelgate.catalog.prices import PriceSheet

# LiteLLM per-token field -> the sheet's USD-per-million-tokens field.
_FIELDS = {
    "input_cost_per_token": "input_usd_per_mtok",
    "output_cost_per_token": "output_usd_per_mtok",
    "cache_read_input_token_cost": "cached_input_usd_per_mtok",
    "cache_creation_input_token_cost": "cache_write_5m_usd_per_mtok",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h_usd_per_mtok",
    "input_cost_per_audio_token": "audio_input_usd_per_mtok",
    "output_cost_per_audio_token": "audio_output_usd_per_mtok",
}
_TIERED = re.compile(r"^(?P<base>.+)_above_(?P<k>\d+)k_tokens$")
# The LiteLLM key prefix of a provider type (Google AI Studio models are "gemini/<name>").
_PREFIX = {"gemini": "gemini/"}
_MTOK = Decimal(1_000_000)


@dataclass(slots=True)
class Change:
    model: str
    key: str  # the price map's entry
    before: dict[str, Any]
    after: dict[str, Any]

    def lines(self) -> list[str]:
        out = []
        for name in sorted(set(self.before) | set(self.after)):
            if name in ("source", "as_of"):
                continue
            old, new = _canon(self.before.get(name)), _canon(self.after.get(name))
            if old != new:
                out.append(f"  {name}: {_show(old)} -> {_show(new)}")
        return out


@dataclass(slots=True)
class Diff:
    changes: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # catalogue models the map does not price
    refused: list[str] = field(default_factory=list)  # entries whose figures do not convert exactly

    def report(self) -> str:
        lines = []
        for change in self.changes:
            lines.append(f"{change.model} (from {change.key!r}):")
            lines += change.lines()
        lines.append(
            f"{len(self.changes)} to change, {len(self.unchanged)} unchanged, "
            f"{len(self.missing)} not in the price map"
            + (f": {', '.join(self.missing)}" if self.missing else "")
        )
        lines += [f"refused: {r}" for r in self.refused]
        return "\n".join(lines)


def _show(value: Any) -> str:
    return "-" if value is None else json.dumps(value, default=str)


def _usd_per_mtok(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{where}: not a number")
    try:
        return (Decimal(str(value)) * _MTOK).normalize()
    except InvalidOperation:
        raise ValueError(f"{where}: not a number") from None


def sheet_fields(entry: dict[str, Any], key: str) -> dict[str, Any]:
    """A LiteLLM entry as the sheet's YAML fields (tiers included); ValueError when inexact."""
    out: dict[str, Any] = {}
    tiers: dict[int, dict[str, Any]] = {}
    for name, value in entry.items():
        m = _TIERED.match(name)
        base = m.group("base") if m else name
        target = _FIELDS.get(base)
        if target is None or value is None:
            continue
        usd = _usd_per_mtok(value, f"{key}.{name}")
        if m:
            tiers.setdefault(int(m.group("k")) * 1000, {})[target] = usd
        else:
            out[target] = usd
    search = entry.get("search_context_cost_per_query")
    if isinstance(search, dict) and search.get("search_context_size_medium") is not None:
        per_query = Decimal(str(search["search_context_size_medium"]))
        out["per_use_usd_per_1k"] = {"web_search": (per_query * 1000).normalize()}
    if tiers:
        out["tiers"] = [{"above_prompt_tokens": k, **v} for k, v in sorted(tiers.items())]
    return out


def _yaml_fields(sheet: PriceSheet) -> dict[str, Any]:
    data = sheet.model_dump(exclude_none=True, exclude_defaults=True)
    if sheet.tiers:
        data["tiers"] = [t.model_dump(exclude_none=True) for t in sheet.tiers]
    return data


def plan(
    models: list[ModelSpec],
    providers: dict[str, ProviderConfig],
    price_map: dict[str, Any],
    *,
    source: str,
    as_of: str,
) -> tuple[Diff, dict[str, dict[str, Any]]]:
    """What the price map would change, and the new pricing (YAML fields) of each changed model."""
    diff = Diff()
    new: dict[str, dict[str, Any]] = {}
    for model in models:
        route = model.routes[0]
        kind = providers[route.provider].type if route.provider in providers else ""
        keys = [_PREFIX.get(kind, "") + route.model, route.model, model.id]
        key = next((k for k in keys if isinstance(price_map.get(k), dict)), None)
        if key is None:
            diff.missing.append(model.id)
            continue
        before = _yaml_fields(model.pricing)
        try:
            fields = sheet_fields(price_map[key], key)
            # Categories and tiers the map does not state keep the catalogue's figures.
            merged = {**before, **fields, "source": source, "as_of": as_of}
            if "tiers" in fields and before.get("tiers"):
                merged["tiers"] = _merge_tiers(before["tiers"], fields["tiers"])
            sheet = PriceSheet.model_validate(merged)
        except (ValueError, ValidationError) as exc:
            diff.refused.append(f"{model.id} ({key}): {_first_error(exc)}")
            continue
        after = _yaml_fields(sheet)
        if _comparable(before) == _comparable(after):
            diff.unchanged.append(model.id)
            continue
        diff.changes.append(Change(model.id, key, before, after))
        new[model.id] = after
    return diff, new


def _merge_tiers(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_bound = {t["above_prompt_tokens"]: dict(t) for t in old}
    for tier in new:
        by_bound.setdefault(tier["above_prompt_tokens"], {}).update(tier)
    return [by_bound[k] for k in sorted(by_bound)]


def _canon(value: Any) -> Any:
    """Figures compared and shown by value (6.0 and 6 are one price)."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    return value


def _comparable(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: _canon(v) for k, v in fields.items() if k not in ("source", "as_of")}


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return str(err["msg"]).removeprefix("Value error, ")
    return str(exc)


def load_price_map(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object of model -> prices")
    return data


def apply(config_path: Path, models: list[ModelSpec], new: dict[str, dict[str, Any]]) -> None:
    """Write the new sheets into the operator's catalogue file: a model it lists gets its
    ``pricing`` replaced; a built-in model is added whole (same id overrides the built-in one)."""
    raw: dict[str, Any] = {}
    if config_path.exists():
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    listed = raw.setdefault("models", [])
    by_id = {m.get("id"): m for m in listed if isinstance(m, dict)}
    for spec in models:
        pricing = new.get(spec.id)
        if pricing is None:
            continue
        plain = json.loads(json.dumps(pricing, default=_plain))
        if spec.id in by_id:
            by_id[spec.id]["pricing"] = plain
        else:
            entry = json.loads(spec.model_dump_json(exclude_defaults=True, exclude_none=True))
            entry["pricing"] = plain
            listed.append(entry)
    config_path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(str(value))
    raise TypeError(type(value).__name__)


def price_table(models: list[ModelSpec]) -> str:
    """The catalogue's chat-model prices as a Markdown table (USD per million tokens)."""
    head = (
        "| Model | Input | Output | Cache read | Cache write 5m / 1h | Above a prompt of | Per use |\n"
        "| ----- | ----- | ------ | ---------- | ------------------- | ----------------- | ------- |"
    )
    rows = [head]
    for m in models:
        if m.type != "chat":
            continue
        s = m.pricing

        def usd(cat: str, tier: int = 0, s: PriceSheet = s) -> str:
            return "$" + format(s.usd_per_mtok(cat, tier), "f")

        tiers = "; ".join(
            f"{t.above_prompt_tokens // 1000}k: {usd('input', i)} / {usd('output', i)}"
            f" (read {usd('cache_read', i)})"
            for i, t in enumerate(s.tiers, 1)
        )
        fees = ", ".join(
            f"{name} ${format(price.normalize(), 'f')}/1k"
            for name, price in sorted(s.per_use_usd_per_1k.items())
        )
        r = s.levels[0]
        writes = "-"
        if (r.cache_write_5m, r.cache_write_1h) != (r.input, r.input):
            writes = f"{usd('cache_write_5m')} / {usd('cache_write_1h')}"
        status = f" ({m.info['status']})" if m.info.get("status") else ""
        rows.append(
            f"| `{m.id}`{status} | {usd('input')} | {usd('output')} | {usd('cache_read')} |"
            f" {writes} | {tiers or '-'} | {fees or '-'} |"
        )
    return "\n".join(rows)
