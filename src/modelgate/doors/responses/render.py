"""Chat results -> OpenAI Responses output, for routes that do not speak Responses natively.

- ``ResponseShape``: the ``response`` object (request echo, status, output items, usage).
- ``output_items``: a chat ``Completion`` as output items (``reasoning`` with a summary, ``message``
  with ``output_text`` / ``refusal``, ``function_call``s) and the status it ends in.
- ``EventTranslator``: chat delta chunks as Responses' semantic stream events, converted one by one
  as they arrive (no buffering), each with its ``sequence_number``: ``response.created``,
  ``response.in_progress``, ``output_item.added`` / ``content_part.added`` / ``*.delta`` / ``*.done``
  per item, then ``response.completed`` (or ``response.incomplete`` when cut by the output cap, or
  ``error`` + ``response.failed`` when the upstream failed mid-stream).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from modelgate.doors.responses import namespaces
from modelgate.doors.responses.wire import ResponsesRequest
from modelgate.providers.base import Chunk, Completion, Usage
from modelgate.wire.credits import meta

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def usage_wire(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def tools_echo(req: ResponsesRequest, kept: set[str] | None) -> list[dict[str, Any]]:
    """The request's tools as the response object lists them (``kept``: only these functions)."""
    out: list[dict[str, Any]] = []
    for tool in req.tools or []:
        if tool.get("type") != "function" or (kept is not None and tool.get("name") not in kept):
            continue
        out.append(
            {
                "type": "function",
                "name": tool["name"],
                "description": tool.get("description"),
                "parameters": tool.get("parameters"),
                "strict": tool.get("strict"),
            }
        )
    return out


class ResponseShape:
    """The parts of the ``response`` object that echo the request (the same in every event)."""

    __slots__ = ("_echo", "created", "id", "model", "names")

    def __init__(
        self, *, response_id: str, model: str, req: ResponsesRequest, tools: list[dict[str, Any]]
    ) -> None:
        self.id = response_id
        self.model = model
        self.names = namespaces.names(req.tools)  # joined chat name -> (namespace, name)
        self.created = int(time.time())
        fmt = req.format.model_dump(exclude_none=True, by_alias=True) if req.format else {"type": "text"}
        reasoning = req.reasoning.model_dump(exclude_none=True) if req.reasoning else {}
        self._echo: dict[str, Any] = {
            "instructions": req.instructions,
            "max_output_tokens": req.max_output_tokens,
            "metadata": req.metadata or {},
            "parallel_tool_calls": req.parallel_tool_calls is not False,
            "previous_response_id": req.previous_response_id,
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "store": req.stored,
            "temperature": req.temperature if req.temperature is not None else 1.0,
            "text": {"format": fmt},
            "tool_choice": req.tool_choice if req.tool_choice is not None else "auto",
            "tools": tools,
            "top_p": req.top_p if req.top_p is not None else 1.0,
            "truncation": req.truncation or "disabled",
            "background": False,
        }
        if req.user is not None:
            self._echo["user"] = req.user

    def body(
        self,
        *,
        status: str,
        output: list[dict[str, Any]],
        usage: Usage | None = None,
        credits: int | None = None,
        error: dict[str, Any] | None = None,
        incomplete: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "model": self.model,
            "output": output,
            **self._echo,
        }
        if usage is not None:
            body["usage"] = usage_wire(usage)
        if credits is not None:
            body["meta"] = meta(credits)
        return body


def _message(item_id: str, content: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _reasoning(item_id: str, text: str) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}


