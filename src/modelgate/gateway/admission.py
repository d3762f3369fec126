"""Admission of a metered request: who may call which model, through which routes, with which output
cap, at what worst-case cost — decided before any credit is held or any upstream is called.

Capabilities are enforced here, once, for every door: a model that declares ``capabilities`` in the
catalogue must list each one the request needs, and only routes whose adapter supports them are kept
(``providers/base.py`` flags). A model without a declared list takes its adapters' word.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from modelgate.accounts.keys import KeyIdentity
from modelgate.catalog.models import ModelSpec, Route
from modelgate.catalog.prices import MICRO
from modelgate.catalog.registry import Catalog
from modelgate.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from modelgate.gateway.holds import HoldPolicy
from modelgate.gateway.metered import MeteredRequest
from modelgate.gateway.router import Router
from modelgate.providers.base import ImageProvider, Provider, SpeechProvider, TranscriptionProvider

DEFAULT_MAX_TOKENS = 512
# Bounds every count that reaches the ledger: caps and estimates above this are client errors.
MAX_TOKENS_BOUND = 2**31 - 1

# A capability a request may need -> the declared ``Provider`` flag that grants it.
_FLAGS: dict[str, Callable[[Provider], bool]] = {
    "tools": lambda p: p.supports_tools,
    "structured_output": lambda p: p.supports_json_schema,
    "streaming": lambda p: p.supports_streaming,
    "vision": lambda p: p.supports_vision,
    "embeddings": lambda p: p.supports_embeddings,
    # An image adapter is one that implements the protocol (a rare request: isinstance is cheap enough).
    "images": lambda p: isinstance(p, ImageProvider),
    "speech": lambda p: isinstance(p, SpeechProvider),
    "transcription": lambda p: isinstance(p, TranscriptionProvider),
}

_WHAT = {
    "tools": "tool calling",
    "structured_output": "structured output (response_format json_schema / json_object)",
    "streaming": "streaming",
    "vision": "image input",
    "embeddings": "embeddings",
    "images": "image generation",
    "speech": "speech synthesis",
    "transcription": "transcription",
}


@dataclass(slots=True)
class Prepared:
    model: ModelSpec
    plan: list[Route]
    max_tokens: int
    hold_credits: int
    prompt_estimate: int
    admitted_at: float = 0.0  # monotonic; set when the request's prompt-cache prefix is recorded


def resolve_model(catalog: Catalog, name: str, kind: str) -> ModelSpec:
    model = catalog.find(name)
    if model is None or model.type != kind:
        suffix = "" if model is None else f" as a {kind} model"
        raise NotFoundError(
            f"The model `{name}` does not exist{suffix}. List the available models at GET /v1/models.",
            param="model",
            code="model_not_found",
        )
    return model


def check_key(ident: KeyIdentity, scope: str) -> None:
    if ident.is_management:
        raise PermissionDeniedError(
            "Management keys can only manage API keys; use a regular API key to call models.",
            code="management_key",
        )
    if not ident.allows(scope):
        raise PermissionDeniedError(
            f"This API key does not have the {scope} scope.", code="missing_scope", param="scopes"
        )


def check_model_allowed(ident: KeyIdentity, model: ModelSpec) -> None:
    """The key's and its project's model allow-lists (docs/organisations.md); an alias counts."""
    if ident.allowed_models is not None and ident.allowed_models.isdisjoint((model.id, *model.aliases)):
        raise PermissionDeniedError(
            f"This API key may not call the model `{model.id}` (its or its project's model allow-list).",
            code="model_not_allowed",
            param="model",
        )


def supports(provider: Provider, capability: str) -> bool:
    flag = _FLAGS.get(capability)
    return True if flag is None else bool(flag(provider))


def _capable_plan(
    model: ModelSpec, plan: list[Route], needs: frozenset[str], providers: dict[str, Provider]
) -> list[Route]:
    declared = "capabilities" in model.model_fields_set
    for need in sorted(needs):
        if declared and need not in model.capabilities:
            raise InvalidRequestError(
                f"{model.id} does not support {_WHAT.get(need, need)}.", code="unsupported_capability"
            )
    kept = [r for r in plan if all(supports(providers[r.provider], n) for n in needs)]
    if not kept:
        missing = sorted(n for n in needs if not any(supports(providers[r.provider], n) for r in plan))
        what = ", ".join(_WHAT.get(n, n) for n in missing) or "this request"
        raise InvalidRequestError(
            f"{model.id} does not support {what} on its available routes.", code="unsupported_capability"
        )
    return kept


def admit(
    catalog: Catalog,
    router: Router,
    providers: dict[str, Provider],
    req: MeteredRequest,
    ident: KeyIdentity,
    policy: HoldPolicy,
) -> Prepared:
    check_key(ident, req.scope)
    model = resolve_model(catalog, req.model, req.kind)
    check_model_allowed(ident, model)
    max_tokens = req.max_tokens or DEFAULT_MAX_TOKENS
    limit = model.output_max
    if limit is not None and max_tokens > limit and req.clamp_max_tokens:
        max_tokens = limit  # a cap the model cannot reach anyway: lowered, not refused
    elif limit is not None and max_tokens > limit:
        raise InvalidRequestError(
            f"{req.max_tokens_field}: {max_tokens} is too large for {model.id}; the maximum is {limit}",
            param=req.max_tokens_field,
        )
    if max_tokens > MAX_TOKENS_BOUND:
        raise InvalidRequestError(
            f"{req.max_tokens_field}: {max_tokens} is too large; the maximum is {MAX_TOKENS_BOUND}",
            param=req.max_tokens_field,
        )
    plan = _capable_plan(model, router.plan(model, req.provider), req.needs, providers)
    n = max(req.n, 1)
    context = model.context_length
    prompt_estimate = min(req.prompt_estimate, context or MAX_TOKENS_BOUND, MAX_TOKENS_BOUND)
    output = policy.output(ident.account_id, model.id, max_tokens) * n if req.kind == "chat" else 0
    reach = (context or prompt_estimate) if req.grows_prompt else None
    prefix = req.cache_prefix
    now = time.monotonic() if prefix is not None else 0.0
    hold = 0
    for route in plan:  # the dearest route of the chain (a route may carry its own sheet)
        sheet = model.pricing if route.pricing is None else route.pricing
        prompt, read = prompt_estimate, 0
        if prefix is not None:  # a prefix this account had cached on this route is held as a read
            account, estimate = ident.account_id, req.prompt_estimate
            prompt, read = policy.prompt(account, route.provider, model.id, estimate, prefix, now)
            prompt = min(prompt, context or MAX_TOKENS_BOUND, MAX_TOKENS_BOUND)
        micro = sheet.hold_micro(
            prompt_tokens=reach or prompt,
            output_tokens=output,
            cache_write=req.cache_write,
            uses=req.uses,
            cached_tokens=read,
        )
        hold = max(hold, -(-micro // MICRO))
    return Prepared(model, plan, max_tokens, hold, prompt_estimate, now)
