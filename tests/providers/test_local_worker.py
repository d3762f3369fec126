"""The local models' worker processes: a worker that dies (SIGKILL: what a native crash, the OOM
killer or an operator does) fails only the calls in flight, with a 502, and is restarted.

The gateway-level version (a real server, its envelope, its books) is
``tests/doors/test_local_crash.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from modelgate.catalog.models import ProviderConfig
from modelgate.errors import GatewayError, ProviderNotConfiguredError, WorkerCrashedError
from modelgate.providers.base import ProviderContext, Usage
from modelgate.providers.local import LocalProvider, create
from modelgate.providers.local.engine import Engine
from modelgate.providers.local.request import Event, GenRequest
from modelgate.providers.local.runtime import RuntimeOptions
from modelgate.providers.local.sampling import SamplingParams
from modelgate.providers.local.supervisor import Supervisor
from tests.providers.test_local import make_call
from tests.providers.test_local_embed import call as embed_call

local_model = pytest.mark.local_model


@pytest.fixture
def local() -> Iterator[LocalProvider]:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("onnxruntime")
    provider = create(
        "local", ProviderConfig(type="local", options={"parallel": 4, "n_ctx": 2048}), ProviderContext()
    )
    provider.engine.start().result(timeout=120)
    yield provider
    provider.embedder.shutdown()
    provider.engine.shutdown()


async def wait_for(predicate: Any, what: str, within: float = 120.0) -> None:
    """Poll state another process produces (no event to wait on); the bound is only a safety net."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@local_model
async def test_a_killed_chat_worker_fails_its_calls_with_502_and_restarts(local: LocalProvider) -> None:
    first = local.engine.pid
    assert first is not None and first != os.getpid()  # the model runs in a process of its own
    reports: list[Usage] = []
    story = make_call("Write a very long story.", temperature=0, max_tokens=2000)
    story.on_usage = reports.append
    stream = local.stream(story)
    await anext(stream)  # generating
    await wait_for(lambda: bool(reports) and reports[-1].completion_tokens >= 3, "a few tokens")
    produced = reports[-1].completion_tokens
    os.kill(first, signal.SIGKILL)
    with pytest.raises(WorkerCrashedError, match=r"died \(signal SIGKILL\)") as info:
        async for _ in stream:
            pass
    assert info.value.status_code == 502 and info.value.retryable is False
    assert not local.ready()  # /ready says "starting" until the new worker has loaded
    assert reports[-1].completion_tokens >= produced  # the counts that arrived were reported for billing

    # The next call is served by a new worker (started after the backoff), the model loaded once more.
    answer = await asyncio.wait_for(local.complete(make_call(max_tokens=4, temperature=0)), 120)
    assert answer.usage.completion_tokens == 4
    second = local.engine.pid
    assert second is not None and second != first and not _alive(first)
    assert local.engine.worker.restarts == 1 and local.ready()


@local_model
async def test_a_killed_embedding_worker_fails_its_call_with_502_and_restarts(local: LocalProvider) -> None:
    assert len((await local.embed(embed_call(["warm up"]))).vectors) == 1
    first = local.embedder.pid
    assert first is not None and first not in (os.getpid(), local.engine.pid)
    big = asyncio.create_task(
        local.embed(embed_call([f"Sentence number {i} about a cat." for i in range(2000)]))
    )
    inc = local.embedder.worker._inc
    assert inc is not None
    await wait_for(lambda: bool(inc.pending), "the call to reach the worker")
    os.kill(first, signal.SIGKILL)
    with pytest.raises(WorkerCrashedError) as info:
        await big
    assert info.value.status_code == 502
    again = await asyncio.wait_for(local.embed(embed_call(["served again"])), 120)
    assert len(again.vectors) == 1 and local.embedder.pid not in (None, first)
    # The chat worker was never touched.
    assert (await local.complete(make_call(max_tokens=2, temperature=0))).usage.completion_tokens == 2


@local_model
async def test_requests_after_shutdown_are_refused_and_the_worker_exits(local: LocalProvider) -> None:
    pid = local.engine.pid
    assert pid is not None
    await local.aclose()
    assert not _alive(pid)
    with pytest.raises(ProviderNotConfiguredError, match="shut down"):
        await local.complete(make_call(max_tokens=2))


def test_backoff_grows_with_crashes_in_a_row_and_calls_wait_for_the_restart() -> None:
    sup = Supervisor(kind="chat", options=None, provider="local", label="local model")
    # A worker that exits before loading anything (bad options): each death schedules a restart
    # later than the one before.
    delays = []
    for _ in range(3):
        sup._next = None
        ready = sup.start()
        with pytest.raises(GatewayError):
            ready.result(timeout=60)
        delays.append(sup._restart_at - time.monotonic())
        assert sup._next is not None
    sup.shutdown()
    assert delays[0] < delays[1] < delays[2]


@local_model
async def test_a_failed_step_fails_running_requests_and_the_engine_recovers() -> None:
    """A Python-level failure inside the engine (not a crash) fails what was running, and the
    engine goes on: checked on an engine in this process."""
    pytest.importorskip("llama_cpp")
    got: list[tuple[GenRequest, Event]] = []
    engine = Engine(RuntimeOptions(n_ctx=1024, n_seq_max=2, n_threads=1), max_queue=4, deliver=got.extend)
    engine.start().result(timeout=120)
    original = engine._decode_and_sample
    calls = 0

    def flaky(out: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        original(out)

    engine._decode_and_sample = flaky  # type: ignore[method-assign]

    def submit(rid: int) -> GenRequest:
        req = GenRequest(
            rid=rid,
            messages=[{"role": "user", "content": "Hi"}],
            params=SamplingParams(temperature=0),
            n=1,
            max_tokens=4,
            stops=(),
            wake=engine.wake,
        )
        engine.submit(req)
        return req

    try:
        failed = submit(1)
        await wait_for(lambda: any(r is failed and e.error is not None for r, e in got), "the failure")
        assert "boom" in str(next(e.error for r, e in got if r is failed and e.error is not None))
        assert engine.stats.active_seqs == 0
        served = submit(2)
        await wait_for(lambda: any(r is served and e.done for r, e in got), "the next answer")
        assert served.completion_tokens == [4]
    finally:
        engine.shutdown()
