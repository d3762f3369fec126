"""Request traces in the OpenTelemetry GenAI semantic conventions (docs/observability.md).

One span per model request, named ``{gen_ai.operation.name} {gen_ai.request.model}``, with the
conventions' attributes (``gen_ai.operation.name``, ``gen_ai.provider.name``,
``gen_ai.request.model``, ``gen_ai.response.model``, ``gen_ai.usage.input_tokens`` /
``output_tokens``, ``gen_ai.response.finish_reasons``, ``gen_ai.request.max_tokens``,
``error.type``) and modelgate's (``modelgate.door``, ``modelgate.route``, ``modelgate.cost.credits``,
``modelgate.cache``, ``modelgate.inference_id``); its children: ``modelgate.admission``,
``modelgate.hold``, one ``modelgate.attempt`` per upstream try (retries and fallbacks visible) and
``modelgate.settle`` (until the charge commits).

A client's W3C ``traceparent`` is the parent. Spans go to an OTLP/HTTP exporter configured by the
standard ``OTEL_*`` variables (``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, ``_HEADERS``,
``OTEL_TRACES_SAMPLER[_ARG]``, ``OTEL_SERVICE_NAME``, ``OTEL_BSP_*``); the provider is this app's
own (never the process-global one). Prompts and completions are not recorded unless the operator
sets ``MODELGATE_TRACE_CONTENT`` (then the request body's turns, as ``gen_ai.input.messages``).

Disabled (no endpoint, ``OTEL_SDK_DISABLED=true``, ``OTEL_TRACES_EXPORTER=none``, or the ``otel``
extra not installed), the core holds ``None`` and every hook is one attribute test.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("modelgate.tracing")

# catalogue provider types -> gen_ai.provider.name (the conventions' well-known values)
PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "bedrock-anthropic": "aws.bedrock",
    "azure": "azure.ai.openai",
}
OPERATIONS = {"embeddings": "embeddings"}  # every other door is a chat


def tracing_wanted(env: Mapping[str, str]) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").lower()
    if exporter == "none":
        return False
    return bool(
        exporter == "otlp"
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def build_tracer(
    provider_types: Mapping[str, str], *, content: bool = False, env: Mapping[str, str] | None = None
) -> RequestTracer | None:
    """The app's tracer from the ``OTEL_*`` environment, or None (tracing off)."""
    env = os.environ if env is None else env
    if not tracing_wanted(env):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "OTEL_* asks for traces but the otel extra is not installed (pip install modelgate[otel])"
        )
        return None
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "modelgate")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return RequestTracer(provider, provider_types, content=content)


class RequestTracer:
    """Starts one ``RequestTrace`` per request on its own tracer provider."""

    def __init__(self, provider: Any, provider_types: Mapping[str, str], *, content: bool = False) -> None:
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._provider = provider
        self._tracer = provider.get_tracer("modelgate")
        self._propagator = TraceContextTextMapPropagator()
        self._server = SpanKind.SERVER
        self._client = SpanKind.CLIENT
        self.provider_types = dict(provider_types)
        self.content = content

    def start(
        self,
        *,
        door: str,
        model: str,
        inference_id: str,
        traceparent: str | None,
        max_tokens: int | None = None,
        body: bytes | None = None,
    ) -> RequestTrace:
        parent = None
        if traceparent is not None:
            parent = self._propagator.extract({"traceparent": traceparent})
        operation = OPERATIONS.get(door, "chat")
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": model,
            "modelgate.door": door,
            "modelgate.inference_id": inference_id,
        }
        if max_tokens is not None:
            attrs["gen_ai.request.max_tokens"] = max_tokens
        if self.content and body is not None:
            attrs["gen_ai.input.messages"] = _turns(body)
        span = self._tracer.start_span(
            f"{operation} {model}", context=parent, kind=self._server, attributes=attrs
        )
        return RequestTrace(self, span)

    def force_flush(self) -> None:
        self._provider.force_flush()

    def shutdown(self) -> None:
        self._provider.shutdown()


