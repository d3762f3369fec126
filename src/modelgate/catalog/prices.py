"""A model's price sheet: what providers publish, as exact integers.

The YAML stays readable — USD per million tokens, USD per 1,000 uses, USD per unit — and each
figure is converted exactly (``Decimal`` of the written number) at load into **micro-credits**
(1 USD = 2,000,000 credits = 2·10¹² micro-credits). A figure that does not convert to a whole
number of micro-credits is refused at start. Nothing in the charge path is a float.

    token categories   input, output, cache_read, cache_write_5m, cache_write_1h,
                       audio_input, image_input, audio_output          (per token)
    tiers              by prompt size: the whole request is priced at the tier its prompt falls in
                       (``above_prompt_tokens``: prompts of more tokens than that)
    per-use fees       web_search, code_execution, …                   (per use; YAML per 1,000)
    units              image:<size>/<quality>, second, character, request  (per unit)

A category left out defaults to its base: cache reads and writes, audio and image input to the
input price (no discount or premium), the 1-hour write to the 5-minute one, audio output to the
output price. A tier states its own prices; a category the base states apart and the tier leaves
out keeps its ratio to the tier's input (or output) price, rounded up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from modelgate.providers.base import Usage

CREDITS_PER_USD = 2_000_000
MICRO = 1_000_000  # micro-credits per credit
# USD per million tokens -> micro-credits per token: x USD/Mtok = 2x credits/token.
_PER_MTOK = Decimal(CREDITS_PER_USD)
_PER_1K = Decimal(CREDITS_PER_USD) * MICRO / 1000
_PER_UNIT = Decimal(CREDITS_PER_USD) * MICRO

TOKEN_FIELDS = (
    "input",
    "output",
    "cache_read",
    "cache_write_5m",
    "cache_write_1h",
    "audio_input",
    "image_input",
    "audio_output",
)
# category -> the category whose price it takes when left out
_DEFAULTS = {
    "cache_read": "input",
    "cache_write_5m": "input",
    "cache_write_1h": "cache_write_5m",
    "audio_input": "input",
    "image_input": "input",
    "audio_output": "output",
}
# YAML name of each category (USD per million tokens); cached_input is the historical name of a read.
_YAML = {
    "input": "input_usd_per_mtok",
    "output": "output_usd_per_mtok",
    "cache_read": "cached_input_usd_per_mtok",
    "cache_write_5m": "cache_write_5m_usd_per_mtok",
    "cache_write_1h": "cache_write_1h_usd_per_mtok",
    "audio_input": "audio_input_usd_per_mtok",
    "image_input": "image_input_usd_per_mtok",
    "audio_output": "audio_output_usd_per_mtok",
}


def exact_micro(value: Any, scale: Decimal, where: str) -> int:
    """``value`` (as written in the file) times ``scale``, which must be a whole non-negative number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ValueError(f"{where}: must be a number")
    try:
        # str() of a float is its shortest round-trip spelling: the digits the YAML file holds.
        dec = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{where}: {value!r} is not a number") from None
    if not dec.is_finite() or dec < 0:
        raise ValueError(f"{where}: must be a finite number >= 0")
    micro = dec * scale
    if micro != micro.to_integral_value():
        raise ValueError(
            f"{where}: {value} does not convert to a whole number of micro-credits "
            f"(1 USD = 2,000,000 credits = 2e12 micro-credits); use fewer decimals"
        )
    return int(micro)


