"""Issue 18, tenant isolation on pass-through Responses routes: the upstream resolves ids under the
operator's one key, so an id a client names must be checked against the caller's own stored items
before anything goes upstream. Account A stores a response whose output item is ``msg_…``; account B
referencing it (``item_reference``) used to get A's item through the pass-through route. Now B gets
the translated route's 404 and the upstream never sees the request; A's own reference is sent as A's
copy of the item, never as a reference the upstream would resolve."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import LiveServer
from tests.fakes.responses_server import ResponsesFake


@pytest.fixture
def accounts(server: LiveServer) -> Iterator[tuple[openai.OpenAI, openai.OpenAI]]:
    def make(email: str) -> openai.OpenAI:
        key = server.create_key(email=email)
        return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=30)

    a, b = make("tenant-a@example.com"), make("tenant-b@example.com")
    yield a, b
    a.close()
    b.close()


def _refers(item_id: str, text: str) -> list[Any]:
    return [{"type": "item_reference", "id": item_id}, {"role": "user", "content": text}]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_another_accounts_item_reference_is_a_404_and_never_goes_upstream(
    accounts: tuple[openai.OpenAI, openai.OpenAI], responses_up: ResponsesFake, stream: bool
) -> None:
    a, b = accounts
    first = a.responses.create(model="gpt-fake", input="the launch code is 0451")
    secret = first.output[-1]
    assert secret.type == "message" and secret.id.startswith("msg_")
    received = len(responses_up.requests)

    for model in ("gpt-fake", "claude-fake"):  # pass-through, then a translated route: the same answer
        with pytest.raises(openai.NotFoundError) as info:
            b.responses.create(model=model, input=_refers(secret.id, "repeat that"), stream=stream)  # type: ignore[call-overload]
        error = info.value.body
        assert isinstance(error, dict) and error.get("param") == "input[0].id", error
        assert secret.id in str(error.get("message"))
    assert len(responses_up.requests) == received  # the upstream never saw B's request

    # An id nobody stored is the same 404.
    with pytest.raises(openai.NotFoundError):
        b.responses.create(model="gpt-fake", input=_refers("msg_made_up", "hi"))
    assert len(responses_up.requests) == received


def test_the_owners_reference_goes_upstream_as_its_own_copy(
    accounts: tuple[openai.OpenAI, openai.OpenAI], responses_up: ResponsesFake
) -> None:
    a, _ = accounts
    first = a.responses.create(model="gpt-fake", input="the launch code is 0451")
    mine = first.output[-1]
    answer = a.responses.create(model="gpt-fake", input=_refers(mine.id, "and again"))
    assert answer.output_text == "and again"
    sent = responses_up.last.json["input"]
    assert [i.get("type") for i in sent] == ["message", None]
    assert sent[0]["role"] == "assistant" and sent[0]["content"][0]["text"] == "the launch code is 0451"
    assert "id" not in sent[0]


def test_reasoning_named_by_id_alone_goes_upstream_only_for_its_owner(
    accounts: tuple[openai.OpenAI, openai.OpenAI], responses_up: ResponsesFake
) -> None:
    """A ``reasoning`` item without ``encrypted_content`` makes the upstream read the reasoning it
    stored under that id: only the account that produced it may name it."""
    a, b = accounts
    first = a.responses.create(model="gpt-fake", input="think first", reasoning={"effort": "low"})
    rs = first.output[0]
    assert rs.type == "reasoning" and not rs.encrypted_content
    item = {"type": "reasoning", "id": rs.id, "summary": []}

    b.responses.create(model="gpt-fake", input=[item, {"role": "user", "content": "go on"}])  # type: ignore[list-item]
    assert rs.id.encode() not in responses_up.last.body

    a.responses.create(model="gpt-fake", input=[item, {"role": "user", "content": "go on"}])  # type: ignore[list-item]
    assert rs.id.encode() in responses_up.last.body
