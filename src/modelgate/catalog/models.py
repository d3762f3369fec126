"""Typed, strict models of the catalogue YAML (providers, models, pricing, routes).

Internal configuration is strict (``extra="forbid"``): a misspelt key is an error at start, named
with its file and path, never a silently ignored setting.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelgate.catalog.kinds import KINDS
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
    # Send the request's W3C trace context (traceparent) to this upstream (docs/observability.md):
    # off by default, so that third parties see nothing of the operator's traces.
    forward_traceparent: bool = False
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


class Images(_Strict):
    """What an image model (``type: image``) accepts. The sizes and qualities it offers are the
    ``image:<size>/<quality>`` units its price sheet prices (``per_unit_usd``): nothing unpriced can
    be asked for. The defaults are what a request that names no size or quality is priced (and sent)
    as; both must be priced."""

    default_size: str = "1024x1024"
    default_quality: str = "standard"
    max_n: int = Field(default=10, ge=1, le=100)
    max_prompt_chars: int = Field(default=32_000, ge=1, le=1_000_000)
    edits: bool = False  # also serves POST /v1/images/edits
    max_file_bytes: int = Field(default=25 * 1024 * 1024, ge=1)  # an edit's image and mask, each


SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
SPEECH_FORMATS: tuple[SpeechFormat, ...] = ("mp3", "opus", "aac", "flac", "wav", "pcm")


class Speech(_Strict):
    """What a speech model (``type: speech``, ``POST /v1/audio/speech``) accepts; it is priced per
    character of input (``pricing.per_mchar_usd``). ``voices`` empty: any voice name goes up."""

    max_input_chars: int = Field(default=4096, ge=1, le=1_000_000)
    voices: list[str] = Field(default_factory=list)
    formats: list[SpeechFormat] = Field(default_factory=lambda: list(SPEECH_FORMATS), min_length=1)


class Transcription(_Strict):
    """What a transcription model (``type: transcription``: ``POST /v1/audio/transcriptions``, and
    ``/translations`` when ``translations``) accepts; priced per second of audio in (the ``second``
    unit of ``pricing.per_unit_usd``). The hold of a file whose duration cannot be read from its
    header (anything but WAV) assumes ``min_bitrate_bps`` (at most ``max_seconds``)."""

    max_file_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    max_seconds: int = Field(default=3 * 3600, ge=1)
    min_bitrate_bps: int = Field(default=16_000, ge=100)
    translations: bool = True


# A catalogue ``type`` -> the endpoint type the public model list shows, and the endpoint's path
# (``GET /models/metrics``, docs): read from ``catalog/kinds.py``.
MODEL_TYPES = {name: kind.listed_as for name, kind in KINDS.items()}
MODEL_ENDPOINTS = {name: kind.endpoint for name, kind in KINDS.items()}
IMAGE_UNIT = "image:"


def image_unit(size: str, quality: str) -> str:
    """The price unit of one image of ``size`` at ``quality`` (``catalog/prices.py`` units)."""
    return f"{IMAGE_UNIT}{size}/{quality}"


class ModelSpec(_Strict):
    id: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    type: str = "chat"  # a key of catalog/kinds.py KINDS
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
    images: Images | None = None  # type image only (defaults when left out)
    speech: Speech | None = None  # type speech only (defaults when left out)
    transcription: Transcription | None = None  # type transcription only (defaults when left out)

    @model_validator(mode="before")
    @classmethod
    def _embedding_defaults(cls, data: Any) -> Any:
        # An embedding or image model streams nothing and outputs vectors or images: its defaults
        # differ from chat's (an image model is priced per image: no token prices needed).
        name = data.get("type") if isinstance(data, dict) else None
        kind = KINDS.get(name) if isinstance(name, str) and name != "chat" else None
        if kind is not None:
            data = dict(data)
            data.setdefault("capabilities", list(kind.capabilities))
            data.setdefault("modalities", kind.modalities)
            if isinstance(data.get("pricing"), dict):
                tokens = {"output_usd_per_mtok": 0.0}
                if kind.priced == "units":
                    tokens["input_usd_per_mtok"] = 0.0
                data["pricing"] = {**tokens, **data["pricing"]}
        return data

    @field_validator("type")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        if v not in KINDS:
            raise ValueError(f"must be one of {', '.join(KINDS)}")
        return v

    @model_validator(mode="after")
    def _kind(self) -> ModelSpec:
        if self.type == "embedding":
            if self.embedding is None:
                raise ValueError("embedding: required for a model of type embedding (dimensions, ...)")
            if self.reasoning is not None:
                raise ValueError("reasoning: not allowed on a model of type embedding")
        elif self.embedding is not None:
            raise ValueError("embedding: only allowed on a model of type embedding")
        if self.type == "image":
            self._check_image_prices()
        elif self.images is not None:
            raise ValueError("images: only allowed on a model of type image")
        if self.type == "speech":
            self.speech = self.speech or Speech()
            self._needs_unit("character", "per_mchar_usd (USD per million characters)")
        elif self.speech is not None:
            raise ValueError("speech: only allowed on a model of type speech")
        if self.type == "transcription":
            self.transcription = self.transcription or Transcription()
            self._needs_unit("second", "per_unit_usd.second (USD per second of audio)")
        elif self.transcription is not None:
            raise ValueError("transcription: only allowed on a model of type transcription")
        return self

    def _needs_unit(self, unit: str, what: str) -> None:
        for i, sheet in enumerate([self.pricing, *(r.pricing for r in self.routes if r.pricing)]):
            if unit not in sheet.fees:
                where = "pricing" if i == 0 else "a route's pricing"
                raise ValueError(f"{where}: a model of type {self.type} needs {what}")

    def _check_image_prices(self) -> None:
        if self.images is None:
            self.images = Images()
        offered = self.image_units()
        if not offered:
            raise ValueError(
                "pricing.per_unit_usd: a model of type image prices at least one image:<size>/<quality>"
            )
        default = image_unit(self.images.default_size, self.images.default_quality)
        if default not in offered:
            raise ValueError(f"images: the default {default} is not priced in pricing.per_unit_usd")
        for i, route in enumerate(self.routes):
            if route.pricing is not None and not offered <= set(route.pricing.fees):
                missing = sorted(offered - set(route.pricing.fees))
                raise ValueError(f"routes[{i}].pricing: prices no {', '.join(missing)}")

    def image_units(self) -> set[str]:
        """The ``image:<size>/<quality>`` units the model's price sheet prices (what it offers)."""
        return {u for u in self.pricing.fees if u.startswith(IMAGE_UNIT)}

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
    def endpoint_path(self) -> str:
        return MODEL_ENDPOINTS[self.type]

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