def usd_of_micro(micro: int, scale: Decimal) -> Decimal:
    """The inverse of ``exact_micro``: the readable figure of a stored price."""
    return (Decimal(micro) / scale).normalize()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _TokenPrices(_Strict):
    input_usd_per_mtok: Decimal | None = None
    output_usd_per_mtok: Decimal | None = None
    cached_input_usd_per_mtok: Decimal | None = None
    cache_write_5m_usd_per_mtok: Decimal | None = None
    cache_write_1h_usd_per_mtok: Decimal | None = None
    audio_input_usd_per_mtok: Decimal | None = None
    image_input_usd_per_mtok: Decimal | None = None
    audio_output_usd_per_mtok: Decimal | None = None

    @field_validator(*_YAML.values(), mode="before")
    @classmethod
    def _decimal(cls, v: Any, info: Any) -> Any:
        if v is None:
            return None
        exact_micro(v, _PER_MTOK, info.field_name)
        return Decimal(str(v))

    def given(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for cat, name in _YAML.items():
            value = getattr(self, name)
            if value is not None:
                out[cat] = exact_micro(value, _PER_MTOK, name)
        return out


class Tier(_TokenPrices):
    above_prompt_tokens: int = Field(ge=0)


@dataclass(slots=True, frozen=True)
class Rates:
    """Micro-credits per token of each category, at one tier (and the dearest rates a hold uses,
    computed once)."""

    input: int
    output: int
    cache_read: int
    cache_write_5m: int
    cache_write_1h: int
    audio_input: int
    image_input: int
    audio_output: int
    hold_prompt: int = field(init=False)  # the dearest input without a cache marker
    hold_5m: int = field(init=False)  # ... with a 5-minute marker
    hold_1h: int = field(init=False)  # ... with a 1-hour marker
    hold_output: int = field(init=False)

    def __post_init__(self) -> None:
        plain = max(self.input, self.audio_input, self.image_input)
        object.__setattr__(self, "hold_prompt", plain)
        object.__setattr__(self, "hold_5m", max(plain, self.cache_write_5m))
        object.__setattr__(self, "hold_1h", max(plain, self.cache_write_1h))
        object.__setattr__(self, "hold_output", max(self.output, self.audio_output))

    @classmethod
    def resolve(cls, given: dict[str, int]) -> Rates:
        full = dict(given)
        full.setdefault("output", 0)
        for cat in TOKEN_FIELDS:
            if cat not in full:
                full[cat] = full[_DEFAULTS[cat]]
        return cls(**full)


@dataclass(slots=True, frozen=True)
class _Exact:
    levels: tuple[Rates, ...]
    fees: dict[str, int]
    bounds: tuple[int, ...]


class PriceSheet(_TokenPrices):
    """A model's prices as the YAML writes them (see the module docstring); ``rates_for`` and
    ``cost`` answer in exact integers."""

    input_usd_per_mtok: Decimal = Field(ge=0)
    output_usd_per_mtok: Decimal = Field(ge=0)
    tiers: tuple[Tier, ...] = ()
    per_use_usd_per_1k: dict[str, Decimal] = Field(default_factory=dict)
    per_unit_usd: dict[str, Decimal] = Field(default_factory=dict)
    per_mchar_usd: Decimal | None = None  # characters of speech, USD per million characters
    batch_discount_percent: int | None = Field(default=None, ge=0, le=100)  # recorded, not applied yet
    as_of: str | None = None  # the date the prices were read (YYYY-MM-DD)
    source: str | None = None  # the page they were read from

    @field_validator("per_use_usd_per_1k", "per_unit_usd", mode="before")
    @classmethod
    def _check_fees(cls, v: Any, info: Any) -> Any:
        if not isinstance(v, dict):
            return v
        scale = _PER_1K if info.field_name == "per_use_usd_per_1k" else _PER_UNIT
        for name, price in v.items():
            exact_micro(price, scale, f"{info.field_name}.{name}")
        return {k: Decimal(str(p)) for k, p in v.items()}

    @model_validator(mode="after")
    def _tiers(self) -> PriceSheet:
        bounds = [t.above_prompt_tokens for t in self.tiers]
        if bounds != sorted(set(bounds)):
            raise ValueError("tiers: above_prompt_tokens must be strictly increasing")
        base = self.given()
        levels = [Rates.resolve(base)]
        for tier in self.tiers:
            levels.append(Rates.resolve(_tier_given(base, tier.given())))
        fees = {k: exact_micro(p, _PER_1K, k) for k, p in self.per_use_usd_per_1k.items()}
        fees.update({k: exact_micro(p, _PER_UNIT, k) for k, p in self.per_unit_usd.items()})
        if self.per_mchar_usd is not None:
            fees["character"] = exact_micro(self.per_mchar_usd, _PER_MTOK, "per_mchar_usd")
        # Kept in the instance's __dict__ under a name no field has (read on every request: a plain
        # attribute, not pydantic's private-attribute lookup); never serialised.
        self.__dict__["_exact"] = _Exact(tuple(levels), fees, tuple(bounds))
        return self

    # ---- exact integers ----------------------------------------------------------------------
    # Read on every request (hold, then cost): plain __dict__ reads, not pydantic's private
    # attributes (served through a __getattr__ of ~5 Python calls per read).

    @property
    def levels(self) -> tuple[Rates, ...]:
        exact: _Exact = self.__dict__["_exact"]
        return exact.levels

    @property
    def fees(self) -> dict[str, int]:
        """Micro-credits per use or unit, by name."""
        exact: _Exact = self.__dict__["_exact"]
        return exact.fees

    @property
    def bounds(self) -> tuple[int, ...]:
        """The prompt sizes past which each tier applies."""
        exact: _Exact = self.__dict__["_exact"]
        return exact.bounds

    def tier_of(self, prompt_tokens: int) -> int:
        """0 for the base prices, i for the i-th tier (the prompt has more tokens than its bound)."""
        level = 0
        for i, bound in enumerate(self.__dict__["_exact"].bounds, 1):
            if prompt_tokens > bound:
                level = i
        return level

    def rates_for(self, prompt_tokens: int) -> Rates:
        exact: _Exact = self.__dict__["_exact"]
        if not exact.bounds:
            return exact.levels[0]
        return exact.levels[self.tier_of(prompt_tokens)]

    def cost_micro(self, usage: Usage) -> int:
        """Micro-credits of a usage: every token in its category, at the tier of its prompt."""
        r = self.rates_for(usage.prompt_tokens)
        left = usage.prompt_tokens
        total = 0
        if usage.cached_tokens:
            n = min(usage.cached_tokens, left)  # parts of the prompt: never more than is left of it
            total += n * r.cache_read
            left -= n
        if usage.cache_write_5m_tokens or usage.cache_write_1h_tokens or usage.audio_input_tokens:
            for count, rate in (
                (usage.cache_write_5m_tokens, r.cache_write_5m),
                (usage.cache_write_1h_tokens, r.cache_write_1h),
                (usage.audio_input_tokens, r.audio_input),
            ):
                n = min(count, left)
                total += n * rate
                left -= n
        if usage.image_input_tokens:
            n = min(usage.image_input_tokens, left)
            total += n * r.image_input
            left -= n
        total += left * r.input
        out = usage.completion_tokens
        if usage.audio_output_tokens:
            audio_out = min(usage.audio_output_tokens, out)
            total += audio_out * r.audio_output
            out -= audio_out
        total += out * r.output
        if usage.uses:
            fees = self.fees
            total += sum(n * fees.get(name, 0) for name, n in usage.uses.items())
        return total

    def cost(self, usage: Usage) -> int:
        """Credits of a usage, rounded up to a whole credit."""
        return -(-self.cost_micro(usage) // MICRO)

    def credits(self, *, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> int:
        """Credits of a plain token count (for samples and examples)."""
        from modelgate.providers.base import Usage

        return self.cost(Usage(prompt_tokens, completion_tokens, 0, cached_tokens))

    def hold_micro(
        self,
        *,
        prompt_tokens: int,
        output_tokens: int,
        cache_write: str | None = None,
        uses: dict[str, int] | None = None,
        reach_tokens: int | None = None,
        cached_tokens: int = 0,
    ) -> int:
        """An upper bound of a request's cost: the prompt at the tier it (or ``reach_tokens``, when
        server tools can grow it) could reach, in the dearest category it could be billed in
        (a cache write of the lifetime marked, audio or image input when the model prices them
        higher) but for ``cached_tokens`` of it known to be read from the cache, the output at its
        dearest, and the per-use fees of ``uses``."""
        r = self.rates_for(prompt_tokens if reach_tokens is None else max(prompt_tokens, reach_tokens))
        if cache_write is None:
            prompt_rate = r.hold_prompt
        else:
            prompt_rate = r.hold_1h if cache_write == "1h" else r.hold_5m
        total = prompt_tokens * prompt_rate + output_tokens * r.hold_output
        if cached_tokens:
            read = min(cached_tokens, prompt_tokens)
            total -= read * (prompt_rate - r.cache_read)
        if uses:
            fees = self.fees
            total += sum(n * fees.get(name, 0) for name, n in uses.items())
        return total

    def hold(self, **kwargs: Any) -> int:
        return -(-self.hold_micro(**kwargs) // MICRO)

    # ---- display -----------------------------------------------------------------------------

    def usd_per_mtok(self, category: str, tier: int = 0) -> Decimal:
        return usd_of_micro(getattr(self.levels[tier], category), _PER_MTOK)

    def units(self, tier: int = 0) -> list[dict[str, Any]]:
        """The rates of one tier as the public model list shows them (USD, display only): input and
        output, and each category priced apart from them."""
        r = self.levels[tier]
        out = []
        for cat in TOKEN_FIELDS:
            value = getattr(r, cat)
            base = getattr(r, _DEFAULTS[cat]) if cat in _DEFAULTS else None
            if (
                base is None
                or value != base
                or (cat == "cache_read" and self.cached_input_usd_per_mtok is not None)
            ):
                measure = "cached_input" if cat == "cache_read" else cat
                price = float(usd_of_micro(value, _PER_MTOK))
                out.append({"name": "token", "measure": measure, "price": price, "per": 1_000_000})
        for name, micro in sorted(self.fees.items()):
            per = 1_000 if name in self.per_use_usd_per_1k else 1
            unit = {"name": name, "measure": "use" if per == 1_000 else "unit", "per": per}
            out.append({**unit, "price": float(Decimal(micro * per) / _PER_UNIT)})
        return out

    def public(self) -> dict[str, Any]:
        """``pricing`` of ``GET /v1/models?include=pricing``: fixed rates, or one variant per tier."""
        body: dict[str, Any] = {"kind": "fixed", "currency": "USD", "units": self.units(0)}
        if self.tiers:
            bounds = [0, *(t.above_prompt_tokens for t in self.tiers)]
            body["kind"] = "variants"
            body["dimensions"] = ["prompt_tokens"]
            body["variants"] = [
                {"prompt_tokens_above": bound, "units": self.units(i)} for i, bound in enumerate(bounds)
            ]
        return body


def _tier_given(base: dict[str, int], tier: dict[str, int]) -> dict[str, int]:
    """A tier's given prices: what it states, else the base's stated price when the category's
    default would not follow the tier (a base cache-read discount stays, scaled by nothing)."""
    out = dict(tier)
    out.setdefault("input", base["input"])
    out.setdefault("output", base.get("output", 0))
    for cat in TOKEN_FIELDS:
        if cat in out or cat not in base:
            continue
        # The base states it apart from input/output: keep the same ratio to the tier's input.
        ref = _DEFAULTS[cat]
        while ref not in ("input", "output"):
            ref = _DEFAULTS[ref]
        if base[ref]:
            scaled = base[cat] * out[ref]
            out[cat] = scaled // base[ref] if scaled % base[ref] == 0 else -(-scaled // base[ref])
        else:
            out[cat] = base[cat]
    return out
