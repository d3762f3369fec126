"""The embeddings request: every input form OpenAI accepts, clear 400s for everything else."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from modelgate.doors.embeddings.wire import EmbeddingRequest, render_embeddings
from modelgate.errors import InvalidRequestError
from modelgate.httpkit.errors import validate_body


def parse(body: dict) -> EmbeddingRequest:
    return validate_body(orjson.dumps(body), EmbeddingRequest)


@pytest.mark.parametrize(
    ("raw", "inputs", "texts"),
    [
        ("hello", ["hello"], True),
        (["a", "b c"], ["a", "b c"], True),
        ([1, 2, 3], [[1, 2, 3]], False),
        ([[1, 2], [3]], [[1, 2], [3]], False),
    ],
)
def test_every_input_form(raw, inputs, texts):
    req = parse({"model": "m", "input": raw, "encoding_format": "base64", "user": "u-1", "extra": 1})
    assert req.input == inputs and req.texts is texts and req.encoding_format == "base64"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("", "input: must not be an empty string"),
        ([], "input: must not be empty"),
        (["a", ""], "input: [1] must not be an empty string"),
        (["a", 1], "input: [1] is not a string"),
        ([1, "a"], "input: [1] must be a token id"),
        ([1, True], "input: [1] must be a token id"),
        ([1, -1], "input: [1] is not a valid token id"),
        ([[1], []], "input: [1] must not be empty"),
        ([[1], 2], "input: [1] is not an array of token ids"),
        ([1.5], "must be a string, an array of strings"),
        ({"text": "a"}, "must be a string, an array of strings"),
        (None, "must be a string, an array of strings"),
        ([True], "must be a string, an array of strings"),
    ],
)
def test_bad_inputs_are_clear_400s(raw, needle):
    with pytest.raises(InvalidRequestError) as info:
        parse({"model": "m", "input": raw})
    assert needle in info.value.message and info.value.param == "input"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"encoding_format": "int8"}, "encoding_format"),
        ({"dimensions": 0}, "dimensions"),
        ({"model": ""}, "model"),
    ],
)
def test_bad_options(extra, param):
    with pytest.raises(InvalidRequestError) as info:
        parse({"model": "m", "input": "x", **extra})
    assert info.value.param == param
    with pytest.raises(InvalidRequestError, match="input"):
        parse({"model": "m"})


def test_render_float_and_base64():
    vecs = [[0.5, -0.25], [1.0, 0.1]]
    body = orjson.loads(
        render_embeddings(
            vecs, model="m", prompt_tokens=3, encoding="float", meta={"usage": {"credits_used": 1}}
        )
    )
    assert body["data"][1] == {"object": "embedding", "index": 1, "embedding": [1.0, 0.1]}
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3} and body["object"] == "list"
    b64 = orjson.loads(render_embeddings(vecs, model="m", prompt_tokens=3, encoding="base64", meta={}))
    raw = base64.b64decode(b64["data"][1]["embedding"])
    assert struct.unpack("<2f", raw) == struct.unpack("<2f", struct.pack("<2f", 1.0, 0.1))
