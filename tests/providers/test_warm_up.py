"""``MODELGATE_WARM_UP`` (``Settings.warm_up``): on, the default, the embedded chat model's worker
starts and loads its model when the server starts, so that the first local request does not wait
for it; off (how the test suite runs, tests/conftest.py), it starts on the first call that needs it,
and a server whose requests never reach the local models runs no worker at all."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from modelgate.providers.local import LocalProvider
from tests.billing.helpers import auth, wait_for
from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.openai_server import FakeOpenAI

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),  # no storage involved
]


def _start(make_live_server: Any, upstream: FakeOpenAI, warm_up: bool) -> tuple[LiveServer, LocalProvider]:
    pytest.importorskip("llama_cpp")
    server: LiveServer = make_live_server(MOCK_CONFIG.format(base_url=upstream.base_url), warm_up=warm_up)
    return server, server.app.state.mg.core.providers["local"]


def _chat(server: LiveServer, key: str, model: str) -> requests.Response:
    body = {"model": model, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
    return requests.post(f"{server.url}/v1/chat/completions", headers=auth(key), json=body, timeout=300)


def test_warm_up_loads_the_local_model_at_start_up(
    make_live_server: Any, openai_upstream: FakeOpenAI
) -> None:
    _, local = _start(make_live_server, openai_upstream, warm_up=True)
    wait_for(lambda: local.engine.pid is not None and local.ready(), timeout=300)  # no request made


def test_without_warm_up_the_local_model_loads_on_its_first_call(
    make_live_server: Any, openai_upstream: FakeOpenAI
) -> None:
    server, local = _start(make_live_server, openai_upstream, warm_up=False)
    key = server.create_key(usd=1.0)
    assert _chat(server, key, "mock/echo").status_code == 200
    assert local.engine.pid is None  # nothing asked for the local model: no worker
    assert _chat(server, key, "smollm2").status_code == 200
    assert local.engine.pid is not None
