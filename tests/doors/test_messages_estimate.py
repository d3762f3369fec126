"""One estimator for a Messages prompt: the hold's upper bound and the count_tokens estimate come
from the same walk over the blocks, with the same allowances."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from modelgate.doors.estimate import PER_IMAGE
from modelgate.doors.messages.estimate import estimate_input_tokens, prompt_upper_bound
from modelgate.doors.messages.wire import CountTokensRequest, MessagesRequest

PNG = base64.b64encode(b"\x89PNG" + b"\0" * 64).decode()
PDF = base64.b64encode(b"%PDF-1.4" + b"\0" * 3000).decode()

CONTENTS: list[Any] = [
    "hello " * 50,
    [{"type": "text", "text": "héllo wörld " * 20}],
    [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}],
    [{"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}],
    [{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "abc " * 99}}],
    [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "42 " * 30}]}],
    [
        {
            "type": "search_result",
            "source": "https://x",
            "title": "t",
            "content": [{"type": "text", "text": "s"}],
        }
    ],
]


def _both(content: Any) -> tuple[int, int]:
    body = {"model": "m", "messages": [{"role": "user", "content": content}]}
    bound = prompt_upper_bound(MessagesRequest.model_validate({**body, "max_tokens": 8}))
    return bound, estimate_input_tokens(CountTokensRequest.model_validate(body))


@pytest.mark.parametrize("content", CONTENTS)
def test_the_hold_bound_is_never_below_the_count_estimate(content: Any) -> None:
    bound, estimate = _both(content)
    assert bound >= estimate > 0


def test_one_image_allowance() -> None:
    image = CONTENTS[2]
    (bound1, est1), (bound2, est2) = _both(image), _both(image + image)
    assert bound2 - bound1 == est2 - est1 == PER_IMAGE
