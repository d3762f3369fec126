"""The Messages door's own reading of a request (doors/messages/body.py): the same answers as the
pydantic validation of the whole document it replaces (``validate_body(raw, MessagesRequest)`` and
the media check), for what it accepts and for every 400 (message and field); and an invocation that
lets the request go once its stream is committed to a route."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from modelgate.catalog.models import ModelSpec
from modelgate.doors.messages.body import Count, Messages, Prompt, read_count, read_messages
from modelgate.doors.messages.door import MessagesInvocation
from modelgate.doors.messages.estimate import estimate_input_tokens, prompt_bound
from modelgate.doors.messages.wire import CountTokensRequest, MessagesRequest
from modelgate.errors import InvalidRequestError
from modelgate.gateway.metered import Attempt
from modelgate.httpkit.errors import validate_body
from modelgate.providers.base import Chunk, RawEvent
from modelgate.wire.media import check_messages_media
from tests.fakes.calls import builtin_model

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
BASE: dict[str, Any] = {
    "model": "claude-test",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "tools": [{"name": "read", "description": "Read a file", "input_schema": {"type": "object"}}],
    "messages": [
        {"role": "user", "content": "Read a.py"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "a.py"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "print(1)"},
                {"type": "text", "text": "Explain it.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            ],
        },
    ],
}


def _with(**changes: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        if value is _DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def _turn(content: Any, role: Any = "user") -> dict[str, Any]:
    return _with(messages=[{"role": role, "content": content}])


_DROP = object()
IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
BAD_IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "%%%"}}
BAD_PDF = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "@"}}

ACCEPTED: list[Any] = [
    BASE,
    _with(stream=True, temperature=0.5, top_p=1, top_k=3, stop_sequences=["\n\nHuman:"]),
    _with(max_tokens=5.0),  # an integral float is the integer (pydantic's rule)
    _with(future_field={"x": [1, 2, {"y": None}]}, context_management={"edits": []}),
    _with(cache_control={"type": "ephemeral"}),  # automatic caching
    _with(system="plain", tools=None),
    _with(system=None, tools=[]),
    _with(messages=[]),
    _with(tool_choice={"type": "tool", "name": "read"}, thinking={"type": "enabled", "budget_tokens": 2048}),
    _with(output_config={"effort": "high", "format": {"type": "json_schema", "schema": {"type": "object"}}}),
    _with(metadata={"user_id": "u1", "other": 1}),
    _turn([IMAGE, {"type": "text", "text": "what is it?"}]),
    _turn([{"type": "tool_result", "tool_use_id": "t", "content": [IMAGE, {"type": "text", "text": "x"}]}]),
    _turn([{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}}]),
    _turn([{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {"q": "x"}}], "assistant"),
    _turn([{"type": "text", "text": "mid"}], "system"),
    _turn("plain", "assistant"),
    _with(big=2**64 - 1, small=-(2**63)),  # the 64-bit range's ends
    _with(note="a string of digits 12345678901234567890123 is not a number"),
]
REFUSED: list[Any] = [
    _with(messages=_DROP),
    _with(messages=None),
    _with(messages={"role": "user"}),
    _with(messages=["hello"]),
    _turn("hi", role="robot"),
    _turn("hi", role=None),
    _turn("hi", role=["user"]),
    _with(messages=[{"content": "hi"}]),
    _with(messages=[{"role": "user"}]),
    _turn(5),
    _turn(None),
    _turn({"type": "text", "text": "hi"}),
    _turn(["hi"]),
    _turn([{"text": "hi"}]),
    _turn([{"type": 3, "text": "hi"}]),
    _with(system=5),
    _with(system=["text"]),
    _with(system={"type": "text", "text": "x"}),
    _with(tools={"name": "x"}),
    _with(tools=["x"]),
    _with(max_tokens=_DROP),
    _with(max_tokens=True),
    _with(max_tokens="5"),
    _with(max_tokens=0),
    _with(max_tokens=5.5),
    _with(max_tokens=2**31),
    _with(model=""),
    _with(model="m" * 257),
    _with(model=5),
    _with(stream="yes"),
    _with(temperature=2),
    _with(temperature="0.5"),
    _with(stop_sequences="stop"),
    _with(tool_choice={"type": "tool"}),
    _with(tool_choice={"type": "sometimes"}),
    _with(thinking={"type": "enabled", "budget_tokens": 10}),
    _with(output_config={"format": {"schema": {}}}),
    _with(output_config={"format": {"type": "json_schema"}}),
    _with(metadata={"user_id": "u" * 257}),
    _turn([BAD_IMAGE]),
    _turn([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "x"}, BAD_PDF]}]),
    _turn([BAD_PDF]),
    _with(big=2**64),  # beyond 64 bits: refused by the guard
    _with(tools=[{"name": "x", "input_schema": {"maximum": -(2**63) - 1}}]),
    # several faults: the first the whole validation names (not the first this reading meets)
    _with(messages=[{"role": "user", "content": [BAD_IMAGE]}, {"role": "robot", "content": "x"}]),
]
RAW_REFUSED = [b"", b"  ", b"[]", b'"text"', b"{", b'{"model": "x",}', b"\xff\xfe", b'{"a": NaN}']


def _old(raw: bytes) -> MessagesRequest:
    """What the door did before: pydantic over the whole document, then the media check."""
    req = validate_body(raw, MessagesRequest)
    check_messages_media([{"content": m.content} for m in req.messages])
    return req


def _same(raw: bytes) -> None:
    try:
        expected = _old(raw)
    except InvalidRequestError as exc:
        with pytest.raises(InvalidRequestError) as got:
            read_messages(raw)
        assert (got.value.message, got.value.param, got.value.code) == (exc.message, exc.param, exc.code)
        return
    got_req = read_messages(raw)
    want = Messages.of(expected)
    assert got_req.head.model_dump() == MessagesRequest.model_validate_json(raw).model_dump(
        exclude={"messages", "system", "tools"}
    )
    assert got_req.head.model_extra == expected.model_extra
    assert got_req.prompt == want.prompt and got_req.vision == want.vision
    assert prompt_bound(got_req.prompt) == prompt_bound(expected)


@pytest.mark.parametrize("body", ACCEPTED)
def test_what_the_whole_validation_accepts_is_read_the_same(body: Any) -> None:
    raw = orjson.dumps(body) if "big" not in body else json.dumps(body).encode()
    _old(raw)  # the premise
    _same(raw)


@pytest.mark.parametrize("body", REFUSED)
def test_every_refusal_is_the_same_400(body: Any) -> None:
    raw = json.dumps(body).encode()
    with pytest.raises(InvalidRequestError):
        _old(raw)  # the premise
    _same(raw)


@pytest.mark.parametrize("raw", RAW_REFUSED)
def test_a_body_that_is_not_a_json_object_is_the_same_400(raw: bytes) -> None:
    _same(raw)


def test_a_lone_surrogate_orjson_refuses_is_judged_by_the_whole_validation() -> None:
    _same(b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "\\ud800"}]}')


@pytest.mark.parametrize("raw", [json.dumps(b).encode() for b in ACCEPTED + REFUSED] + RAW_REFUSED)
def test_count_tokens_reads_a_request_as_the_whole_validation_does(raw: bytes) -> None:
    """``count_tokens`` (an agent counts the history it sends): its own fields, no media check."""
    try:
        expected = validate_body(raw, CountTokensRequest)
    except InvalidRequestError as exc:
        with pytest.raises(InvalidRequestError) as got:
            read_count(raw)
        assert (got.value.message, got.value.param) == (exc.message, exc.param)
        return
    got_req = read_count(raw)
    assert got_req.head.model_dump() == CountTokensRequest.model_validate_json(raw).model_dump(
        exclude={"messages", "system", "tools"}
    )
    assert got_req.prompt == Count.of(expected).prompt
    assert estimate_input_tokens(got_req.prompt) == estimate_input_tokens(expected)


def test_the_prompt_is_the_parsed_lists_themselves() -> None:
    """No copy of an agent's history: the blocks read are those orjson built (a pass-through never
    needs another), and a request the validation reads is converted to the same shape."""
    raw = orjson.dumps(BASE)
    msg = read_messages(raw)
    assert msg.prompt.messages == BASE["messages"] and msg.prompt.tools == BASE["tools"]
    assert isinstance(msg.prompt.messages[0], dict)
    assert Prompt.of(MessagesRequest.model_validate(BASE)) == msg.prompt


# ---- the invocation lets the request go once its stream is committed --------------------------


class _Native:
    """A provider that passes Messages through, three events per stream."""

    name = "native"
    dialects = frozenset({"anthropic-messages"})

    async def passthrough_stream(self, dialect: str, body: bytes, headers: Any) -> AsyncIterator[RawEvent]:
        for _ in range(3):
            yield RawEvent(b"event: ping\ndata: {}\n\n", "ping")


class _Chat:
    """A chat provider (the request is translated), three chunks per stream."""

    name = "chat"
    dialects: frozenset[str] = frozenset()
    forwards_unknown_fields = False
    supports_tools = True

    async def stream(self, call: Any) -> AsyncIterator[Chunk]:
        for _ in range(3):
            yield Chunk(choices=[{"index": 0, "delta": {"content": "x"}}])


def _attempt(model: ModelSpec) -> Attempt:
    route = model.routes[0]
    return Attempt(route=route, model=model, max_tokens=100, inference_id="t", on_usage=lambda u: None)


@pytest.mark.parametrize("provider", [_Native(), _Chat()], ids=["pass-through", "translation"])
async def test_a_stream_lets_the_request_go_once_committed(provider: Any) -> None:
    """Before its first event a stream may still fail over to another route (the request is kept);
    once the core asked for the next event, no other attempt follows, and a stream of minutes must
    not keep an agent's request of hundreds of kilobytes alive (memory, and objects every full
    collection walks)."""
    raw = orjson.dumps(BASE)
    inv = MessagesInvocation(read_messages(raw), raw, {})
    events = inv.stream(provider, _attempt(builtin_model("anthropic/claude-sonnet-5.5")))
    await anext(events)
    assert inv.req is not None and inv.raw == raw
    await anext(events)
    assert inv.req is None and inv.raw == b""
    rest = [e async for e in events]
    assert len(rest) == 1