def _call(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def output_items(result: Completion, rid: str) -> tuple[list[dict[str, Any]], str, str | None]:
    """A whole chat answer as output items, its status and its incomplete reason."""
    choice = result.choices[0] if result.choices else {}
    msg = choice.get("message") or {}
    incomplete = INCOMPLETE.get(str(choice.get("finish_reason")))
    item_status = "incomplete" if incomplete else "completed"
    out: list[dict[str, Any]] = []
    if msg.get("reasoning_content"):
        out.append(_reasoning(f"rs_{rid}_{len(out)}", str(msg["reasoning_content"])))
    content: list[dict[str, Any]] = []
    if msg.get("content"):
        content.append(_text_part(str(msg["content"])))
    if msg.get("refusal"):
        content.append({"type": "refusal", "refusal": str(msg["refusal"])})
    if content:
        out.append(_message(f"msg_{rid}_{len(out)}", content, item_status))
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") or {}
        n = len(out)
        call_id = call.get("id") or f"call_{rid}_{n}"
        out.append(
            _call(f"fc_{rid}_{n}", call_id, str(fn.get("name", "")), fn.get("arguments") or "", "completed")
        )
    return out, ("incomplete" if incomplete else "completed"), incomplete


def sse(event: dict[str, Any]) -> bytes:
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


class EventTranslator:
    """Chat delta chunks -> Responses stream events, item by item, as they arrive."""

    def __init__(self, shape: ResponseShape, rid: str) -> None:
        self.shape = shape
        self._rid = rid
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self._open: int | None = None  # the open reasoning or message item (output index)
        self._part: str | None = None  # the open content part of that message: output_text | refusal
        self._calls: dict[int, int] = {}  # chat tool-call index -> output index (open until the end)
        self.finish: str | None = None

    def _ev(self, kind: str, **fields: Any) -> bytes:
        event = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return sse(event)

    def start(self) -> bytes:
        body = self.shape.body(status="in_progress", output=[])
        return self._ev("response.created", response=body) + self._ev("response.in_progress", response=body)

    # ---- items ---------------------------------------------------------------------------------

    def _add(self, item: dict[str, Any]) -> tuple[int, bytes]:
        index = len(self.output)
        self.output.append(item)
        return index, self._ev("response.output_item.added", output_index=index, item=dict(item))

    def _open_reasoning(self) -> bytes:
        out = self._close()
        index, added = self._add(
            {"id": f"rs_{self._rid}_{len(self.output)}", "type": "reasoning", "summary": []}
        )
        self._open = index
        item = self.output[index]
        item["summary"].append({"type": "summary_text", "text": ""})
        part = {"type": "summary_text", "text": ""}
        return (
            out
            + added
            + self._ev(
                "response.reasoning_summary_part.added",
                item_id=item["id"],
                output_index=index,
                summary_index=0,
                part=part,
            )
        )

    def _open_message(self) -> bytes:
        out = self._close()
        item = _message(f"msg_{self._rid}_{len(self.output)}", [], "in_progress")
        index, added = self._add(item)
        self._open = index
        return out + added

    def _open_part(self, kind: str) -> bytes:
        out = self._close_part()
        item = self.output[self._open] if self._open is not None else {}
        part = _text_part("") if kind == "output_text" else {"type": "refusal", "refusal": ""}
        item["content"].append(part)
        self._part = kind
        return out + self._ev(
            "response.content_part.added",
            item_id=item["id"],
            output_index=self._open,
            content_index=len(item["content"]) - 1,
            part=dict(part),
        )

    def _close_part(self) -> bytes:
        if self._part is None or self._open is None:
            return b""
        item = self.output[self._open]
        ci = len(item["content"]) - 1
        part = item["content"][ci]
        where = {"item_id": item["id"], "output_index": self._open, "content_index": ci}
        if self._part == "output_text":
            out = self._ev("response.output_text.done", **where, text=part["text"], logprobs=[])
        else:
            out = self._ev("response.refusal.done", **where, refusal=part["refusal"])
        self._part = None
        return out + self._ev("response.content_part.done", **where, part=part)

    def _close(self) -> bytes:
        """Close the open reasoning or message item (tool calls stay open until the end)."""
        if self._open is None:
            return b""
        index = self._open
        item = self.output[index]
        if item["type"] == "reasoning":
            summary = item["summary"][0]
            where = {"item_id": item["id"], "output_index": index, "summary_index": 0}
            out = self._ev("response.reasoning_summary_text.done", **where, text=summary["text"])
            out += self._ev("response.reasoning_summary_part.done", **where, part=summary)
        else:
            out = self._close_part()
            item["status"] = "incomplete" if self.finish in INCOMPLETE else "completed"
        self._open = None
        return out + self._ev("response.output_item.done", output_index=index, item=item)

    def _close_call(self, index: int) -> bytes:
        item = self.output[index]
        item["status"] = "incomplete" if self.finish in INCOMPLETE else "completed"
        done = self._ev(
            "response.function_call_arguments.done",
            item_id=item["id"],
            output_index=index,
            name=item["name"],
            arguments=item["arguments"],
        )
        return done + self._ev("response.output_item.done", output_index=index, item=item)

    # ---- chunks --------------------------------------------------------------------------------

    def chunk(self, chunk: Chunk) -> bytes:
        out = b""
        for choice in chunk.choices[:1]:  # Responses has one output
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content")
            if reasoning:
                if self._open is None or self.output[self._open]["type"] != "reasoning":
                    out += self._open_reasoning()
                item = self.output[self._open] if self._open is not None else {}
                item["summary"][0]["text"] += reasoning
                out += self._ev(
                    "response.reasoning_summary_text.delta",
                    item_id=item["id"],
                    output_index=self._open,
                    summary_index=0,
                    delta=reasoning,
                )
            for key, kind, field in (("content", "output_text", "text"), ("refusal", "refusal", "refusal")):
                text = delta.get(key)
                if not text:
                    continue
                if self._open is None or self.output[self._open]["type"] != "message":
                    out += self._open_message()
                if self._part != kind:
                    out += self._open_part(kind)
                item = self.output[self._open] if self._open is not None else {}
                ci = len(item["content"]) - 1
                item["content"][ci][field] += text
                extra: dict[str, Any] = {"logprobs": []} if kind == "output_text" else {}
                out += self._ev(
                    f"response.{kind}.delta",
                    item_id=item["id"],
                    output_index=self._open,
                    content_index=ci,
                    delta=text,
                    **extra,
                )
            for call in delta.get("tool_calls") or []:
                out += self._call_delta(call)
            if choice.get("finish_reason"):
                self.finish = str(choice["finish_reason"])
        return out

    def _call_delta(self, call: dict[str, Any]) -> bytes:
        out = b""
        key = int(call.get("index", 0) or 0)
        fn = call.get("function") or {}
        index = self._calls.get(key)
        if index is None:
            out += self._close()
            n = len(self.output)
            call_id = call.get("id") or f"call_{self._rid}_{n}"
            item = _call(f"fc_{self._rid}_{n}", call_id, str(fn.get("name") or ""), "", "in_progress")
            index, added = self._add(namespaces.split(item, self.shape.names))
            self._calls[key] = index
            out += added
        args = fn.get("arguments")
        if args:
            item = self.output[index]
            item["arguments"] += args
            out += self._ev(
                "response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=args
            )
        return out

    # ---- the end -------------------------------------------------------------------------------

    def end(self, usage: Usage, credits: int) -> tuple[bytes, dict[str, Any]]:
        """The closing events and the final response object."""
        out = self._close()
        for index in self._calls.values():
            out += self._close_call(index)
        incomplete = INCOMPLETE.get(self.finish or "")
        status = "incomplete" if incomplete else "completed"
        body = self.shape.body(
            status=status, output=self.output, usage=usage, credits=credits, incomplete=incomplete
        )
        return out + self._ev(f"response.{status}", response=body), body

    def fail(self, code: str | None, message: str, param: str | None) -> bytes:
        """An upstream failure after the stream started: ``error`` then ``response.failed``."""
        out = self._ev("error", code=code, message=message, param=param)
        body = self.shape.body(
            status="failed", output=self.output, error={"code": "server_error", "message": message}
        )
        return out + self._ev("response.failed", response=body)
