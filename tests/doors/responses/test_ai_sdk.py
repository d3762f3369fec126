"""The Vercel AI SDK's default ``@ai-sdk/openai`` provider (it speaks the Responses API) against
modelgate, run by Node from ``js/aisdk.mjs``: ``generateText``, ``streamText``, tool calls over
several steps (the SDK sends earlier items back as ``item_reference``s) and ``generateObject``, on a
native Responses route, the OpenAI-compatible chat fake, Gemini and the local model.

The npm packages (``ai``, ``@ai-sdk/openai``, ``zod``; pinned in ``js/package-lock.json``) are
installed from npm into ``js/node_modules`` by the first test that needs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.fakes import Reply
from tests.fakes.gemini_server import GeminiFake, gemini_sse
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.fakes.responses_server import ResponsesFake
from tests.npm import install_once

JS_DIR = Path(__file__).parent / "js"


@pytest.fixture(scope="session")
def node() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the AI SDK tests")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.skip(f"the AI SDK tests need Node >= 20 (found {version.strip()})")
    done = install_once(npm, JS_DIR, JS_DIR / "node_modules" / "@ai-sdk" / "openai" / "package.json")
    assert done.returncode == 0, done.stderr[-2000:]
    return Path(node)


def run_sdk(
    node: Path,
    server: LiveServer,
    model: str,
    parts: str = "text,stream,tools,object",
    max_tokens: int = 0,
    small_object: bool = False,
) -> dict[str, Any]:
    env = {
        **os.environ,
        "MG_BASE_URL": f"{server.url}/v1",
        "MG_KEY": server.create_key(),
        "MG_MODEL": model,
        "MG_PARTS": parts,
        "MG_MAX_TOKENS": str(max_tokens or ""),
        "MG_SMALL_OBJECT": "1" if small_object else "",
    }
    proc = subprocess.run(
        [str(node), "aisdk.mjs"], cwd=JS_DIR, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, result in out.items():
        assert "error" not in result, (name, result, proc.stderr)
    return out


def check_common(out: dict[str, Any]) -> None:
    assert out["text"]["finishReason"] == "stop" and out["text"]["usage"]["inputTokens"] > 0
    assert out["stream"]["finishReason"] == "stop" and out["stream"]["text"]
    assert out["stream"]["errors"] == [] and out["stream"]["usage"]["outputTokens"] > 0


def test_native_responses_route(node: Path, server: LiveServer, responses_up: ResponsesFake) -> None:
    out = run_sdk(node, server, "gpt-fake")
    check_common(out)
    assert out["text"]["text"] == "hello there" and out["text"]["modelId"] == "gpt-fake"
    assert out["stream"]["text"] == "one two three"
    tools = out["tools"]
    assert tools["calls"] == [{"name": "get_weather", "input": {"city": "Paris"}}]
    assert tools["results"] == ["sunny in Paris"] and tools["text"] == "tool said: sunny in Paris"
    assert out["object"]["object"] == {"city": "Paris", "population": 1.5}


def test_chat_route(node: Path, server: LiveServer, openai_upstream: FakeOpenAI) -> None:
    call = {
        "id": "call_w",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    tool_reply = {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 30, "completion_tokens": 9, "total_tokens": 39},
    }
    openai_upstream.script(
        Scripted(),  # text: echo
        Scripted(),  # stream: echo
        Scripted(body=tool_reply),
        Scripted(text="It is sunny in Paris."),
        Scripted(text='{"city": "Paris", "population": 2100000}'),
    )
    out = run_sdk(node, server, "echo")
    check_common(out)
    assert out["text"]["text"] == "hello there" and out["stream"]["text"].strip() == "one two three"
    tools = out["tools"]
    assert tools["calls"] == [{"name": "get_weather", "input": {"city": "Paris"}}] and tools["steps"] == 2
    assert tools["results"] == ["sunny in Paris"] and tools["text"] == "It is sunny in Paris."
    # the second step referenced the stored function_call by id: modelgate replayed it to the chat upstream
    replay = openai_upstream.requests[3]["messages"]
    assert replay[-2]["tool_calls"][0]["id"] == "call_w"
    assert replay[-1] == {"role": "tool", "tool_call_id": "call_w", "content": "sunny in Paris"}
    assert out["object"]["object"] == {"city": "Paris", "population": 2100000}


def _gemini(parts: list[dict[str, Any]], finish: str = "STOP") -> dict[str, Any]:
    return {
        "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}],
        "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 6, "totalTokenCount": 18},
    }


def test_gemini_route(node: Path, server: LiveServer, gemini_up: GeminiFake) -> None:
    gemini_up.add(
        Reply(body=_gemini([{"text": "Hello from Gemini."}])),
        gemini_sse([_gemini([{"text": "one "}]), _gemini([{"text": "two three"}])]),
        Reply(body=_gemini([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}])),
        Reply(body=_gemini([{"text": "Sunny."}])),
        Reply(body=_gemini([{"text": '{"city": "Paris", "population": 2100000}'}])),
    )
    out = run_sdk(node, server, "gemini-fake")
    check_common(out)
    assert out["text"]["text"] == "Hello from Gemini." and out["stream"]["text"] == "one two three"
    assert out["tools"]["calls"] == [{"name": "get_weather", "input": {"city": "Paris"}}]
    assert out["tools"]["text"] == "Sunny."
    assert out["object"]["object"] == {"city": "Paris", "population": 2100000}


@pytest.mark.local_model
def test_local_model(node: Path, server: LiveServer) -> None:
    out = run_sdk(node, server, "smollm2", parts="text,stream,object", max_tokens=48, small_object=True)
    assert out["text"]["text"] and out["text"]["finishReason"] in ("stop", "length")
    assert out["stream"]["text"] and out["stream"]["errors"] == []
    assert isinstance(out["object"]["object"]["city"], str)
