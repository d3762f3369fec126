"""The embedded local model provider, against the real SmolLM2-135M GGUF (tiny: a few ms a token).

One provider (one model load) serves the module; answers are kept short. Batching is proven with
the engine's statistics, cancellation with its active-sequence count.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from modelgate.catalog.models import ModelSpec, ProviderConfig
from modelgate.errors import InvalidRequestError, ProviderNotConfiguredError, RateLimitError
from modelgate.providers.base import Chunk, Provider, ProviderCall, ProviderContext, Usage
from modelgate.providers.local import LocalProvider, create
from modelgate.providers.local.text import TextAssembler
from modelgate.wire.chat import ChatRequest

local_model = pytest.mark.local_model

SPEC = ModelSpec.model_validate(
    {
        "id": "local/smollm2",
        "info": {"name": "SmolLM2", "developer": "HF"},
        "pricing": {"input_usd_per_mtok": 0, "output_usd_per_mtok": 0},
        "routes": [{"provider": "local", "model": "smollm2"}],
    }
)
QUESTION = "What is the capital of France?"


def make_call(
    content: Any = QUESTION, *, max_tokens: int = 16, inference_id: str = "", **fields: Any
) -> ProviderCall:
    messages = fields.pop("messages", None) or [{"role": "user", "content": content}]
    request = ChatRequest.model_validate({"model": "local/smollm2", "messages": messages, **fields})
    return ProviderCall(
        request=request,
        upstream_model="smollm2",
        max_tokens=max_tokens,
        model=SPEC,
        inference_id=inference_id,
    )


def _start(options: dict[str, Any]) -> LocalProvider:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("jinja2")
    provider = create("local", ProviderConfig(type="local", options=options), ProviderContext())
    provider.engine.start().result(timeout=120)
    return provider


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProvider]:
    provider = _start({"parallel": 8, "n_ctx": 4096})
    yield provider
    provider.engine.shutdown()


async def until(predicate: Callable[[], bool], *, within: float = 5.0) -> None:
    """Poll state owned by the engine's worker thread (it has no asyncio event to wait on)."""
    deadline = time.monotonic() + within
    while not predicate() and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.002)


async def collect(stream: Any) -> list[Chunk]:
    return [chunk async for chunk in stream]


# -- pure text handling (no model) -----------------------------------------------------------------


def test_text_assembler_joins_utf8_split_across_tokens() -> None:
    data = "é€😀".encode()
    asm = TextAssembler()
    out = [asm.feed(data[i : i + 1])[0] for i in range(len(data))]
    assert "".join(out) + asm.flush() == "é€😀"
    assert all(part in ("", "é", "€", "😀") for part in out)


def test_text_assembler_holds_back_stop_prefix() -> None:
    asm = TextAssembler(("END",))
    assert asm.feed(b"abc E") == ("abc ", False)
    assert asm.feed(b"N") == ("", False)
    assert asm.feed(b"X") == ("ENX", False)
    assert asm.feed(b" more EN") == (" more ", False)
    assert asm.feed(b"D tail") == ("", True)


def test_bad_options_are_a_configuration_error() -> None:
    with pytest.raises(ProviderNotConfiguredError, match="paralel"):
        create("local", ProviderConfig(type="local", options={"paralel": 4}), ProviderContext())


# -- the real model --------------------------------------------------------------------------------


@local_model
async def test_is_a_provider(local: LocalProvider) -> None:
    assert isinstance(local, Provider)
    assert local.supports_tools is False
    assert (local.supports_json_schema, local.supports_streaming) == (True, True)
    assert local.drain_on_disconnect is False


