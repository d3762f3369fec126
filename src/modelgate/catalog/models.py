"""Typed, strict models of the catalogue YAML (providers, models, pricing, routes).

Internal configuration is strict (``extra="forbid"``): a misspelt key is an error at start, named
with its file and path, never a silently ignored setting.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelgate.catalog.prices import CREDITS_PER_USD as CREDITS_PER_USD
from modelgate.catalog.prices import PriceSheet


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Timeouts(_Strict):
    connect: float = Field(default=10.0, gt=0)
    first_byte: float = Field(default=120.0, gt=0)
    total: float = Field(default=600.0, gt=0)


class ProviderConfig(_Strict):
    type: str = Field(min_length=1)
    base_url: str | None = None
    api_key: str | None = None
    timeouts: Timeouts = Field(default_factory=Timeouts)
    max_retries: int = Field(default=2, ge=0, le=10)
    headers: dict[str, str] = Field(default_factory=dict)
    circuit_breaker: dict[str, float] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    # Filled by the loader, never from YAML: env vars referenced but unset (=> unconfigured).
    missing_env: list[str] = Field(default_factory=list, exclude=True)

    @property
    def configured(self) -> bool:
        return not self.missing_env


# The price sheet (catalog/prices.py); ``Pricing`` is its historical name.
Pricing = PriceSheet


class Route(_Strict):
    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    # The same model bought from another provider at other prices: this route's sheet replaces the
    # model's when this route answers (and the hold covers the dearest route of the chain).
    pricing: PriceSheet | None = None
    # Pool members (a model with ``balance``): the share of traffic under ``weighted``, and the
    # deployment's own per-minute limits as the provider sets them (gateway/pool.py).
    weight: int = Field(default=1, ge=0, le=1_000_000)
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)


class Reasoning(_Strict):
    """Per-model thinking bounds (Gemini ``thinkingBudget``, Anthropic ``budget_tokens``)."""

    budget_min: int = Field(default=0, ge=0)
    budget_max: int = Field(default=32768, ge=0)
    budget_default: int = -1  # -1 = dynamic
    can_disable: bool = True
    effort_budgets: dict[str, int] = Field(
        default_factory=lambda: {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
    )


class Modalities(_Strict):
    input: list[str] = Field(default_factory=lambda: ["text"])
    output: list[str] = Field(default_factory=lambda: ["text"])


class Embedding(_Strict):
    """What an embedding model (``type: embedding``) produces and accepts.

    ``dimensions`` is the native vector length. ``min_dimensions`` set means the model honours a
    shorter ``dimensions`` request (Matryoshka-trained models; OpenAI's text-embedding-3); unset, a
    request naming any other length is refused with a 400. The limits bound one request: inputs per
    request, tokens per input, tokens in all inputs together.
    """

    dimensions: int = Field(ge=1, le=65536)
    min_dimensions: int | None = Field(default=None, ge=1)
    max_inputs: int = Field(default=2048, ge=1, le=100_000)
    max_input_tokens: int = Field(default=8192, ge=1)
    max_request_tokens: int = Field(default=300_000, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> Embedding:
        if self.min_dimensions is not None and self.min_dimensions > self.dimensions:
            raise ValueError("min_dimensions must not exceed dimensions")
        if self.max_request_tokens < self.max_input_tokens:
            raise ValueError("max_request_tokens must be at least max_input_tokens")
        return self

    @property
    def configurable(self) -> bool:
        return self.min_dimensions is not None


MODEL_TYPES = {"chat": "openai/chat-completions", "embedding": "openai/embeddings"}


class ModelSpec(_Strict):
    id: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    type: Literal["chat", "embedding"] = "chat"
    info: dict[str, Any] = Field(default_factory=dict)
    pricing: PriceSheet
    routes: list[Route] = Field(min_length=1)
    # The routes as one pool of deployments balanced per request instead of a fallback chain in
    # order (gateway/pool.py); None: the chain.
    balance: Literal["weighted", "least_busy", "latency", "cost"] | None = None
    capabilities: list[str] = Field(default_factory=lambda: ["streaming"])
    tags: list[str] = Field(default_factory=list)
    modalities: Modalities = Field(default_factory=Modalities)
    reasoning: Reasoning | None = None
    embedding: Embedding | None = None  # required exactly when type is embedding

    @model_validator(mode="before")
    @classmethod
    def _embedding_defaults(cls, data: Any) -> Any:
        # An embedding model streams nothing and outputs vectors: its defaults differ from chat's.
        if isinstance(data, dict) and data.get("type") == "embedding":
            data = dict(data)
            data.setdefault("capabilities", ["embeddings"])
            data.setdefault("modalities", {"input": ["text"], "output": ["embedding"]})
            if isinstance(data.get("pricing"), dict):
                data["pricing"] = {"output_usd_per_mtok": 0.0, **data["pricing"]}
        return data

    @model_validator(mode="after")
    def _kind(self) -> ModelSpec:
        if self.type == "embedding":
            if self.embedding is None:
                raise ValueError("embedding: required for a model of type embedding (dimensions, ...)")
            if self.reasoning is not None:
                raise ValueError("reasoning: not allowed on a model of type embedding")
        elif self.embedding is not None:
            raise ValueError("embedding: only allowed on a model of type embedding")
        return self

    @field_validator("info")
    @classmethod
    def _info_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key in ("name", "developer"):
            if not isinstance(v.get(key), str) or not v[key]:
                raise ValueError(f"info.{key} is required")
        return v

    def sheet(self, route: Route | None = None) -> PriceSheet:
        """The prices of ``route`` (its own sheet, else the model's)."""
        if route is not None and route.pricing is not None:
            return route.pricing
        return self.pricing

    @property
    def endpoint_type(self) -> str:
        return MODEL_TYPES[self.type]

    @property
    def output_max(self) -> int | None:
        value = self.info.get("outputMax")
        return int(value) if isinstance(value, int) else None

    @property
    def context_length(self) -> int | None:
        value = self.info.get("contextLength")
        return int(value) if isinstance(value, int) else None


class CatalogFile(_Strict):
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: list[ModelSpec] = Field(default_factory=list)
