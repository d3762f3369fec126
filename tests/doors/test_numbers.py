"""Issue 18 (lax coercion): every dialect's request coerced ``true`` and numeric strings into numbers
(``"max_tokens": true`` -> 1, ``"temperature": "0.5"`` -> 0.5). A number field now takes a JSON
number only: 400 naming the field, at the door, on every dialect."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelgate.doors.embeddings.wire import EmbeddingRequest
from modelgate.doors.messages.wire import MessagesRequest
from modelgate.doors.responses.wire import ResponsesRequest
from modelgate.errors import InvalidRequestError
from modelgate.httpkit.errors import validate_body
from modelgate.wire.chat import ChatRequest

CHAT = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
MESSAGES = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
RESPONSES = {"model": "m", "input": "x"}
EMBEDDINGS = {"model": "m", "input": "x"}

CASES: list[tuple[type[Any], dict[str, Any], str, Any]] = [
    (ChatRequest, CHAT, "max_tokens", True),
    (ChatRequest, CHAT, "max_tokens", "5"),
    (ChatRequest, CHAT, "max_completion_tokens", True),
    (ChatRequest, CHAT, "n", "2"),
    (ChatRequest, CHAT, "temperature", "0.5"),
    (ChatRequest, CHAT, "temperature", True),
    (ChatRequest, CHAT, "top_p", True),
    (ChatRequest, CHAT, "seed", "5"),
    (ChatRequest, CHAT, "presence_penalty", False),
    (MessagesRequest, MESSAGES, "max_tokens", True),
    (MessagesRequest, MESSAGES, "max_tokens", "5"),
    (MessagesRequest, MESSAGES, "temperature", "0.5"),
    (MessagesRequest, MESSAGES, "top_k", True),
    (MessagesRequest, MESSAGES, "top_p", False),
    (ResponsesRequest, RESPONSES, "max_output_tokens", True),
    (ResponsesRequest, RESPONSES, "max_output_tokens", "5"),
    (ResponsesRequest, RESPONSES, "temperature", "0.5"),
    (ResponsesRequest, RESPONSES, "top_logprobs", True),
    (ResponsesRequest, RESPONSES, "max_tool_calls", True),
    (EmbeddingRequest, EMBEDDINGS, "dimensions", True),
    (EmbeddingRequest, EMBEDDINGS, "dimensions", "5"),
]


@pytest.mark.parametrize(
    ("model", "base", "field", "value"), CASES, ids=[f"{m.__name__}-{f}-{v!r}" for m, _, f, v in CASES]
)
def test_a_boolean_or_a_string_is_not_a_number(
    model: type[Any], base: dict[str, Any], field: str, value: Any
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        validate_body(orjson.dumps({**base, field: value}), model)
    assert info.value.status_code == 400 and field in info.value.message, info.value.message


def test_numbers_still_pass_and_an_integral_float_is_an_integer() -> None:
    chat = validate_body(orjson.dumps({**CHAT, "max_tokens": 5.0, "temperature": 1, "seed": 7}), ChatRequest)
    assert chat.max_tokens == 5 and chat.temperature == 1.0 and chat.seed == 7
    msg = validate_body(
        orjson.dumps({**MESSAGES, "max_tokens": 8, "top_k": 3, "top_p": 0.5}), MessagesRequest
    )
    assert msg.max_tokens == 8 and msg.top_k == 3
    with pytest.raises(InvalidRequestError, match="max_output_tokens"):
        validate_body(orjson.dumps({**RESPONSES, "max_output_tokens": 1.5}), ResponsesRequest)
