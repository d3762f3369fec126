"""Admission of a chat request: who may call which model, with which output cap, at what
worst-case cost — decided before any credit is held or any upstream is called."""

from __future__ import annotations

from dataclasses import dataclass

from modelgate.accounts.keys import KeyIdentity
from modelgate.catalog.models import ModelSpec, Route
from modelgate.catalog.registry import Catalog
from modelgate.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from modelgate.gateway.estimate import prompt_tokens_upper_bound
from modelgate.gateway.router import Router
from modelgate.wire.chat import ChatRequest

DEFAULT_MAX_TOKENS = 512


@dataclass(slots=True)
class Prepared:
    model: ModelSpec
    plan: list[Route]
    max_tokens: int
    hold_credits: int
    prompt_estimate: int


def admit(catalog: Catalog, router: Router, req: ChatRequest, ident: KeyIdentity) -> Prepared:
    if ident.is_management:
        raise PermissionDeniedError(
            "Management keys can only manage API keys; use a regular API key to call models.",
            code="management_key",
        )
    if not ident.allows("model:chat"):
        raise PermissionDeniedError(
            "This API key does not have the model:chat scope.", code="missing_scope", param="scopes"
        )
    model = catalog.find(req.model)
    if model is None:
        raise NotFoundError(
            f"The model `{req.model}` does not exist. List the available models at GET /v1/models.",
            param="model",
            code="model_not_found",
        )
    max_tokens = req.output_limit or DEFAULT_MAX_TOKENS
    limit = model.output_max
    if limit is not None and max_tokens > limit:
        field_name = "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
        raise InvalidRequestError(
            f"{field_name}: {max_tokens} is too large for {model.id}; the maximum is {limit}",
            param=field_name,
        )
    plan = router.plan(model, req.provider)
    n = req.n or 1
    prompt_estimate = prompt_tokens_upper_bound(req)
    hold = model.pricing.credits(prompt_tokens=prompt_estimate, completion_tokens=max_tokens * n)
    return Prepared(model, plan, max_tokens, hold, prompt_estimate)