@local_model
async def test_completion_has_exact_usage(local: LocalProvider) -> None:
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from llama_cpp import Llama

    messages = [
        {"role": "system", "content": "You answer in one short sentence."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is the capital "},
                {"type": "text", "text": "of Italy?"},
            ],
        },
    ]
    result = await local.complete(make_call(messages=messages, temperature=0, max_tokens=24))

    vocab = Llama(model_path=str(local.model_path), vocab_only=True, verbose=False)
    template = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True).from_string(
        vocab.metadata["tokenizer.chat_template"]
    )
    plain = [
        {"role": "system", "content": messages[0]["content"]},
        {"role": "user", "content": "What is the capital of Italy?"},
    ]
    prompt = template.render(messages=plain, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    expected_prompt_tokens = len(vocab.tokenize(prompt.encode(), add_bos=False, special=True))

    (choice,) = result.choices
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["refusal"] is None and choice["logprobs"] is None
    assert "Rome" in choice["message"]["content"]
    assert result.usage.prompt_tokens == expected_prompt_tokens
    assert 1 <= result.usage.completion_tokens <= 24
    if choice["finish_reason"] == "stop":  # ended by <|im_end|>, which is counted
        n_text = len(vocab.tokenize(choice["message"]["content"].encode(), add_bos=False, special=False))
        assert abs(result.usage.completion_tokens - (n_text + 1)) <= 2


@local_model
async def test_max_tokens_cuts_with_length(local: LocalProvider) -> None:
    result = await local.complete(make_call("Write a long poem about the sea.", temperature=0, max_tokens=5))
    assert result.choices[0]["finish_reason"] == "length"
    assert result.usage.completion_tokens == 5
    assert result.choices[0]["message"]["content"]


@local_model
async def test_greedy_and_seeded_sampling_are_deterministic(local: LocalProvider) -> None:
    greedy = [await local.complete(make_call(temperature=0, max_tokens=20)) for _ in range(2)]
    assert greedy[0].choices[0]["message"] == greedy[1].choices[0]["message"]

    prompt = "Tell me a story about a cat."
    seeded = [
        await local.complete(make_call(prompt, temperature=1.2, top_p=0.95, top_k=50, seed=7, max_tokens=24))
        for _ in range(2)
    ]
    assert seeded[0].choices[0]["message"]["content"] == seeded[1].choices[0]["message"]["content"]
    others = {
        (await local.complete(make_call(prompt, temperature=1.2, seed=s, max_tokens=24))).choices[0][
            "message"
        ]["content"]
        for s in (1, 2, 3)
    }
    assert len(others) > 1  # the seed does steer the draw


@local_model
async def test_stop_sequence_ends_before_it(local: LocalProvider) -> None:
    full = (await local.complete(make_call(temperature=0, max_tokens=20))).choices[0]["message"]["content"]
    words = full.split()
    assert len(words) >= 3, full
    stop = " " + words[2]
    cut = await local.complete(make_call(temperature=0, max_tokens=20, stop=[stop, "ZZZ"]))
    (choice,) = cut.choices
    assert choice["finish_reason"] == "stop"
    assert stop not in choice["message"]["content"]
    assert choice["message"]["content"] == full[: full.index(stop)]


@local_model
async def test_n_choices(local: LocalProvider) -> None:
    result = await local.complete(make_call(temperature=0.9, seed=5, n=2, max_tokens=8))
    assert [c["index"] for c in result.choices] == [0, 1]
    assert all(c["message"]["content"] for c in result.choices)
    assert result.usage.completion_tokens == 16  # both cut at 8: length
    assert all(c["finish_reason"] == "length" for c in result.choices)


@local_model
async def test_json_object_output_parses(local: LocalProvider) -> None:
    result = await local.complete(
        make_call(
            "Give me a JSON object describing a cat with a name and an age.",
            temperature=0,
            max_tokens=120,
            response_format={"type": "json_object"},
        )
    )
    assert isinstance(json.loads(result.choices[0]["message"]["content"]), dict)


@local_model
async def test_json_schema_output_validates(local: LocalProvider) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 20},
            "population": {"type": "integer"},
            "capital": {"type": "boolean"},
        },
        "required": ["city", "population", "capital"],
        "additionalProperties": False,
    }
    result = await local.complete(
        make_call(
            "Describe Paris as JSON.",
            temperature=0,
            max_tokens=80,
            response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
        )
    )
    data = json.loads(result.choices[0]["message"]["content"])
    jsonschema.validate(data, schema)


@local_model
async def test_stream_matches_completion(local: LocalProvider) -> None:
    chunks = await collect(local.stream(make_call(temperature=0, max_tokens=24)))
    full = await local.complete(make_call(temperature=0, max_tokens=24))

    deltas = [c for chunk in chunks for c in chunk.choices]
    assert deltas[0]["delta"]["role"] == "assistant"
    assert all("role" not in d["delta"] for d in deltas[1:])
    assert len([d for d in deltas if d["delta"].get("content")]) > 3  # token by token, not one lump
    assert [d["finish_reason"] for d in deltas][-1] == full.choices[0]["finish_reason"]
    assert all(d["finish_reason"] is None for d in deltas[:-1])
    assert "".join(d["delta"].get("content", "") for d in deltas) == full.choices[0]["message"]["content"]

    last = chunks[-1]
    assert last.choices == [] and last.usage == full.usage
    assert all(c.usage is None for c in chunks[:-1])


