"""Every documented bound and enum of the chat request answers 400 naming the field."""

from __future__ import annotations

import pytest

from modelgate.doors.chat.door import parse_chat_request
from modelgate.errors import InvalidRequestError

USER = [{"role": "user", "content": "hi"}]


def body(**kw):
    import orjson

    return orjson.dumps({"model": "echo", "messages": USER, **kw})


CASES = [
    ({"model": None}, "model"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0]"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "assistant"}]}, "messages[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]}, "messages[0].content"),
    (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "x", "detail": "max"}}],
                }
            ]
        },
        "messages[0].content[0].image_url.detail",
    ),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 1.5}, "max_tokens"),
    ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ({"temperature": 2.5}, "temperature"),
    ({"temperature": -0.1}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"top_p": 1.1}, "top_p"),
    ({"n": 0}, "n"),
    ({"frequency_penalty": 3}, "frequency_penalty"),
    ({"presence_penalty": -2.5}, "presence_penalty"),
    ({"seed": 0}, "seed"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"stop": 5}, "stop"),
    ({"stream": "yes"}, "stream"),
    ({"stream_options": {"include_usage": True}}, "stream_options"),
    ({"response_format": {"type": "xml"}}, "response_format"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "bad name!"}}},
        "response_format.json_schema.name",
    ),
    ({"tools": [{"type": "retrieval"}]}, "tools[0].type"),
    ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools[0].function.name"),
    ({"tool_choice": "sometimes"}, "tool_choice"),
    ({"tool_choice": "required"}, "tool_choice"),
    (
        {
            "tool_choice": {"type": "function", "function": {"name": "nope"}},
            "tools": [{"type": "function", "function": {"name": "yes", "parameters": {}}}],
        },
        "tool_choice",
    ),
    ({"parallel_tool_calls": "maybe"}, "parallel_tool_calls"),
    ({"prediction": {"type": "diff", "content": "x"}}, "prediction.type"),
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"provider": 5}, "provider"),
]


@pytest.mark.parametrize(("extra", "field"), CASES, ids=[c[1] + str(i) for i, c in enumerate(CASES)])
def test_invalid_field_is_named(extra, field):
    with pytest.raises(InvalidRequestError) as exc:
        parse_chat_request(body(**extra))
    assert exc.value.status_code == 400
    assert exc.value.message.startswith("Body validation error")
    assert field in exc.value.message, exc.value.message


def test_not_json_and_not_object():
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        parse_chat_request(b"{oops")
    with pytest.raises(InvalidRequestError, match="JSON object"):
        parse_chat_request(b"[1, 2]")
    with pytest.raises(InvalidRequestError, match="empty"):
        parse_chat_request(b"  ")


def test_full_valid_request_is_accepted():
    req = parse_chat_request(
        body(
            messages=[
                {"role": "system", "content": [{"type": "text", "text": "be brief"}], "name": "sys"},
                {"role": "developer", "content": "dev note"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "content": "42", "tool_call_id": "c1"},
            ],
            max_tokens=100,
            max_completion_tokens=200,
            stream=True,
            stream_options={"include_usage": True},
            n=2,
            temperature=0.5,
            top_p=0.9,
            stop=["\n\n"],
            frequency_penalty=0.1,
            presence_penalty=-0.1,
            seed=7,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
            },
            tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            tool_choice={"type": "function", "function": {"name": "f"}},
            parallel_tool_calls=False,
            prediction={"type": "content", "content": "draft"},
            provider="Auto",
            logprobs=True,
            top_logprobs=2,
            reasoning_effort="high",
            user="u-1",
            some_vendor_extra={"ignored": True},
        )
    )
    assert req.output_limit == 200  # max_completion_tokens wins
    assert req.include_usage and req.stop_list == ["\n\n"]


def test_max_tokens_number_form_accepted():
    # The spec types max_tokens as a number; integral floats are accepted.
    assert parse_chat_request(body(max_tokens=64.0)).max_tokens == 64


def test_defaults():
    req = parse_chat_request(body())
    assert req.output_limit is None and req.stream is False and req.stop_list == []
