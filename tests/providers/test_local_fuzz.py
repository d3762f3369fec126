"""Fuzzing the local model's structured-output path through a real server.

Generated JSON schemas (hypothesis: nested objects, arrays, alternatives, references, enums,
patterns, formats, and repetition counts from small to absurd, the values that once crashed the
process included) go to ``/v1/chat/completions`` as ``response_format``. Every answer must be a
200 or a 400 in the door's envelope, and the worker process must never have died: no schema a
client can send reaches native code in a shape that crashes it. The examples are derandomized (the
same in every run, so CI cannot flake) and few enough to run in well under a minute;
``MODELGATE_FUZZ_EXAMPLES=500`` runs more, ``MODELGATE_FUZZ_RANDOM=1`` new ones each run.
"""

from __future__ import annotations

import os
import string
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from modelgate.providers.local import LocalProvider
from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.local_model

EXAMPLES = int(os.environ.get("MODELGATE_FUZZ_EXAMPLES", "40"))

BIG = st.sampled_from([999, 1000, 1001, 1025, 2000, 2001, 4000, 16000, 22000, 30000, 10**9, 10**30])
COUNTS = st.one_of(  # half of them big: the values that crashed the process come up often
    st.integers(0, 8),
    st.integers(0, 3000),
    BIG,
    BIG,
    BIG,
    st.sampled_from([-1, 1.5, 1e308, "12", True]),
)
PATTERNS = st.one_of(
    st.sampled_from(
        [
            "^[a-z]+$",
            "^\\d{3}-\\d{4}$",
            "^(ab|cd){2,5}x?$",
            "^[A-Z]{2}\\d{2}[A-Z0-9]{4}\\d{7}([A-Z0-9]?){0,16}$",
            "((a{100}){100}){100}",
            "(x{1000}){5}",
            "a{2001}",
            "[",
            "(?P<n>a)",
            "\\p{L}+",
            "a{,5}",
            "^.*$",
        ]
    ),
    st.builds(lambda n, m: f"^[a-z]{{{n},{m}}}$", st.integers(0, 3000), st.integers(0, 3000)),
    st.text(alphabet=string.ascii_letters + string.digits + "()[]{}*+?|.^$\\,-", max_size=30),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=8))
NAMES = st.text(alphabet=string.ascii_letters + "_- ", min_size=1, max_size=8)


def _with(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {**base, **{k: v for k, v in extra.items() if v is not None}}


def _opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


LEAVES = st.one_of(
    st.builds(
        lambda mn, mx: _with({"type": "string"}, {"minLength": mn, "maxLength": mx}), _opt(COUNTS), COUNTS
    ),
    st.builds(lambda pattern: {"type": "string", "pattern": pattern}, PATTERNS),
    st.builds(
        lambda fmt, mx: _with({"type": "string", "format": fmt}, {"maxLength": mx}),
        st.sampled_from(["date", "time", "date-time", "uuid", "email", "no-such-format"]),
        _opt(COUNTS),
    ),
    st.builds(
        lambda kind, lo, hi: _with({"type": kind}, {"minimum": lo, "maximum": hi}),
        st.sampled_from(["integer", "number"]),
        _opt(st.one_of(st.integers(-(10**20), 10**20), st.floats(-1e6, 1e6))),
        _opt(st.one_of(st.integers(-(10**20), 10**20), st.floats(-1e6, 1e6))),
    ),
    st.sampled_from([{"type": "boolean"}, {"type": "null"}, {}, {"type": ["string", "null"]}]),
    st.builds(lambda values: {"enum": values}, st.lists(SCALARS, min_size=1, max_size=300)),
    st.builds(lambda value: {"const": value}, SCALARS),
    st.sampled_from(
        [{"$ref": "#/$defs/thing"}, {"$ref": "http://127.0.0.1:9/schema.json"}, {"$ref": "#/nope"}]
    ),
)


def _object(props: dict[str, Any], required: list[str], extra: Any, mn: Any, mx: Any) -> dict[str, Any]:
    return _with(
        {"type": "object", "properties": props},
        {"required": required, "additionalProperties": extra, "minProperties": mn, "maxProperties": mx},
    )


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(
            _object,
            st.dictionaries(NAMES, children, max_size=6),
            st.lists(NAMES, max_size=3),
            _opt(st.one_of(st.booleans(), children)),
            _opt(COUNTS),
            _opt(COUNTS),
        ),
        st.builds(
            lambda items, mn, mx: _with({"type": "array", "items": items}, {"minItems": mn, "maxItems": mx}),
            children,
            _opt(COUNTS),
            _opt(COUNTS),
        ),
        st.builds(lambda alts: {"anyOf": alts}, st.lists(children, min_size=1, max_size=4)),
        st.builds(lambda alts: {"oneOf": alts}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda alts: {"allOf": alts}, st.lists(children, min_size=1, max_size=2)),
        st.builds(
            lambda n: {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(n)}},
            st.sampled_from([50, 100, 101, 400]),
        ),
    )


SCHEMAS = st.builds(
    lambda root, thing: {**root, "$defs": {"thing": thing}} if thing is not None else root,
    st.recursive(LEAVES, _containers, max_leaves=12),
    _opt(LEAVES),
)


@pytest.fixture
def server(make_live_server: Any, openai_upstream: FakeOpenAI) -> LiveServer:
    pytest.importorskip("llama_cpp")
    live: LiveServer = make_live_server(MOCK_CONFIG.format(base_url=openai_upstream.base_url))
    return live


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the books are not the subject here
def test_generated_schemas_get_a_200_or_a_400_and_never_crash_the_worker(server: LiveServer) -> None:
    key = server.create_key(usd=100.0)
    provider: LocalProvider = server.app.state.mg.core.providers["local"]
    provider.engine.start().result(timeout=300)
    pid = provider.engine.pid
    seen: dict[int, int] = {}

    @settings(
        max_examples=EXAMPLES,
        derandomize=not os.environ.get("MODELGATE_FUZZ_RANDOM"),
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: each crash would restart the worker
        suppress_health_check=list(HealthCheck),
    )
    @given(schema=SCHEMAS)
    @example(schema={"type": "object", "properties": {"summary": {"type": "string", "maxLength": 22000}}})
    @example(schema={"type": "array", "items": {"type": "integer"}, "maxItems": 30000})
    @example(schema={"type": "string", "pattern": "^a{0,50000}$"})
    def one(schema: Any) -> None:
        body = {
            "model": "smollm2",
            "max_tokens": 4,
            "temperature": 0,
            "messages": [{"role": "user", "content": "Answer in JSON."}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "fuzz", "schema": schema}},
        }
        r = requests.post(
            f"{server.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json=body,
            timeout=120,
        )
        assert r.status_code in (200, 400), (r.status_code, r.text, schema)
        if r.status_code == 400:
            error = r.json()["error"]
            assert error["type"] == "invalid_request_error" and error["message"]
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert provider.engine.worker.restarts == 0 and provider.engine.pid == pid, schema

    one()
    assert seen.get(200) and seen.get(400), seen  # both kinds were exercised
    assert requests.get(f"{server.url}/health", timeout=60).status_code == 200
    assert provider.engine.worker.restarts == 0 and provider.engine.pid == pid