@local_model
async def test_concurrent_requests_share_decode_steps(local: LocalProvider) -> None:
    before = local.engine.stats  # a snapshot, sent by the worker process with each step
    spans: list[tuple[float, float]] = []

    async def one(i: int) -> str:
        start = time.monotonic()
        result = await local.complete(make_call(f"Count from {i} to {i + 20}.", temperature=0, max_tokens=32))
        spans.append((start, time.monotonic()))
        assert result.usage.completion_tokens >= 1
        return str(result.choices[0]["message"]["content"])

    answers = await asyncio.gather(*(one(i) for i in range(4)))
    assert all(answers)
    assert max(s for s, _ in spans) < min(e for _, e in spans)  # all four overlapped in time
    after = local.engine.stats
    # ... and shared llama_decode steps: more tokens sampled than steps taken
    assert after.generated_tokens - before.generated_tokens > after.steps - before.steps
    assert after.max_seqs_in_step >= 2
    # batching does not change a greedy answer
    alone = await local.complete(make_call("Count from 0 to 20.", temperature=0, max_tokens=32))
    assert alone.choices[0]["message"]["content"] == answers[0]


@local_model
async def test_cancelled_stream_frees_its_sequence(local: LocalProvider) -> None:
    reports: list[Usage] = []
    call = make_call("Write a very long story.", temperature=0, max_tokens=400)
    call.on_usage = reports.append
    stream = local.stream(call)
    got = 0
    async for chunk in stream:
        got += len(chunk.choices)
        if got >= 3:
            break
    await stream.aclose()  # what the server does when the client disconnects
    await until(lambda: local.engine.stats.active_seqs == 0)
    assert local.engine.stats.active_seqs == 0
    produced = reports[-1].completion_tokens
    assert 3 <= produced < 400 and reports[-1].prompt_tokens > 0
    await asyncio.sleep(0.05)
    assert reports[-1].completion_tokens == produced  # nothing generated after the slot was freed
    # the freed slot serves the next request normally
    assert (await local.complete(make_call(max_tokens=4, temperature=0))).usage.completion_tokens == 4


@local_model
async def test_unsupported_options_are_rejected(local: LocalProvider) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with pytest.raises(InvalidRequestError, match="tool"):
        await local.complete(make_call(tools=tools, tool_choice="auto"))
    with pytest.raises(InvalidRequestError, match="n"):
        await local.complete(make_call(n=9))


@local_model
async def test_full_queue_answers_429_and_long_prompts_400() -> None:
    small = _start({"parallel": 1, "max_queue": 1, "n_ctx": 512})
    try:
        running = small.stream(make_call("Write a very long story.", temperature=0, max_tokens=300))
        first = await anext(running)
        assert first.choices[0]["delta"]["role"] == "assistant"
        queued = asyncio.create_task(small.complete(make_call(max_tokens=2)))
        await until(lambda: small.engine.waiting == 1)
        with pytest.raises(RateLimitError, match="queue is full") as info:
            await small.complete(make_call(max_tokens=2))
        assert info.value.status_code == 429 and int(info.value.headers["Retry-After"]) >= 1
        await running.aclose()
        assert (await asyncio.wait_for(queued, 10)).usage.completion_tokens == 2

        with pytest.raises(InvalidRequestError, match="context") as too_long:
            await small.complete(make_call("hello " * 600))
        assert too_long.value.code == "context_length_exceeded"
    finally:
        await small.aclose()


@local_model
async def test_missing_model_file_is_not_configured(tmp_path: Any) -> None:
    pytest.importorskip("llama_cpp")
    options = {"model_path": str(tmp_path / "missing.gguf")}
    provider = create("local", ProviderConfig(type="local", options=options), ProviderContext())
    try:
        with pytest.raises(ProviderNotConfiguredError, match=r"no GGUF file"):
            await provider.complete(make_call())
    finally:
        await provider.aclose()


@local_model
async def test_penalties_change_a_greedy_answer(local: LocalProvider) -> None:
    prompt = "List the days of the week, then list them again."
    plain = await local.complete(make_call(prompt, temperature=0, max_tokens=40))
    penalized = await local.complete(
        make_call(prompt, temperature=0, max_tokens=40, frequency_penalty=2.0, presence_penalty=2.0)
    )
    again = await local.complete(
        make_call(prompt, temperature=0, max_tokens=40, frequency_penalty=2.0, presence_penalty=2.0)
    )
    assert penalized.choices[0]["message"]["content"] != plain.choices[0]["message"]["content"]
    assert penalized.choices[0]["message"] == again.choices[0]["message"]


async def test_closed_provider_refuses_calls(tmp_path: Any) -> None:
    options = {"model_path": str(tmp_path / "never-loaded.gguf")}
    provider = create("local", ProviderConfig(type="local", options=options), ProviderContext())
    await provider.aclose()
    with pytest.raises(ProviderNotConfiguredError, match="shut down"):
        await asyncio.wait_for(provider.complete(make_call()), 5)


def test_create_needs_no_model_until_first_use(tmp_path: Any) -> None:
    """The default catalogue always lists the local provider: building it must not load or fail."""
    provider = create("local", ProviderConfig(type="local"), ProviderContext())
    assert provider.engine.stats.steps == 0 and provider.engine.stats.active_seqs == 0
    provider.engine.shutdown()
