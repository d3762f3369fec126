"""The dialect-neutral vocabulary between a door and the metered core.

A door turns its wire request into a ``MeteredRequest``: what to meter (model, output cap, prompt
estimate, scope, needed capabilities) and an ``Invocation`` — how to call one provider on one route,
by pass-through when the provider speaks the door's dialect, by translation otherwise. The core
hands the invocation an ``Attempt`` per try and gets back opaque payloads with their usage
(``Outcome`` for a whole answer, ``Event`` per streamed event). It returns a ``Metered`` answer or a
``MeteredStream`` whose last item is ``Settled``. Nothing here knows a wire format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from modelgate.providers.base import ProviderCall, Usage

if TYPE_CHECKING:
    from modelgate.cache.policy import CacheAsk
    from modelgate.catalog.models import ModelSpec, Route
    from modelgate.gateway.holds import CachePrefix
    from modelgate.store.keys import KeyIdentity
    from modelgate.wire.chat import ChatRequest


@dataclass(slots=True, frozen=True)
class Caller:
    """Who asks and through which door. Read by the core, never written."""

    ident: KeyIdentity
    inference_id: str
    door: str  # chat | messages | responses | embeddings
    path: str
    origin: str = "api"  # api | playground
    client_request_id: str | None = None
    cache_mode: str | None = None  # x-modelgate-cache: off | exact | semantic (None: the policy's)
    cache_ttl: int | None = None  # x-modelgate-cache-ttl, seconds
    traceparent: str | None = None  # the client's W3C trace context (docs/observability.md)


@dataclass(slots=True)
class Attempt:
    """One try on one route, as the door's invocation sees it."""

    route: Route
    model: ModelSpec
    max_tokens: int  # effective output cap, reasoning included
    inference_id: str
    # The core's recorder of live counts, for ``ProviderCall.on_usage``: adapters that know their
    # counts exactly (the local model) report them as they go, so that an abandoned stream is charged
    # for what was produced.
    on_usage: Callable[[Usage], None]
    # Headers for the upstream request, for the adapter (the trace context where it is forwarded).
    headers: dict[str, str] = field(default_factory=dict)

    def call(self, request: ChatRequest) -> ProviderCall:
        """The adapter's call for a chat-shaped ``request`` on this attempt's route."""
        return ProviderCall(
            request=request,
            upstream_model=self.route.model,
            max_tokens=self.max_tokens,
            model=self.model,
            inference_id=self.inference_id,
            extra=self.route.options,
            on_usage=self.on_usage,
            headers=self.headers,
        )


@dataclass(slots=True)
class Outcome:
    """A whole answer from one attempt."""

    payload: Any
    usage: Usage
    finish: str | None = None


@dataclass(slots=True)
class Event:
    """One streamed event. ``output``: it carries produced output (counted when no usage comes)."""

    payload: Any
    usage: Usage | None = None
    finish: str | None = None
    output: bool = True


class Invocation(Protocol):
    """How a door calls one provider for one route (pass-through or translation)."""

    async def complete(self, provider: Any, attempt: Attempt) -> Outcome: ...

    def stream(self, provider: Any, attempt: Attempt) -> AsyncIterator[Event]: ...


@dataclass(slots=True, frozen=True)
class MeteredRequest:
    model: str  # as the client named it (id or alias)
    invocation: Invocation
    stream: bool = False
    provider: str | None = None  # requested route provider; None or "auto" walks the chain
    kind: str = "chat"  # the catalogue type the door serves: chat | embedding
    scope: str = "model:chat"
    max_tokens: int | None = None  # the client's output cap; None: the default (512)
    max_tokens_field: str = "max_tokens"  # named in the error when the cap is too large
    # A cap above the model's maximum is lowered to it instead of refused (the Messages door: agents
    # send one large cap, 32,000 or 128,000, whatever model they are pointed at).
    clamp_max_tokens: bool = False
    prompt_estimate: int = 0  # an estimate of the prompt tokens (doors/estimate.py)
    n: int = 1
    # Capabilities the request needs (streaming, tools, structured_output, vision, embeddings): a
    # model declaring ``capabilities`` must list them, and only routes whose adapter has the
    # ``providers/base.py`` flag are taken (``gateway/admission.py``).
    needs: frozenset[str] = frozenset()
    # What the hold must cover beyond tokens at the input price (catalog/prices.py hold_micro):
    cache_write: str | None = None  # "5m" | "1h": the prompt is marked for a cache write of that lifetime
    uses: dict[str, int] | None = None  # per-use fees the request can incur (server tools), bounded
    grows_prompt: bool = False  # server-side tools can grow the prompt up to the context window
    # Where the prompt can be cached (Messages ``cache_control``): a prefix this account recently had
    # cached on a route is held as a cache read (gateway/holds.py).
    cache_prefix: CachePrefix | None = None
    # What the response cache keys on (cache/policy.py): the raw body and where its turns are.
    # None: this request is never cached (a door that does not offer it).
    cache: CacheAsk | None = None


@dataclass(slots=True, frozen=True)
class CountRequest:
    """An input-token count (Messages ``count_tokens``): admitted like a model call (key, scope,
    model), never held, billed or rate limited. ``counter`` asks one provider on one route for an
    exact count (None: it has none); ``estimate`` is the door's answer when no route counts."""

    model: str
    counter: Callable[[Any, Route], Awaitable[int | None]]
    estimate: int
    kind: str = "chat"
    scope: str = "model:chat"


@dataclass(slots=True)
class Metered:
    """A whole answer, already charged (``credits`` is what the client pays)."""

    payload: Any
    usage: Usage
    credits: int
    provider: str
    model: ModelSpec
    finish: str | None
    headers: dict[str, str]
    cache: str | None = None  # hit:exact | hit:semantic when served from the response cache


@dataclass(slots=True)
class Settled:
    """The last item of a ``MeteredStream``: the upstream ended and the charge is queued."""

    usage: Usage
    credits: int
    finish: str | None


@dataclass(slots=True)
class MeteredStream:
    """``events`` yields ``Event``s then one ``Settled``; closing it early settles what was produced."""

    provider: str
    model: ModelSpec
    headers: dict[str, str]
    events: AsyncIterator[Event | Settled]
    cache: str | None = None  # hit:exact | hit:semantic when replayed from the response cache
