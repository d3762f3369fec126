"""``POST /v1/messages/count_tokens``: never billed, never logged as a model call.

Exact on a route whose adapter passes Messages through (the request is forwarded to the upstream's
own ``count_tokens``); elsewhere the documented estimate of ``doors/messages/estimate.py``, which
leans high, so a client that budgets its context with it stays inside it.
"""

from __future__ import annotations

from modelgate.catalog.models import Route
from modelgate.doors.messages.body import Count
from modelgate.doors.messages.estimate import estimate_input_tokens
from modelgate.doors.rawjson import replace_top_level_string
from modelgate.gateway.metered import CountRequest
from modelgate.providers.base import Provider, native

DIALECT = "anthropic-messages"


def count_request(req: Count, raw: bytes, headers: dict[str, str]) -> CountRequest:
    """The metered core's count (``MeteredCore.count``): exact on a route whose adapter passes
    Messages through, the estimate elsewhere."""

    async def exact(provider: Provider, route: Route) -> int | None:
        upstream = native(provider, DIALECT)
        if upstream is None:
            return None
        body = replace_top_level_string(raw, "model", route.model)
        tokens = await upstream.count_tokens(DIALECT, body, headers)
        return None if tokens is None else int(tokens)

    return CountRequest(model=req.head.model, counter=exact, estimate=estimate_input_tokens(req.prompt))
