"""Body logging (docs/observability.md): a request's prompt and final answer, stored per request id
only while the operator has it on (Console > Settings; off by default), for the retention period.

The switch and the retention live in the site settings (``store/site_settings.py``). Every instance
reads them into memory at start and polls them (``refresh``, every ``MODELGATE_CATALOG_POLL_INTERVAL``
seconds); the instance that saves a change applies it at once. The request path reads one boolean:
with body logging off nothing is copied, parsed or queued.

With it on, the core hands this module the request (the raw body its door parsed) and the answer:
a whole answer's payload, or a stream's events, assembled here into its text and tool calls. The
texts are made safe and small before they are queued on the batched writer (``store/log_sink.py``):

- secrets are masked: every value whose field is named like a credential (``api_key``,
  ``authorization``, ``password``, ``*_secret``, ``*_token``, …) becomes ``"[masked]"``, at any depth
  (tool definitions carry MCP headers and tokens). The request's own API key is never in its body
  (it travels in a header), and headers are never stored;
- inline media (``data:`` URLs, long base64 strings) is replaced by a note of its size;
- each text is cut at ``MODELGATE_BODY_MAX_BYTES`` (64 KiB), and the row says it was truncated.

Only requests that reach a model are stored (refusals before routing have no body), and only from
the doors whose body is JSON (chat, Messages, Responses, embeddings; embeddings answers as a count).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from modelgate.providers.base import Chunk, Completion, Embeddings, RawEvent, RawReply
from modelgate.settings import Settings
from modelgate.store.db import Engine
from modelgate.store.log_sink import RequestLogSink
from modelgate.store.request_bodies import sweep_bodies
from modelgate.store.site_settings import SiteSettings, load_site_settings

log = logging.getLogger("modelgate.bodies")

MASK = "[masked]"
TRUNCATED = "\n… [truncated]"
_SECRET_NAMES = frozenset(
    {
        "api_key", "apikey", "api-key", "x-api-key", "x_api_key", "authorization", "proxy-authorization",
        "password", "passwd", "secret", "client_secret", "token", "access_token", "refresh_token",
        "id_token", "bearer", "private_key", "secret_key", "cookie", "set-cookie",
    }
)  # fmt: skip
_SECRET_SUFFIXES = ("_api_key", "-api-key", "_secret", "_password", "_token", "-token")
_INLINE_MIN = 512  # a string this long that is a data: URL or base64 is media, not text


def secret_field(name: str) -> bool:
    low = name.lower()
    return low in _SECRET_NAMES or low.endswith(_SECRET_SUFFIXES)


def masked(value: Any, limit: int | None = None) -> Any:
    """``value`` with every credential-named field masked and inline media summarised. ``limit``:
    only the first ``limit`` bytes of its JSON text are kept (``bounded``), so the walk stops where
    the text written so far is surely longer (a lower bound: each string's characters and quotes, each
    key and its colon, a character per other value); the JSON text of what comes back starts with
    the same ``limit`` bytes. An agent's request of 400 KB is masked in a sixth of the time."""
    if limit is not None:
        return _masked_within(value, [limit])
    if isinstance(value, dict):
        return {
            k: (MASK if value[k] is not None else None) if secret_field(str(k)) else masked(value[k])
            for k in value
        }
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str) and len(value) >= _INLINE_MIN and _inline_media(value):
        kind = value[5 : value.find(";")] if value.startswith("data:") and ";" in value[:80] else "data"
        return f"[{kind}, {len(value):,} characters, not stored]"
    return value


def _masked_within(value: Any, left: list[int]) -> Any:
    """``masked`` while ``left[0]`` (the limit less the text's lower bound so far) is not negative."""
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k in value:
            if left[0] < 0:
                break
            key = str(k)
            left[0] -= len(key) + 3
            if secret_field(key):
                out[k] = MASK if value[k] is not None else None
                left[0] -= len(MASK) + 2
            else:
                out[k] = _masked_within(value[k], left)
        return out
    if isinstance(value, list):
        items: list[Any] = []
        for v in value:
            if left[0] < 0:
                break
            items.append(_masked_within(v, left))
            left[0] -= 1  # its comma (the last one's: a bracket not counted)
        return items
    if isinstance(value, str):
        text = masked(value)
        left[0] -= len(text) + 2
        return text
    left[0] -= 1
    return value


