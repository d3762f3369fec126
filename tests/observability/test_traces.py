"""Request traces in the OpenTelemetry GenAI conventions, exported by OTLP/HTTP (configured by the
standard OTEL_* variables) to a real receiver that decodes the protobuf: a chat, a Messages and a
Responses request each leave one span with the conventions' attributes, under the client's
traceparent, with children for admission, hold, each upstream attempt and settle."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.cache.conftest import CACHE_CONFIG, wait_for_entries
from tests.conftest import LiveServer
from tests.fakes.anthropic_server import AnthropicFake
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.fakes.otlp_receiver import OTLPReceiver, ReceivedSpan

SERVER, CLIENT = 2, 3  # OTLP SpanKind


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OTLPReceiver]:
    r = OTLPReceiver().start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", r.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "modelgate-test")
    yield r
    r.stop()


@pytest.fixture
def traced_server(
    receiver: OTLPReceiver, make_live_server: Any, openai_upstream: FakeOpenAI, anthropic_up: AnthropicFake
) -> LiveServer:
    config = CACHE_CONFIG.format(base_url=openai_upstream.base_url, anthropic_url=anthropic_up.base_url)
    # the operator forwards the trace context to mock2 only
    config = config.replace("  mock2:\n", "  mock2:\n    forward_traceparent: true\n", 1)
    server: LiveServer = make_live_server(config)
    return server


def traceparent() -> tuple[str, str, str]:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent}-01", trace_id, parent


def request_spans(receiver: OTLPReceiver, trace_id: str) -> tuple[ReceivedSpan, list[ReceivedSpan]]:
    """The request's span and its children, once the settle's span has arrived."""
    spans = receiver.wait_for(
        lambda got: (
            any(s.trace_id == trace_id and s.name == "modelgate.settle" for s in got)
            and any(s.trace_id == trace_id and s.kind == SERVER for s in got)
        )
    )
    mine = [s for s in spans if s.trace_id == trace_id]
    root = next(s for s in mine if s.kind == SERVER)
    return root, [s for s in mine if s.parent_span_id == root.span_id]


def check(root: ReceivedSpan, children: list[ReceivedSpan], parent: str, door: str) -> None:
    assert root.parent_span_id == parent and root.service == "modelgate-test"
    a = root.attributes
    assert root.name == "chat echo"
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "echo"
    assert a["gen_ai.response.model"] == "mock/echo" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["modelgate.door"] == door and a["modelgate.route"] == "mock"
    assert a["modelgate.cost.credits"] > 0 and len(a["modelgate.inference_id"]) > 8
    names = sorted(s.name for s in children)
    assert names == ["modelgate.admission", "modelgate.attempt mock", "modelgate.hold", "modelgate.settle"]
    attempt = next(s for s in children if s.name.startswith("modelgate.attempt"))
    assert attempt.kind == CLIENT and attempt.attributes["gen_ai.request.model"] == "mock-model"
    assert not any(k.startswith("gen_ai.input") for k in a)  # prompts are not recorded by default


def test_chat_messages_and_responses_spans(traced_server: LiveServer, receiver: OTLPReceiver) -> None:
    key = traced_server.create_key()
    oai = openai.OpenAI(base_url=traced_server.url + "/v1", api_key=key, max_retries=0)
    header, trace_id, parent = traceparent()
    oai.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "a b c"}], extra_headers={"traceparent": header}
    )
    check(*request_spans(receiver, trace_id), parent, "chat")

    header, trace_id, parent = traceparent()
    claude = anthropic.Anthropic(base_url=traced_server.url, api_key=key, max_retries=0)
    claude.messages.create(
        model="echo",
        max_tokens=64,
        messages=[{"role": "user", "content": "d e"}],
        extra_headers={"traceparent": header},
    )
    root, children = request_spans(receiver, trace_id)
    check(root, children, parent, "messages")
    assert root.attributes["gen_ai.request.max_tokens"] == 64

    header, trace_id, parent = traceparent()
    with oai.responses.stream(model="echo", input="f g", extra_headers={"traceparent": header}) as s:
        list(s)
    check(*request_spans(receiver, trace_id), parent, "responses")
    assert receiver.content_types == {"application/x-protobuf"}


def test_fallback_attempts_and_errors_are_visible(
    traced_server: LiveServer, receiver: OTLPReceiver, openai_upstream: FakeOpenAI
) -> None:
    key = traced_server.create_key()
    oai = openai.OpenAI(base_url=traced_server.url + "/v1", api_key=key, max_retries=0)
    openai_upstream.script(Scripted(status=503, body={"error": {"message": "busy"}}))
    header, trace_id, _ = traceparent()
    before = len(openai_upstream.requests)
    oai.chat.completions.create(
        model="mock/chain", messages=[{"role": "user", "content": "x"}], extra_headers={"traceparent": header}
    )
    root, children = request_spans(receiver, trace_id)
    attempts = sorted((s for s in children if s.name.startswith("modelgate.attempt")), key=lambda s: s.name)
    assert [s.name for s in attempts] == ["modelgate.attempt mock", "modelgate.attempt mock2"]
    assert attempts[0].status_code == 2 and "error.type" in attempts[0].attributes  # STATUS_CODE_ERROR
    assert attempts[1].status_code != 2 and root.attributes["modelgate.route"] == "mock2"
    # mock (not trusted with it) saw no trace context; mock2 got the second attempt's
    first, second = openai_upstream.requests[before:]
    assert "traceparent" not in {h.lower() for h in first.headers}
    sent = {k.lower(): v for k, v in second.headers.items()}["traceparent"]
    assert sent == f"00-{trace_id}-{attempts[1].span_id}-01"
    # a request without a traceparent starts a trace of its own; a refused one is an error span
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="no/such-model", messages=[{"role": "user", "content": "x"}])
    spans = receiver.wait_for(
        lambda got: any(s.attributes.get("gen_ai.request.model") == "no/such-model" for s in got)
    )
    refused = next(s for s in spans if s.attributes.get("gen_ai.request.model") == "no/such-model")
    assert refused.parent_span_id == "" and refused.status_code == 2


def test_cache_outcome_on_the_span(traced_server: LiveServer, receiver: OTLPReceiver) -> None:
    key = traced_server.create_key()
    oai = openai.OpenAI(base_url=traced_server.url + "/v1", api_key=key, max_retries=0)
    ids = []
    for n in range(2):
        header, trace_id, _ = traceparent()
        ids.append(trace_id)
        oai.chat.completions.create(
            model="echo",
            messages=[{"role": "user", "content": "cached"}],
            extra_headers={"traceparent": header, "x-modelgate-cache": "exact"},
        )
        if n == 0:
            wait_for_entries(traced_server, 1)
    miss, _ = request_spans(receiver, ids[0])
    hit, children = request_spans(receiver, ids[1])
    assert (
        miss.attributes["modelgate.cache"] == "miss:exact"
        and hit.attributes["modelgate.cache"] == "hit:exact"
    )
    assert hit.attributes["modelgate.route"] == "cache" and not any(
        s.name.startswith("modelgate.attempt") for s in children
    )
