"""Gemini ``GenerateContentResponse`` -> OpenAI choices, deltas and ``Usage`` (pure).

``parse_response`` handles a whole answer; ``StreamState.feed`` one streamed event. Thought-summary
parts (``thought: true``) become ``reasoning_content``; function calls become ``tool_calls`` with
generated ids; usage never counts a token twice (``candidatesTokenCount`` excludes thoughts).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelgate.errors import UpstreamProtocolError
from modelgate.providers.base import Usage
from modelgate.providers.checks import token_count

FINISH_REASONS: dict[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "LANGUAGE": "content_filter",
    "OTHER": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def parse_usage(raw: Any, provider: str = "google") -> Usage:
    if not isinstance(raw, dict):
        return Usage()

    def count(field: str) -> int:
        return token_count(raw.get(field), provider=provider, field=field)

    thoughts = count("thoughtsTokenCount")
    prompt = count("promptTokenCount") + count("toolUsePromptTokenCount")
    cached = count("cachedContentTokenCount")
    # Audio input is priced apart (promptTokensDetails by modality); the cached part of it is
    # already a cache read, so only the uncached audio tokens count as audio input.
    audio = max(
        _modality(raw.get("promptTokensDetails"), "AUDIO", provider)
        - _modality(raw.get("cacheTokensDetails"), "AUDIO", provider),
        0,
    )
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=count("candidatesTokenCount") + thoughts,
        reasoning_tokens=thoughts,
        cached_tokens=cached,
        audio_input_tokens=audio,
    )


def _modality(details: Any, modality: str, provider: str) -> int:
    """The tokens of one modality in a ``*TokensDetails`` list ([{modality, tokenCount}])."""
    if not isinstance(details, list):
        return 0
    total = 0
    for item in details:
        if isinstance(item, dict) and item.get("modality") == modality:
            total += token_count(item.get("tokenCount"), provider=provider, field="tokenCount")
    return total


@dataclass(slots=True)
class PartsView:
    """The parts of one candidate (or of one streamed slice of it), sorted by kind."""

    text: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)


def split_parts(candidate: dict[str, Any]) -> PartsView:
    view = PartsView()
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("functionCall"), dict):
            fc = part["functionCall"]
            view.calls.append(
                {
                    "id": fc.get("id") or new_call_id(),
                    "type": "function",
                    "function": {
                        "name": str(fc.get("name", "")),
                        "arguments": orjson.dumps(fc.get("args") or {}).decode(),
                    },
                }
            )
        elif isinstance(part.get("text"), str):
            (view.thoughts if part.get("thought") else view.text).append(part["text"])
    return view


def finish_reason(raw: Any, *, has_calls: bool) -> str | None:
    if raw is None:
        return None
    if has_calls and raw in ("STOP", "FINISH_REASON_UNSPECIFIED"):
        return "tool_calls"
    return FINISH_REASONS.get(str(raw), "stop")


def convert_logprobs(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    chosen = raw.get("chosenCandidates") or []
    tops = raw.get("topCandidates") or []
    out = []
    for i, tok in enumerate(chosen):
        top = tops[i].get("candidates", []) if i < len(tops) and isinstance(tops[i], dict) else []
        out.append(
            {
                "token": tok.get("token", ""),
                "logprob": tok.get("logProbability", 0.0),
                "bytes": list(str(tok.get("token", "")).encode()),
                "top_logprobs": [
                    {
                        "token": t.get("token", ""),
                        "logprob": t.get("logProbability", 0.0),
                        "bytes": list(str(t.get("token", "")).encode()),
                    }
                    for t in top
                ],
            }
        )
    return {"content": out, "refusal": None}


def blocked_choice() -> dict[str, Any]:
    return {
        "index": 0,
        "message": {"role": "assistant", "content": None, "refusal": None},
        "finish_reason": "content_filter",
        "logprobs": None,
    }


def parse_response(data: Any, provider: str) -> tuple[list[dict[str, Any]], Usage]:
    if not isinstance(data, dict):
        raise UpstreamProtocolError(
            f"upstream {provider} answered JSON that is not an object", provider=provider
        )
    usage = parse_usage(data.get("usageMetadata"), provider)
    candidates = data.get("candidates")
    if not candidates:
        feedback = data.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            return [blocked_choice()], usage
        raise UpstreamProtocolError(f"upstream {provider} answered no candidates", provider=provider)
    choices = []
    for pos, cand in enumerate(c for c in candidates if isinstance(c, dict)):
        view = split_parts(cand)
        reason = finish_reason(cand.get("finishReason") or "STOP", has_calls=bool(view.calls))
        content: str | None = "".join(view.text)
        if not view.text and (view.calls or reason == "content_filter"):
            content = None
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
        if view.calls:
            message["tool_calls"] = view.calls
        if view.thoughts:
            message["reasoning_content"] = "".join(view.thoughts)
        choices.append(
            {
                "index": int(cand.get("index", pos)),
                "message": message,
                "finish_reason": reason,
                "logprobs": convert_logprobs(cand.get("logprobsResult")),
            }
        )
    return choices, usage


@dataclass(slots=True)
class StreamState:
    """Per-stream bookkeeping: which choices have sent their role, tool-call indexes, usage."""

    started: set[int] = field(default_factory=set)
    finished: set[int] = field(default_factory=set)
    call_counts: dict[int, int] = field(default_factory=dict)
    usage: Usage | None = None
    provider: str = "google"

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if "usageMetadata" in event:
            self.usage = parse_usage(event["usageMetadata"], self.provider)
        candidates = event.get("candidates")
        if not candidates:
            feedback = event.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason") and 0 not in self.finished:
                self.started.add(0)
                self.finished.add(0)
                return [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": None},
                        "finish_reason": "content_filter",
                        "logprobs": None,
                    }
                ]
            return []
        out = []
        for pos, cand in enumerate(c for c in candidates if isinstance(c, dict)):
            index = int(cand.get("index", pos))
            view = split_parts(cand)
            delta: dict[str, Any] = {}
            if index not in self.started:
                self.started.add(index)
                delta["role"] = "assistant"
                delta["content"] = ""
            if view.text:
                delta["content"] = "".join(view.text)
            if view.thoughts:
                delta["reasoning_content"] = "".join(view.thoughts)
            if view.calls:
                first = self.call_counts.get(index, 0)
                delta["tool_calls"] = [{"index": first + k, **c} for k, c in enumerate(view.calls)]
                self.call_counts[index] = first + len(view.calls)
            reason = finish_reason(cand.get("finishReason"), has_calls=index in self.call_counts)
            if reason is not None:
                self.finished.add(index)
            if delta or reason is not None:
                out.append({"index": index, "delta": delta, "finish_reason": reason, "logprobs": None})
        return out