def _inline_media(text: str) -> bool:
    if text.startswith("data:"):
        return True
    return all(c.isalnum() or c in "+/=_-" for c in text[:_INLINE_MIN])


def bounded(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` UTF-8 bytes (on a character boundary), and whether it was."""
    if len(text) * 4 <= limit:
        return text, False
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text, False
    return data[:limit].decode("utf-8", "ignore") + TRUNCATED, True


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def request_text(raw: bytes, limit: int | None = None) -> str:
    """The request as indented JSON, masked; ``limit``: only its first ``limit`` bytes are read
    (``bounded`` cuts the rest): the walk stops past them (``masked``)."""
    try:
        return _json_text(masked(orjson.loads(raw), limit))
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


def answer_text(answer: Any) -> str | None:
    """The final answer as text: a whole answer's payload, or a stream's payloads (assembled)."""
    if isinstance(answer, list):
        return _assembled(answer)
    if isinstance(answer, Completion):
        return _json_text(masked(_messages([c.get("message") for c in answer.choices], answer.choices)))
    if isinstance(answer, RawReply):
        return request_text(answer.body)
    if isinstance(answer, Embeddings):
        dims = len(answer.vectors[0]) if answer.vectors else 0
        return f"{len(answer.vectors)} embedding vector(s) of {dims} dimensions (vectors are not stored)"
    return None


def _messages(messages: list[Any], choices: list[dict[str, Any]]) -> Any:
    out = []
    for msg, choice in zip(messages, choices, strict=False):
        item = dict(msg) if isinstance(msg, dict) else {}
        if choice.get("finish_reason"):
            item["finish_reason"] = choice["finish_reason"]
        out.append(item)
    return out[0] if len(out) == 1 else out


def _assembled(payloads: list[Any]) -> str | None:
    if payloads and isinstance(payloads[0], RawEvent):
        return _assembled_events([p for p in payloads if isinstance(p, RawEvent)])
    choices: dict[int, dict[str, Any]] = {}
    for p in payloads:
        if not isinstance(p, Chunk):
            continue
        for c in p.choices:
            index = c.get("index", 0)
            msg = choices.setdefault(index if isinstance(index, int) else 0, {"role": "assistant"})
            delta = c.get("delta") or {}
            for field in ("content", "reasoning_content", "refusal"):
                if isinstance(delta.get(field), str):
                    msg[field] = msg.get(field, "") + delta[field]
            for call in delta.get("tool_calls") or ():
                _add_tool_delta(msg.setdefault("tool_calls", []), call)
            if c.get("finish_reason"):
                msg["finish_reason"] = c["finish_reason"]
    if not choices:
        return None
    ordered = [choices[i] for i in sorted(choices)]
    return _json_text(masked(ordered[0] if len(ordered) == 1 else ordered))


def _add_tool_delta(calls: list[dict[str, Any]], delta: Any) -> None:
    if not isinstance(delta, dict):
        return
    index = delta.get("index", len(calls))
    while isinstance(index, int) and 0 <= index < 128 and len(calls) <= index:
        calls.append({"type": "function", "function": {"name": "", "arguments": ""}})
    if not isinstance(index, int) or not 0 <= index < len(calls):
        return
    call = calls[index]
    if delta.get("id"):
        call["id"] = delta["id"]
    fn = delta.get("function") or {}
    for field in ("name", "arguments"):
        if isinstance(fn.get(field), str):
            call["function"][field] += fn[field]


def _event_data(frame: bytes) -> Any:
    lines = [line[5:].strip() for line in frame.split(b"\n") if line.startswith(b"data:")]
    try:
        return orjson.loads(b"\n".join(lines)) if lines else None
    except orjson.JSONDecodeError:
        return None


def _assembled_events(events: list[RawEvent]) -> str | None:
    """Messages and Responses streams passed through: the final response object when the stream
    carries one (Responses), else the content blocks rebuilt from their deltas (Messages)."""
    blocks: dict[int, dict[str, Any]] = {}
    stop: Any = None
    for ev in events:
        data = _event_data(ev.frame)
        if not isinstance(data, dict):
            continue
        kind = data.get("type") or ev.kind
        if isinstance(data.get("response"), dict) and kind in ("response.completed", "response.incomplete"):
            return _json_text(masked(data["response"]))
        index = data.get("index")
        if kind == "content_block_start" and isinstance(index, int):
            blocks[index] = dict(data.get("content_block") or {})
        elif kind == "content_block_delta" and isinstance(index, int):
            block, delta = blocks.setdefault(index, {}), data.get("delta") or {}
            for src, dst in (("text", "text"), ("thinking", "thinking"), ("partial_json", "input")):
                if isinstance(delta.get(src), str):
                    before = block.get(dst)
                    block[dst] = (before if isinstance(before, str) else "") + delta[src]
        elif kind == "response.output_text.delta" and isinstance(data.get("delta"), str):
            block = blocks.setdefault(0, {"type": "output_text", "text": ""})
            block["text"] = block.get("text", "") + data["delta"]
        elif kind == "message_delta":
            stop = (data.get("delta") or {}).get("stop_reason")
    if not blocks:
        return None
    out: dict[str, Any] = {"content": [blocks[i] for i in sorted(blocks)]}
    if stop:
        out["stop_reason"] = stop
    return _json_text(masked(out))


class BodyLog:
    """This process's view of the body-logging settings, and what stores a request's bodies."""

    def __init__(self, sink: RequestLogSink, *, max_bytes: int = 65536) -> None:
        self.sink = sink
        self.max_bytes = max_bytes
        self.enabled = False  # read on the request path: nothing else is, when off
        self.retention_days = 7.0

    def apply(self, site: SiteSettings) -> None:
        if site.body_logging != self.enabled:
            log.info("body logging %s", "on" if site.body_logging else "off")
        self.enabled = site.body_logging and site.body_retention_days > 0
        self.retention_days = site.body_retention_days

    async def refresh(self, engine: Engine, defaults: Settings) -> None:
        async with engine.connect() as conn:
            self.apply(await load_site_settings(conn, defaults))

    async def sweep(self, engine: Engine) -> int:
        """Delete the bodies older than the retention period (on every instance: idempotent)."""
        cutoff = datetime.now(UTC) - timedelta(days=self.retention_days)
        async with engine.begin() as conn:
            return await sweep_bodies(conn, older_than=cutoff)

    def record(self, *, inference_id: str, account_id: int, raw: bytes | None, answer: Any) -> None:
        """Queue one request's bodies (``answer``: a whole answer's payload, a stream's payloads, or
        None for a request that failed before answering). Never raises: a body that cannot be
        stored is logged and skipped, and the request goes on."""
        try:
            request, request_cut = (
                bounded(request_text(raw, self.max_bytes), self.max_bytes) if raw else (None, False)
            )
            text = answer_text(answer) if answer is not None else None
            response, response_cut = bounded(text, self.max_bytes) if text is not None else (None, False)
        except Exception:
            log.exception("request %s: its bodies could not be read; not stored", inference_id)
            return
        row = {
            "inference_id": inference_id,
            "account_id": account_id,
            "request": request,
            "response": response,
            "request_truncated": request_cut,
            "response_truncated": response_cut,
            "created_at": datetime.now(UTC),
        }
        try:
            self.sink.record_body(row)
        except Exception:  # a closing writer: the request's own exit path must go on regardless
            log.warning("request %s: its bodies were not stored (the writer is closed)", inference_id)
