"""One admitted request as the metered core carries it (``Flight``: the request, its admission, its
log meta and its hold, with the pricing and pool figures every later step asks of them) and the
running usage an adapter reports during one attempt (``LiveUsage``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from modelgate.cache.stage import Lookup
from modelgate.catalog.models import Route
from modelgate.gateway.admission import Prepared
from modelgate.gateway.holds import HoldPolicy
from modelgate.gateway.metered import Attempt, MeteredRequest
from modelgate.gateway.recorder import RequestMeta
from modelgate.gateway.router import PoolRequest
from modelgate.providers.base import Usage
from modelgate.store.ledger import HoldTicket


@dataclass(slots=True)
class Flight:
    """One admitted request and its hold, as every later step needs them."""

    req: MeteredRequest
    prep: Prepared
    meta: RequestMeta
    ticket: HoldTicket
    lookup: Lookup | None = None  # the response cache's (cache/stage.py), when the request asked for it

    def cost(self, usage: Usage, route: Route | None = None) -> int:
        """The exact credits of ``usage`` at the prices of the route that answered."""
        return self.prep.model.sheet(route).cost(usage)

    def charge(self, credits: int) -> int:
        """What is charged for ``credits``: the whole real cost, also beyond the hold (the one
        overdraft rule, docs/pricing.md: the account may go past its limit by this request's
        overage, never more)."""
        return max(credits, 0)

    def learned(self, policy: HoldPolicy, provider: str, usage: Usage) -> None:
        """Tell the hold policy what this answer showed: its output, what the upstream cached."""
        account, model, prefix = self.meta.caller.ident.account_id, self.prep.model.id, self.req.cache_prefix
        at = self.prep.admitted_at
        policy.settled(account, provider, model, usage, choices=self.req.n, prefix=prefix, at=at)

    def estimate_usage(self, produced: int) -> Usage:
        """Only when an upstream never reported usage: the prompt estimate and what was produced."""
        cap = self.prep.max_tokens * max(self.req.n, 1)
        return Usage(prompt_tokens=self.prep.prompt_estimate, completion_tokens=min(produced, cap))

    def best_usage(self, reported: Usage | None, since: int) -> Usage:
        """A stream that ended without the upstream's last word (an error after output, a client
        gone and the drain cut short): the figures the upstream last reported, exact where it knew
        them (input, cache reads and writes, output so far; Anthropic's ``message_start``, Gemini's
        ``usageMetadata``, a usage chunk), plus the output produced since that report estimated (one
        token per output event, within the output cap); never less than what was reported. Without
        any report: ``estimate_usage`` of the events produced."""
        if reported is None:
            return self.estimate_usage(since)
        cap = self.prep.max_tokens * max(self.req.n, 1)
        output = reported.completion_tokens
        output = max(output, min(output + since, cap))
        prompt = reported.prompt_tokens or self.prep.prompt_estimate
        if output == reported.completion_tokens and prompt == reported.prompt_tokens:
            return reported
        return replace(reported, prompt_tokens=prompt, completion_tokens=output)

    @property
    def pool(self) -> PoolRequest | None:
        """For a model balanced over a pool: what the router needs (its per-minute token count is
        the prompt estimate plus the output cap)."""
        model = self.prep.model
        if model.balance is None:
            return None
        return PoolRequest(model, self.prep.prompt_estimate + self.prep.max_tokens * max(self.req.n, 1))

    def attempt(self, route: Route, live: LiveUsage) -> Attempt:
        self.meta.attempts += 1
        self.meta.route = route.model
        return Attempt(
            route=route,
            model=self.prep.model,
            max_tokens=self.prep.max_tokens,
            inference_id=self.meta.caller.inference_id,
            on_usage=live.report,
        )


class LiveUsage:
    """The last running totals an adapter reported for one attempt (``ProviderCall.on_usage``)."""

    __slots__ = ("at", "counter", "route", "usage")

    def __init__(self, route: Route) -> None:
        self.route = route  # its prices are the charge's (a route may carry its own sheet)
        self.usage: Usage | None = None
        # A stream's count of output events read so far (``UpstreamPump.produced``), and its value
        # at the last report: the output the report does not count yet is the difference.
        self.counter: Callable[[], int] | None = None
        self.at = 0

    def report(self, usage: Usage) -> None:
        self.usage = usage
        self.at = self.counter() if self.counter is not None else 0

    def since(self) -> int:
        """Output events read after the last report (a stream's)."""
        return self.counter() - self.at if self.counter is not None else 0

    def produced(self) -> Usage | None:
        """What was reported, when it counts anything."""
        u = self.usage
        return u if u is not None and (u.completion_tokens or u.prompt_tokens) else None
