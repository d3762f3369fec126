"""Wire shapes of the service endpoints (keys, billing, usage, logs), per aimlapi-specs.

Request bodies are pydantic models, strict about unknown fields (the key specs say
``additionalProperties: false``) and about types: a JSON ``false`` is not a number, ``"true"`` or
``1`` is not a boolean, ``"5"`` is not an amount (pydantic's strict mode; an integer is still a
valid number). Responses are plain dicts built by the ``*_view`` functions so the
exact field set of each spec is visible in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from modelgate.catalog.models import CREDITS_PER_USD

# A property modelgate adds to an object of a contract it serves (OpenAI's, the AI/ML API's): marked
# in /openapi.json (``json_schema_extra``), as modelgate's own operations are (httpkit/contract.py).
EXTENSION: dict[str, Any] = {"x-modelgate-extension": True}

Scope = Literal[
    "model:chat",
    "model:responses",
    "model:image",
    "model:audio",
    "model:video",
    "model:embeddings",
    "model:speech",
    "model:ocr",
]
Retention = Literal["no_reset", "day", "week", "month"]


def _plain_text(value: str) -> str:
    """Text a database stores as given: no control characters (NUL included), valid UTF-8."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


PlainText = Annotated[str, AfterValidator(_plain_text)]


class KeyLimit(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    retention: Retention = "no_reset"
    threshold: float = Field(ge=0, le=10_000_000)


ModelName = Annotated[PlainText, Field(min_length=1, max_length=200)]


class KeyExtras(BaseModel):
    """modelgate's additions to the key endpoints (docs/organisations.md): the models a key may
    call (None: any its project allows), its own requests/tokens per minute, when it expires (an
    ISO 8601 time; None: never)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    allowed_models: list[ModelName] | None = Field(default=None, max_length=500, json_schema_extra=EXTENSION)
    rpm: int | None = Field(default=None, ge=1, le=1_000_000_000, json_schema_extra=EXTENSION)
    tpm: int | None = Field(default=None, ge=1, le=1_000_000_000_000, json_schema_extra=EXTENSION)
    expires_at: PlainText | None = Field(default=None, max_length=64, json_schema_extra=EXTENSION)
    # the response cache for requests without an x-modelgate-cache header (docs/cache.md)
    cache: Literal["off", "exact", "semantic"] | None = Field(default=None, json_schema_extra=EXTENSION)


class KeyCreate(KeyExtras):
    """``POST /v1/keys`` (``project_id``: a project of the key's organisation; default: its default
    project)."""

    name: PlainText | None = Field(default=None, max_length=200)
    limit: KeyLimit | None = None
    scopes: list[Scope] | None = None
    project_id: int | None = Field(default=None, ge=1, le=2**31 - 1, json_schema_extra=EXTENSION)


class KeyPatch(KeyExtras):
    """``PATCH /v1/keys/{prefix}``: only the fields sent change (``limit: null`` removes the limit)."""

    name: PlainText | None = Field(default=None, max_length=200)
    disabled: bool | None = None
    limit: KeyLimit | None = None
    scopes: list[Scope] | None = None


class KeyPut(KeyPatch):
    """``PUT /v1/keys/{prefix}``: the full set of properties; a field left out takes its default
    (no name, enabled, every scope, no limit)."""


class TopUp(BaseModel):
    """``POST /v1/admin/top-up`` (modelgate's own admin API)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    email: PlainText = Field(min_length=3, max_length=320)
    usd: float = Field(gt=0, le=1_000_000)
    description: PlainText | None = Field(default=None, max_length=500)


def usd(credits: int) -> float:
    return round(credits / CREDITS_PER_USD, 9)


def iso(dt: datetime) -> str:
    """UTC, millisecond precision, ``Z`` suffix (``2026-02-18T06:59:10.031Z``)."""
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def limit_view(retention: str | None, credits: int | None) -> dict[str, Any] | None:
    if credits is None:
        return None
    return {"retention": retention or "no_reset", "threshold": usd(credits)}


def key_view(rec: Any, *, monthly_credits: int, key: str | None = None) -> dict[str, Any]:
    """One key as the keys specs render it (``key`` only at creation)."""
    out: dict[str, Any] = {
        "name": rec.name,
        "prefix": rec.prefix,
        "disabled": bool(rec.disabled),
        "scopes": list(rec.scopes) if rec.scopes is not None else None,
        "limit": limit_view(rec.limit_retention, rec.limit_credits),
        "created_at": iso(rec.created_at),
        "updated_at": iso(rec.updated_at),
        "monthly_usage": usd(monthly_credits),
        # modelgate's additions (docs/organisations.md)
        "project_id": getattr(rec, "project_id", None),
        "allowed_models": getattr(rec, "allowed_models", None),
        "rpm": getattr(rec, "rpm", None),
        "tpm": getattr(rec, "tpm", None),
        "cache": getattr(rec, "cache_mode", None),
        "expires_at": iso(rec.expires_at) if getattr(rec, "expires_at", None) is not None else None,
    }
    if key is not None:
        out["key"] = key
        if out["limit"] is None:  # keys-post: ``limit`` is an object, not nullable
            del out["limit"]
    return out


# /v2/billing/transactions: ledger kinds -> the spec's ``type``.
TRANSACTION_TYPES = {
    "topup": "PAYMENT",
    "bonus": "BONUS",
    "refund": "REFUND",
    "adjustment": "ADJUSTMENT",
    "charge": "MODEL_USAGE",
    "expired": "CREDITS_EXPIRED",
    "init": "INIT",
}
KINDS_BY_TYPE = {v: k for k, v in TRANSACTION_TYPES.items()}


def transaction_view(row: Any) -> dict[str, Any]:
    m = row._mapping
    credits = int(m["credits"])
    kind = TRANSACTION_TYPES.get(m["kind"], "ADJUSTMENT")
    return {
        "created_at": iso(m["created_at"]),
        "direction": "TOPUP" if credits > 0 else "CHARGE",
        "type": kind,
        "amount": {"usd": usd(abs(credits)), "credits": abs(credits)},
        "model": m["model"] if kind == "MODEL_USAGE" else None,
        "reference_id": m["reference_id"],
    }


def _uses(raw: Any) -> dict[str, int]:
    """A log row's per-use counts (JSON written by the recorder); {} when none or unreadable."""
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return {str(k): int(v) for k, v in value.items() if isinstance(v, int)} if isinstance(value, dict) else {}


def _cache_view(outcome: str | None, saved: int) -> dict[str, Any] | None:
    """The response cache's part of a log row (docs/cache.md): None when it was not asked."""
    if not outcome:
        return None
    result, _, kind = outcome.partition(":")
    return {"result": result, "kind": kind, "saved": {"usd": usd(saved), "credits": saved}}


def log_view(row: Any) -> dict[str, Any]:
    m = row._mapping
    inp, out = int(m["prompt_tokens"]), int(m["completion_tokens"])
    return {
        "created": iso(m["created_at"]),
        "status": "succeeded" if m["status"] == "success" else "failed",
        "origin": m["origin"],
        "door": m["door"],
        "model": m["model"],
        "cost": {"usd": usd(int(m["credits"])), "credits": int(m["credits"])},
        "tokens": {
            "input": inp,
            "output": out,
            "total": inp + out,
            "cache_read": int(m["cached_tokens"] or 0),
            "cache_write_5m": int(m["cache_write_5m_tokens"] or 0),
            "cache_write_1h": int(m["cache_write_1h_tokens"] or 0),
            "reasoning": int(m["reasoning_tokens"] or 0),
            "audio": int(m["audio_tokens"] or 0),
        },
        "tier": int(m["tier"] or 0),
        "uses": _uses(m["uses"]),
        "overage": {"usd": usd(int(m["overage_credits"] or 0)), "credits": int(m["overage_credits"] or 0)},
        "cache": _cache_view(m.get("cache"), int(m.get("cache_saved_credits") or 0)),
        "request_id": m["inference_id"],
        "inference_id": m["inference_id"],
        "client_request_id": m["client_request_id"],
    }
