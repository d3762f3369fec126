"""``POST /v1/responses/input_tokens``: the input-token count of a Responses request, never billed
and never logged as a model call (as the Messages door's ``count_tokens``: ``MeteredCore.count``).

Exact on a route whose upstream speaks Responses natively and answers ``/responses/input_tokens``
(the body goes up as the door would send it: the model name replaced, the caller's own stored items
in place of ids); elsewhere the door's prompt bound (``doors/responses/estimate.py``), which leans
high, so a client that budgets its context with it stays inside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from modelgate.doors.base import JSON_HEADERS, DoorResponse
from modelgate.doors.responses.estimate import prompt_upper_bound
from modelgate.gateway.metered import Caller, CountRequest
from modelgate.providers.base import Provider, native
from modelgate.providers.openai_responses import DIALECT

if TYPE_CHECKING:
    from modelgate.catalog.models import Route
    from modelgate.doors.responses.door import ResponsesInvocation
    from modelgate.httpkit.deps import AppState


def count_request(invocation: ResponsesInvocation) -> CountRequest:
    """The metered core's count: the upstream's own on a native route, the estimate elsewhere."""
    rr = invocation.req
    history = invocation.chain.items if invocation.chain is not None else []

    async def exact(provider: Provider, route: Route) -> int | None:
        upstream = native(provider, DIALECT)
        if upstream is None:
            return None
        tokens = await upstream.count_tokens(DIALECT, invocation.body_for(route), invocation.headers)
        return None if tokens is None else int(tokens)

    return CountRequest(
        model=rr.model, counter=exact, estimate=prompt_upper_bound(rr, history, invocation.refs)
    )


async def count(state: AppState, invocation: ResponsesInvocation, caller: Caller) -> DoorResponse:
    tokens = await state.core.count(count_request(invocation), caller)
    body = {"object": "response.input_tokens", "input_tokens": tokens}
    return DoorResponse(200, {**JSON_HEADERS}, orjson.dumps(body))
