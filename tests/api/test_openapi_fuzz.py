"""``/openapi.json`` is the real contract, and fuzzing every operation it declares finds no 5xx.

Schemathesis generates requests from the server's own document — bodies, query and path
parameters — both valid ones (``positive``) and ones that break the schema (``negative``), sent
with a regular and with a management key, on SQLite and on PostgreSQL. Bodies of the model-calling
doors name a model of the catalogue half of the time, so the fuzz reaches the core, the adapter and
the fake upstream rather than stopping at "unknown model". ``MODELGATE_FUZZ_EXAMPLES`` sets the
examples per operation, mode and database (default 15: about 1,300 requests in all, a minute or
two on a busy 2-core machine; raise it for a deeper run).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI

EXAMPLES = int(os.environ.get("MODELGATE_FUZZ_EXAMPLES", "15"))
MODELS = ["echo", "mock/echo", "mock/chain"]
# Second paths of one handler (fuzzed through their first path).
ALIASES = {
    "/chat/completions",
    "/embeddings",
    "/images/generations",
    "/images/edits",
    "/audio/speech",
    "/audio/transcriptions",
    "/audio/translations",
    "/model/{model_id}",
}


def test_every_operation_declares_its_contract(live_server: LiveServer) -> None:
    doc = requests.get(f"{live_server.url}/openapi.json", timeout=30).json()
    ops = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    assert len(ops) >= 20
    for path, method, op in ops:
        assert "400" in op["responses"] and "422" not in op["responses"], (method, path)
        if method in ("post", "put", "patch") and not path.endswith("/cancel"):  # cancel takes no body
            content = op["requestBody"]["content"]
            # Uploads (audio transcriptions, image edits) take multipart/form-data; every other body is JSON.
            upload = "/audio/trans" in path or path.endswith("/images/edits")
            media = "multipart/form-data" if upload else "application/json"
            assert content[media]["schema"], (method, path)
    by_path = {(m, p): op for p, m, op in ops}
    logs = {p["name"] for p in by_path[("get", "/v2/logs")]["parameters"]}
    assert {"period", "start", "end", "limit", "offset", "model", "status", "key_prefix"} <= logs
    chat = by_path[("post", "/v1/chat/completions")]
    assert {"502", "503", "504"} <= set(chat["responses"])
    body = chat["requestBody"]["content"]["application/json"]["schema"]
    assert {"model", "messages"} <= set(body["required"])
    assert "$defs" not in str(doc)  # every definition lives in components.schemas


def test_fuzz_every_operation_finds_no_server_error(
    live_server: LiveServer, openai_upstream: FakeOpenAI
) -> None:
    email = "fuzz@example.com"
    keys = [
        live_server.create_key(email=email, usd=1000.0),
        live_server.create_key(email=email, usd=0, management=True),
    ]
    doc = requests.get(f"{live_server.url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(doc)
    failures: list[str] = []
    calls = 0
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in ALIASES:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(
                case=operation.as_strategy(generation_mode=mode), key=st.sampled_from(keys), data=st.data()
            )
            def run(case: Any, key: str, data: st.DataObject) -> None:
                nonlocal calls
                if case.method == "POST" and isinstance(case.body, dict) and data.draw(st.booleans()):
                    case.body["model"] = data.draw(st.sampled_from(MODELS))
                # A window, half of the time, so that the other parameters get looked at.
                windowed = case.path.startswith("/v2/usage") or case.path == "/v2/logs"
                if windowed and case.query is None:
                    case.query = {}
                query = case.query if isinstance(case.query, dict) else {}
                if windowed and not {"period", "start", "end"} & set(query) and data.draw(st.booleans()):
                    query["period"] = "24h"
                try:
                    resp = case.call(
                        base_url=live_server.url,
                        session=session,
                        headers={"Authorization": f"Bearer {key}"},
                        timeout=60,
                    )
                except requests.RequestException as exc:  # the server must answer, even to nonsense
                    failures.append(f"{case.method} {case.formatted_path}: no answer ({exc!r})")
                    return
                calls += 1
                if resp.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} -> {resp.status_code} {resp.text[:300]!r}"
                        f" (query {case.query!r}, body {str(case.body)[:300]})"
                    )

            run()
    session.close()
    assert calls >= EXAMPLES * 10
    assert not failures, "\n".join(failures[:20])
    # The books are intact after all of it.
    assert requests.get(f"{live_server.url}/v2/billing", headers={"Authorization": f"Bearer {keys[0]}"}).ok


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
