"""Anthropic and Bedrock (Converse) give one answer and no token probabilities: ``n`` above 1 and
``logprobs`` are refused with a 400 naming the field, before any call (providers/convert.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from modelgate.errors import InvalidRequestError
from modelgate.providers import anthropic_convert, bedrock_convert
from modelgate.providers.base import ProviderCall
from tests.fakes.calls import build_call

BUILDERS: list[Callable[[ProviderCall], dict[str, Any]]] = [
    anthropic_convert.build_request,
    bedrock_convert.build_request,
]
HELLO = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize(
    ("extra", "param", "text"),
    [
        ({"n": 2}, "n", "n: only 1 choice is supported by this model"),
        ({"logprobs": True}, "logprobs", "logprobs: not supported by this model"),
    ],
)
def test_refused_with_the_field_named(
    build: Callable[[ProviderCall], dict[str, Any]], extra: dict[str, Any], param: str, text: str
) -> None:
    call = build_call("anthropic/claude-sonnet-4.5", {"messages": HELLO, "max_tokens": 16, **extra})
    with pytest.raises(InvalidRequestError) as caught:
        build(call)
    assert caught.value.param == param and str(caught.value) == text


@pytest.mark.parametrize("build", BUILDERS)
def test_one_choice_without_logprobs_passes(build: Callable[[ProviderCall], dict[str, Any]]) -> None:
    call = build_call("anthropic/claude-sonnet-4.5", {"messages": HELLO, "max_tokens": 16, "n": 1})
    assert build(call)["messages"]
