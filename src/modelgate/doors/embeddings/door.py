"""The Embeddings door (``POST /v1/embeddings``), OpenAI's request and response plus ``meta.usage``.

Parse into ``doors/embeddings/wire.py``'s ``EmbeddingRequest``; check it against the model's limits
(``catalog/models.py``'s ``Embedding``: inputs per request, tokens per input and in all, which
``dimensions`` it can give); meter it on the core with ``EmbeddingsInvocation`` (adapters implement
``providers/base.py``'s ``EmbeddingProvider``); render the list with the vectors as floats or base64.
Errors in the AI/ML API envelope, as for chat.

Billing: the hold is an upper bound of the input tokens (UTF-8 bytes + 2 per text, the exact count
of a token-id input); the charge is the upstream's count, or that bound when an upstream says nothing
(``Embeddings.prompt_tokens == 0``), never more than the hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelgate.cache.policy import CacheAsk
from modelgate.catalog.models import ModelSpec
from modelgate.doors.base import (
    DoorRequest,
    DoorResponse,
    NeverStreamed,
    OpenAIEnvelopeDoor,
    checked,
    whole_answer,
)
from modelgate.doors.embeddings.wire import EmbeddingRequest, render_embeddings
from modelgate.errors import InvalidRequestError, UpstreamProtocolError
from modelgate.gateway.metered import Attempt, Caller, MeteredRequest, Outcome
from modelgate.httpkit.contract import json_body, operation
from modelgate.httpkit.errors import validate_body
from modelgate.providers.base import EmbedCall, EmbeddingProvider, Embeddings, Usage
from modelgate.providers.vectors import off_loop
from modelgate.wire.credits import meta

if TYPE_CHECKING:
    from modelgate.httpkit.deps import AppState

# A text longer than this many characters per allowed token cannot fit any tokenizer we route to.
MAX_CHARS_PER_TOKEN = 8
TEXT_OVERHEAD = 2  # tokens a tokenizer may add around a text (BOS/EOS)


def token_bounds(req: EmbeddingRequest) -> list[int]:
    """Per input: the exact length of a token-id input, an upper bound (UTF-8 bytes + 2) of a text."""
    return [len(i.encode()) + TEXT_OVERHEAD if isinstance(i, str) else len(i) for i in req.input]


def check_limits(req: EmbeddingRequest, model: ModelSpec) -> int | None:
    """The model's limits, each a 400 naming the input; returns the ``dimensions`` to ask for."""
    spec = model.embedding
    if spec is None:
        return None
    count = len(req.input)
    if count > spec.max_inputs:
        raise InvalidRequestError(
            f"input: {count} inputs; {model.id} takes at most {spec.max_inputs} per request",
            param="input",
            code="too_many_inputs",
        )
    total = 0
    for i, item in enumerate(req.input):
        if isinstance(item, str):
            size, what = len(item), "characters"
            over = size > spec.max_input_tokens * MAX_CHARS_PER_TOKEN
            total += -(-size // MAX_CHARS_PER_TOKEN)
        else:
            size, what = len(item), "tokens"
            over = size > spec.max_input_tokens
            total += size
        if over:
            raise InvalidRequestError(
                f"input[{i}]: {size} {what} cannot fit {model.id}'s limit of {spec.max_input_tokens} tokens"
                " per input",
                param="input",
                code="input_too_long",
            )
    if total > spec.max_request_tokens:
        raise InvalidRequestError(
            f"input: the inputs hold at least {total} tokens; {model.id} takes at most"
            f" {spec.max_request_tokens} per request",
            param="input",
            code="input_too_long",
        )
    dims = req.dimensions
    if dims is None or dims == spec.dimensions:
        return None
    if spec.min_dimensions is None:
        raise InvalidRequestError(
            f"dimensions: {model.id} returns {spec.dimensions}-dimensional vectors and cannot shorten them",
            param="dimensions",
        )
    if not spec.min_dimensions <= dims <= spec.dimensions:
        raise InvalidRequestError(
            f"dimensions: {model.id} takes {spec.min_dimensions} to {spec.dimensions}; got {dims}",
            param="dimensions",
        )
    return dims


class EmbeddingsInvocation(NeverStreamed):
    """Calls an adapter's ``embed`` with every input at once."""

    __slots__ = ("dimensions", "estimate", "inputs")

    def __init__(self, req: EmbeddingRequest, *, dimensions: int | None, estimate: int) -> None:
        self.inputs = req.input
        self.dimensions = dimensions
        self.estimate = estimate

    async def complete(self, provider: Any, attempt: Attempt) -> Outcome:
        if not isinstance(provider, EmbeddingProvider):  # admission keeps only capable routes
            raise InvalidRequestError(f"{attempt.model.id} cannot embed on route {attempt.route.provider}")
        call = EmbedCall(
            inputs=self.inputs,
            upstream_model=attempt.route.model,
            model=attempt.model,
            dimensions=self.dimensions,
            inference_id=attempt.inference_id,
            extra=attempt.route.options,
        )
        result = await provider.embed(call)
        if len(result.vectors) != len(self.inputs):  # every adapter checks; the contract, once more
            raise UpstreamProtocolError(
                f"{attempt.route.provider} answered {len(result.vectors)} vectors for {len(self.inputs)}"
                " inputs",
                provider=attempt.route.provider,
            )
        tokens = result.prompt_tokens if result.prompt_tokens > 0 else self.estimate
        return Outcome(result, Usage(prompt_tokens=tokens), "stop")

    unstreamed = "embeddings are never streamed"


class EmbeddingsDoor(OpenAIEnvelopeDoor):
    name = "embeddings"
    note = "OpenAI-compatible embeddings."
    paths = frozenset({"/v1/embeddings", "/embeddings"})

    def openapi(self) -> dict[str, dict[str, Any]]:
        op = operation(summary="Create embeddings", body=json_body(EmbeddingRequest), upstream=True)
        return dict.fromkeys(self.paths, op)

    def parse(self, req: DoorRequest) -> EmbeddingRequest:
        return validate_body(req.body, EmbeddingRequest)

    async def run(self, state: AppState, parsed: Any, caller: Caller, req: DoorRequest) -> DoorResponse:
        emb: EmbeddingRequest = parsed
        dimensions = checked(
            state, caller, emb.model, lambda m: check_limits(emb, m) if m is not None else None
        )
        estimate = sum(token_bounds(emb))
        metered = MeteredRequest(
            model=emb.model,
            invocation=EmbeddingsInvocation(emb, dimensions=dimensions, estimate=estimate),
            provider=emb.provider,
            kind="embedding",
            scope="model:embeddings",
            max_tokens=1,
            prompt_estimate=estimate,
            needs=frozenset({"embeddings"}),
            cache=CacheAsk(req.body),
        )
        done = await state.core.complete(metered, caller)
        result: Embeddings = done.payload
        body = await off_loop(
            len(result.vectors) * len(result.vectors[0]) * 8 if result.vectors else 0,
            _render,
            result,
            done.model.id,
            done.usage.prompt_tokens,
            emb.encoding_format or "float",
            meta(done.credits),
        )
        return whole_answer(done, body, emb)


def _render(result: Embeddings, model: str, tokens: int, encoding: str, credit_meta: dict[str, Any]) -> bytes:
    return render_embeddings(
        result.vectors, model=model, prompt_tokens=tokens, encoding=encoding, meta=credit_meta
    )
