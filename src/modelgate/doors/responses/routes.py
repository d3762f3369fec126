"""Stored Responses API answers: ``GET`` / ``DELETE /v1/responses/{id}``,
``GET /v1/responses/{id}/input_items`` (paginated) and ``POST /v1/responses/{id}/cancel``.

Only the owning account sees its responses (any other id is a 404, as an unknown one). Background
responses are not supported, so nothing can be cancelled: ``cancel`` answers a clear 400 for a
response that exists. Errors use the OpenAI-compatible envelope of ``httpkit/errors.py``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query
from starlette.responses import Response

from modelgate.doors.responses.state import response_store
from modelgate.errors import InvalidRequestError, NotFoundError
from modelgate.gateway.admission import check_key
from modelgate.httpkit.deps import CurrentKey, StateDep

router = APIRouter(tags=["responses"])

_JSON = "application/json"


def _not_found(response_id: str) -> NotFoundError:
    return NotFoundError(f"Response with id '{response_id}' not found.", param="response_id")


@router.get("/v1/responses/{response_id}")
async def retrieve_response(
    response_id: str,
    state: StateDep,
    ident: CurrentKey,
    stream: bool = False,
) -> Response:
    check_key(ident, "model:chat")
    if stream:
        raise InvalidRequestError(
            "stream: replaying a response as a stream needs background responses, which this gateway "
            "does not support; retrieve it without stream",
            param="stream",
        )
    body = await response_store(state).get(
        account_id=ident.account_id, response_id=response_id, project_id=ident.scope_project
    )
    if body is None:
        raise _not_found(response_id)
    return Response(body, media_type=_JSON)


@router.delete("/v1/responses/{response_id}")
async def delete_response(response_id: str, state: StateDep, ident: CurrentKey) -> Response:
    check_key(ident, "model:chat")
    if not await response_store(state).delete(
        account_id=ident.account_id, response_id=response_id, project_id=ident.scope_project
    ):
        raise _not_found(response_id)
    body = {"id": response_id, "object": "response", "deleted": True}
    return Response(orjson.dumps(body), media_type=_JSON)


@router.get("/v1/responses/{response_id}/input_items")
async def list_input_items(
    response_id: str,
    state: StateDep,
    ident: CurrentKey,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    check_key(ident, "model:chat")
    page = await response_store(state).input_items(
        account_id=ident.account_id,
        response_id=response_id,
        limit=limit,
        order=order,
        after=after,
        project_id=ident.scope_project,
    )
    if page is None:
        raise _not_found(response_id)
    items, has_more = page
    body = {
        "object": "list",
        "data": [_listed(item) for item in items],
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }
    return Response(orjson.dumps(body), media_type=_JSON)


@router.post("/v1/responses/{response_id}/cancel")
async def cancel_response(response_id: str, state: StateDep, ident: CurrentKey) -> Response:
    check_key(ident, "model:chat")
    if (
        await response_store(state).get(
            account_id=ident.account_id, response_id=response_id, project_id=ident.scope_project
        )
        is None
    ):
        raise _not_found(response_id)
    raise InvalidRequestError(
        "Only background responses can be cancelled, and this gateway does not run background "
        "responses: every response is already finished when its request returns.",
        param="response_id",
        code="not_cancellable",
    )


def _listed(item: dict[str, object]) -> dict[str, object]:
    """An input item as OpenAI lists it: messages with a status and their content as parts."""
    if item.get("type") != "message":
        return item
    content = item.get("content")
    if isinstance(content, str):
        kind = "output_text" if item.get("role") == "assistant" else "input_text"
        part: dict[str, object] = {"type": kind, "text": content}
        if kind == "output_text":
            part["annotations"] = []
        content = [part]
    return {**item, "content": content, "status": item.get("status", "completed")}
