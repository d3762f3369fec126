"""The Responses door's state (``store``: true), beside the door: the conversation and the items a
request names (``previous_response_id``, ``item_reference``), read before it is metered, and the
finished response kept (``store/responses.py``) before the client sees its end.

Tenant isolation: every id in a request that names stored state is checked against the caller's
own account before anything goes upstream, on every route. An unknown or foreign
``previous_response_id`` or ``item_reference`` is a 404; a pass-through route never receives an
``item_reference`` (the door sends the caller's own copy of the item instead), and a ``reasoning``
item that names upstream state by id alone (no ``encrypted_content``) is only sent on when that id is
one of the account's own stored outputs. The upstream resolves ids under the operator's one key, so
an id forwarded unchecked would read another account's items.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import orjson

from modelgate.doors.responses.wire import ResponsesRequest
from modelgate.errors import NotFoundError
from modelgate.gateway.metered import Caller
from modelgate.store.responses import Chain, ResponseRecord, ResponseStore, item_id_of

if TYPE_CHECKING:
    from modelgate.httpkit.deps import AppState

log = logging.getLogger("modelgate.api")


def response_store(state: AppState) -> ResponseStore:
    store = state.extras.get("responses")
    if not isinstance(store, ResponseStore):
        store = ResponseStore(
            state.db.engine,
            retention_days=state.settings.responses_retention_days,
            timeout=state.settings.database_timeout,
        )
        state.extras["responses"] = store
    return store


async def context(
    store: ResponseStore, rr: ResponsesRequest, caller: Caller
) -> tuple[Chain | None, dict[str, dict[str, Any]], frozenset[str]]:
    """The stored conversation behind ``previous_response_id``, the items ``input`` references
    (each must be the caller's own: 404 otherwise), and which ``reasoning`` items given by id alone
    are the caller's own stored outputs."""
    account = caller.ident.account_id
    project = caller.ident.scope_project  # a project member sees its project's responses only
    chain = None
    if rr.previous_response_id is not None:
        if store.enabled:
            chain = await store.chain(
                account_id=account, response_id=rr.previous_response_id, project_id=project
            )
        if chain is None:
            raise NotFoundError(
                f"Previous response with id '{rr.previous_response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
    ids = [i["id"] for i in rr.items if i.get("type") == "item_reference" and isinstance(i.get("id"), str)]
    refs = await store.items(account_id=account, ids=ids, project_id=project) if ids and store.enabled else {}
    for n, item in enumerate(rr.items):
        if item.get("type") == "item_reference":
            ref = item.get("id")
            if not isinstance(ref, str) or ref not in refs:
                raise NotFoundError(f"input[{n}]: item with id {ref!r} not found", param=f"input[{n}].id")
    named = [i["id"] for i in rr.items if names_stored_reasoning(i)]
    owned = (
        await store.items(account_id=account, ids=named, outputs_only=True, project_id=project)
        if named and store.enabled
        else {}
    )
    return chain, refs, frozenset(owned)


def names_stored_reasoning(item: dict[str, Any]) -> bool:
    """A ``reasoning`` item given by its id alone: the upstream would read it from its own store."""
    return (
        item.get("type") == "reasoning"
        and isinstance(item.get("id"), str)
        and not item.get("encrypted_content")
    )


def _input_records(
    req: ResponsesRequest, refs: dict[str, dict[str, Any]], rid: str
) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for i, item in enumerate(req.items):
        ref = item.get("id") if item.get("type") == "item_reference" else None
        if isinstance(ref, str) and ref in refs:
            item = refs[ref]
        if "type" not in item:
            item = {"type": "message", **item}
        prefix = {"message": "msg", "function_call_output": "fco"}.get(str(item.get("type")), "item")
        out.append((item_id_of(item, f"{prefix}_{rid}_in{i}"), item))
    return out


class Keeper:
    """Stores a finished response (``store``: true) before the client sees its end."""

    def __init__(
        self,
        state: AppState,
        store: ResponseStore,
        rr: ResponsesRequest,
        caller: Caller,
        chain: Chain | None,
        refs: dict[str, dict[str, Any]],
    ) -> None:
        self.state, self.store, self.rr, self.caller, self.chain, self.refs = (
            state,
            store,
            rr,
            caller,
            chain,
            refs,
        )

    async def save(
        self, body: bytes, provider: str, *, native: bool, obj: dict[str, Any] | None = None
    ) -> None:
        try:
            data = obj if obj is not None else orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        rid = data.get("id") if isinstance(data, dict) else None
        if not isinstance(rid, str) or not 0 < len(rid) <= 128:  # an upstream's id that does not fit
            return
        ident = self.caller.ident
        found = self.state.catalog.find(self.rr.model)
        output = data.get("output")
        rec = ResponseRecord(
            id=rid,
            account_id=ident.account_id,
            key_id=ident.key_id,
            model=found.id if found is not None else self.rr.model,
            provider=provider,
            native=native,
            previous_response_id=self.rr.previous_response_id,
            thread_id=self.chain.thread_id if self.chain is not None else rid,
            body=body,
            inputs=_input_records(self.rr, self.refs, self.caller.inference_id),
            outputs=[i for i in output if isinstance(i, dict)] if isinstance(output, list) else [],
        )
        try:
            # Queued now, in the loop iteration of the settle its request just queued: on a batched
            # writer both commit in one statement, which the answer then waits for.
            saved = self.store.queue(rec)
        except Exception:
            log.exception("storing response %s failed", rec.id)
            return
        if isinstance(saved, asyncio.Future):  # a writer's: the write goes on if this is cancelled
            try:
                await saved
            except Exception:
                log.exception("storing response %s failed", rec.id)
            return
        task = self.state.core.spawn(_save_logged(saved, rec.id))
        await asyncio.shield(task)


async def _save_logged(saved: Awaitable[None], response_id: str) -> None:
    try:
        await saved
    except Exception:
        log.exception("storing response %s failed", response_id)