class RequestTrace:
    """One request's span and its children. Every method is cheap and never raises into the core."""

    __slots__ = ("_attempt", "_ctx", "_tracer", "span")

    def __init__(self, tracer: RequestTracer, span: Any) -> None:
        from opentelemetry.trace import set_span_in_context

        self._tracer = tracer
        self.span = span
        self._ctx = set_span_in_context(span)
        self._attempt: Any = None

    @staticmethod
    def now() -> int:
        return time.time_ns()

    def step(self, name: str, start_ns: int, **attrs: Any) -> None:
        """A finished child span from ``start_ns`` to now (admission, hold)."""
        child = self._tracer._tracer.start_span(
            name, context=self._ctx, start_time=start_ns, attributes=attrs
        )
        child.end()

    def traceparent(self) -> str:
        """The current attempt's (else the request's) context as a W3C ``traceparent``, for an
        upstream the operator trusts with it."""
        from opentelemetry.trace import set_span_in_context

        carrier: dict[str, str] = {}
        ctx = set_span_in_context(self._attempt) if self._attempt is not None else self._ctx
        self._tracer._propagator.inject(carrier, context=ctx)
        return carrier.get("traceparent", "")

    def attempt_begin(self, provider: str, upstream_model: str, number: int) -> None:
        """An upstream try starts; one still open (a stream's failed try) ends as failed."""
        self.attempt_end("retried")
        t = self._tracer
        self._attempt = t._tracer.start_span(
            f"modelgate.attempt {provider}",
            context=self._ctx,
            kind=t._client,
            attributes={
                "modelgate.route": provider,
                "gen_ai.provider.name": t.provider_types.get(provider, provider),
                "gen_ai.request.model": upstream_model,
                "modelgate.attempt": number,
            },
        )

    def attempt_end(self, error: BaseException | str | None = None) -> None:
        span, self._attempt = self._attempt, None
        if span is None:
            return
        if error is not None:
            _error(span, error)
        span.end()

    def settle(self, credits: int) -> Any:
        """The settle's span (ended by the caller when the charge commits)."""
        return self._tracer._tracer.start_span(
            "modelgate.settle", context=self._ctx, attributes={"modelgate.cost.credits": credits}
        )

    def finish(
        self,
        *,
        model: str,
        provider: str | None,
        input_tokens: int,
        output_tokens: int,
        credits: int,
        finish: str | None,
        cache: str | None,
        status: int,
        error: str | None,
    ) -> None:
        self.attempt_end(error)
        span = self.span
        attrs: dict[str, Any] = {
            "gen_ai.response.model": model,
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "modelgate.cost.credits": credits,
            "http.response.status_code": status,
        }
        if provider is not None:
            attrs["modelgate.route"] = provider
            attrs["gen_ai.provider.name"] = self._tracer.provider_types.get(provider, provider)
        if finish:
            attrs["gen_ai.response.finish_reasons"] = (finish,)
        if cache:
            attrs["modelgate.cache"] = cache
        span.set_attributes(attrs)
        if error is not None:
            _error(span, error, status)
        span.end()


def start_trace(tracer: RequestTracer, req: Any, caller: Any) -> RequestTrace:
    """A request's trace, from the core's ``MeteredRequest`` and ``Caller``."""
    return tracer.start(
        door=caller.door,
        model=req.model,
        inference_id=caller.inference_id,
        traceparent=caller.traceparent,
        max_tokens=req.max_tokens,
        body=req.cache.body if tracer.content and req.cache is not None else None,
    )


async def traced(
    trace: RequestTrace, route: Any, number: int, call: Awaitable[T], forward: dict[str, str] | None = None
) -> T:
    """An upstream try of a whole answer, in its own span; ``forward``: the attempt's upstream
    headers, given the trace context (the attempt's span as parent) when the operator forwards it."""
    trace.attempt_begin(route.provider, route.model, number)
    if forward is not None:
        forward["traceparent"] = trace.traceparent()
    try:
        result = await call
    except BaseException as exc:
        trace.attempt_end(exc)
        raise
    trace.attempt_end()
    return result


def _error(span: Any, error: BaseException | str, status: int | None = None) -> None:
    from opentelemetry.trace import Status, StatusCode

    kind = type(error).__name__ if isinstance(error, BaseException) else (str(status or "") or "error")
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, str(error)[:200]))


def _turns(body: bytes) -> str:
    """The request's turns as JSON text (``messages`` or ``input``), for operators who opt in."""
    import orjson

    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(data, dict):
        return ""
    turns = data.get("messages", data.get("input"))
    return orjson.dumps(turns).decode() if turns is not None else ""
