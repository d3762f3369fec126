"""``POST /v1/responses/compact``: a long conversation compacted into the user's messages and one
opaque ``compaction`` item (OpenAI's ``CompactResource``), metered and charged as a model call.

- A route whose upstream speaks Responses natively passes the body through to its
  ``/responses/compact`` (as the door sends ``/responses``: model name replaced, the caller's own
  stored items in place of ids) and its answer back unchanged.
- Elsewhere the gateway compacts with the routed model: one non-streamed chat call with the
  conversation (``instructions``, ``previous_response_id``'s stored items, ``input``) and a final
  instruction to write a hand-off summary. The answer is every user message of the conversation,
  then ``{"type": "compaction", "id": "cmp_…", "encrypted_content": …}``.

The ``encrypted_content`` is the summary sealed (``store/secrets.py``: AES-256-GCM under the instance
secret ``compaction_key``, ``v1:`` + base64) with the caller's account as associated data: a client
cannot read another tenant's, forge one or alter one. Sent back as an input item on a translated
route it opens into a user message with the summary (``doors/responses/translate.py``); one that
does not open is a 400. A native route receives compaction items unchanged (the upstream's own).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from modelgate.doors.base import DoorResponse, NeverStreamed, answer_headers
from modelgate.doors.estimate import PER_MESSAGE
from modelgate.doors.rawjson import replace_top_level_string
from modelgate.doors.responses.estimate import prompt_upper_bound
from modelgate.doors.responses.render import usage_wire
from modelgate.doors.responses.translate import conversation
from modelgate.doors.tokens import text_tokens
from modelgate.gateway.metered import Attempt, Caller, MeteredRequest, Outcome
from modelgate.providers.base import Completion, Provider, RawReply, native
from modelgate.providers.openai_responses import COMPACT
from modelgate.store.secrets import SealError, instance_secret, seal_with, unseal_with
from modelgate.wire.chat import ChatRequest
from modelgate.wire.credits import meta

if TYPE_CHECKING:
    from modelgate.doors.responses.door import ResponsesInvocation
    from modelgate.httpkit.deps import AppState

KEY_NAME = "compaction_key"
# The summary's output cap (lowered to the model's maximum): a hand-off note, not an essay.
SUMMARY_MAX_TOKENS = 4096
PROMPT = (
    "You are performing a CONTEXT CHECKPOINT COMPACTION. Write a hand-off summary of the "
    "conversation so far for another assistant that will continue it without seeing it. Include: "
    "the user's goals, constraints and preferences; what has been done and the decisions made, with "
    "their reasons; results, data, names, file paths, code and references the work depends on; and "
    "what remains to be done, as clear next steps. Be concise and structured. Write only the summary."
)


async def compaction_key(state: AppState) -> bytes:
    key = state.extras.get(KEY_NAME)
    if key is None:
        key = state.extras[KEY_NAME] = await instance_secret(state.db.engine, KEY_NAME)
    return bytes(key)


def _purpose(account_id: int) -> str:
    return f"modelgate.responses.compaction:{account_id}"


def seal_summary(key: bytes, account_id: int, summary: str) -> str:
    return seal_with(key, orjson.dumps({"v": 1, "summary": summary}).decode(), purpose=_purpose(account_id))


def open_summary(key: bytes, account_id: int, sealed: str) -> str | None:
    """The summary inside ``sealed``; None when it does not open for this account."""
    try:
        data = orjson.loads(unseal_with(key, sealed, purpose=_purpose(account_id)))
    except (SealError, orjson.JSONDecodeError):
        return None
    summary = data.get("summary") if isinstance(data, dict) and data.get("v") == 1 else None
    return summary if isinstance(summary, str) else None


async def open_compactions(
    state: AppState, caller: Caller, items: Iterable[dict[str, Any]]
) -> dict[str, str | None]:
    """Each compaction item's ``encrypted_content`` -> its summary (None: not this account's, or
    altered). Empty, without touching the database, when there is none."""
    sealed = {
        i["encrypted_content"]
        for i in items
        if i.get("type") == "compaction" and isinstance(i.get("encrypted_content"), str)
    }
    if not sealed:
        return {}
    key = await compaction_key(state)
    return {s: open_summary(key, caller.ident.account_id, s) for s in sealed}


def _history(inv: ResponsesInvocation) -> list[dict[str, Any]]:
    return inv.chain.items if inv.chain is not None else []


def compaction_chat(inv: ResponsesInvocation) -> ChatRequest:
    """The conversation as chat, with the compaction instruction as its last user turn."""
    messages = conversation(inv.req, _history(inv), inv.refs, inv.summaries)
    messages.append({"role": "user", "content": PROMPT})
    return ChatRequest.model_validate({"model": inv.req.model, "messages": messages, "stream": False})


class CompactInvocation(NeverStreamed):
    __slots__ = ("inv",)
    unstreamed = "a compaction is never streamed"

    def __init__(self, inv: ResponsesInvocation) -> None:
        self.inv = inv

    async def complete(self, provider: Provider, attempt: Attempt) -> Outcome:
        nat = native(provider, COMPACT)
        if nat is not None:
            body = self.inv.body_for(attempt.route)
            reply = await nat.passthrough(COMPACT, body, {**self.inv.headers, **attempt.headers})
            return Outcome(reply, reply.usage, reply.finish)
        call = attempt.call(compaction_chat(self.inv))
        result = await provider.complete(call)
        finish = result.choices[0].get("finish_reason") if result.choices else None
        return Outcome(result, result.usage, finish)


def _user_messages(inv: ResponsesInvocation) -> list[dict[str, Any]]:
    """Every user message of the conversation, as output items (OpenAI keeps them as they were)."""
    out: list[dict[str, Any]] = []
    for item in [*_history(inv), *inv.req.items]:
        if item.get("type") == "item_reference" and isinstance(item.get("id"), str):
            item = inv.refs.get(item["id"], item)
        if item.get("type", "message") != "message" or item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            content = [{"type": "input_text", "text": content}]
        out.append({"type": "message", "role": "user", "content": content})
    return out


def _summary_text(result: Completion) -> str:
    message = result.choices[0].get("message") if result.choices else None
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def metered_compaction(inv: ResponsesInvocation, needs: frozenset[str]) -> MeteredRequest:
    rr = inv.req
    bound = prompt_upper_bound(rr, _history(inv), inv.refs) + PER_MESSAGE + text_tokens(PROMPT)
    return MeteredRequest(
        model=rr.model,
        invocation=CompactInvocation(inv),
        provider=rr.provider,
        max_tokens=SUMMARY_MAX_TOKENS,
        clamp_max_tokens=True,
        prompt_estimate=bound,
        needs=needs - {"streaming", "tools", "structured_output"},
    )


async def compact(
    state: AppState, inv: ResponsesInvocation, caller: Caller, needs: frozenset[str]
) -> DoorResponse:
    key = await compaction_key(state)  # before the call: the answer cannot fail once it is charged
    done = await state.core.complete(metered_compaction(inv, needs), caller)
    if isinstance(done.payload, RawReply):
        body = done.payload.body
        if b'"model"' in body:
            body = replace_top_level_string(body, "model", inv.req.model)
        return DoorResponse(200, answer_headers(done), body)
    rid = caller.inference_id
    sealed = seal_summary(key, caller.ident.account_id, _summary_text(done.payload))
    output = [*_user_messages(inv), {"type": "compaction", "id": f"cmp_{rid}", "encrypted_content": sealed}]
    obj = {
        "id": f"resp_{rid}",
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": output,
        "usage": usage_wire(done.usage),
        "meta": meta(done.credits),
    }
    return DoorResponse(200, answer_headers(done), orjson.dumps(obj))
