"""OpenAI's Admin API: the organisation's audit log (``GET /v1/organization/audit_logs``,
docs/admin-api.md). Events are the management changes store/audit.py records, made through the
Admin API, the organisations and keys APIs, the web pages and the console; newest first, named
``audit_log-<n>``; an organisation's admin key sees its own organisation's events only."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.api import admin_common as common
from modelgate.api.admin_usage import LATEST, ids, many
from modelgate.api.service_query import int_param, json_response, single
from modelgate.errors import InvalidRequestError
from modelgate.httpkit.contract import operation, query
from modelgate.httpkit.deps import CurrentKey, StateDep, text_parameters
from modelgate.store import audit as audit_store

router = APIRouter(tags=["admin"], dependencies=[Depends(text_parameters)])
_EVENT = re.compile(r"^audit_log-([0-9]{1,10})$")
_USER = re.compile(r"^user_([0-9]{1,10})$")
BOUNDS = ("gt", "gte", "lt", "lte")


def _event_id(request: Request, name: str) -> int | None:
    raw = single(request, name)
    if raw is None:
        return None
    m = _EVENT.match(raw)
    if m is None:
        raise InvalidRequestError(f"{name} must be an event id like audit_log-12", param=name)
    return min(int(m.group(1)), common.MAX_ROW_ID + 1)


def _effective_at(request: Request) -> tuple[datetime | None, datetime | None]:
    """``effective_at[gt]=…`` (the SDK) or ``gt=…`` (the document's exploded object): the
    half-open window ``[since, until)`` in whole seconds."""
    since: int | None = None
    until: int | None = None
    for bound in BOUNDS:
        for name in (f"effective_at[{bound}]", bound):
            if single(request, name) is None:
                continue
            value = int_param(request, name, default=0, low=0, high=LATEST)
            if bound in ("gt", "gte"):
                low = value + (bound == "gt")
                since = low if since is None else max(since, low)
            else:
                high = value + (bound == "lte")
                until = high if until is None else min(until, high)
    return (
        datetime.fromtimestamp(since, UTC) if since is not None else None,
        datetime.fromtimestamp(until, UTC) if until is not None else None,
    )


def _actor(row: audit_store.EventRow) -> dict[str, Any]:
    user: dict[str, Any] = {"email": row.actor_email}
    if row.actor_id is not None:
        user["id"] = f"user_{row.actor_id}"
    if row.actor_key is not None:
        return {"type": "api_key", "api_key": {"id": row.actor_key, "type": "user", "user": user}}
    session: dict[str, Any] = {"user": user}
    if row.actor_ip is not None:
        session["ip_address"] = row.actor_ip
    return {"type": "session", "session": session}


def event_object(row: audit_store.EventRow) -> dict[str, Any]:
    when = row.created_at if row.created_at.tzinfo is not None else row.created_at.replace(tzinfo=UTC)
    out: dict[str, Any] = {
        "id": f"audit_log-{row.id}",
        "type": row.type,
        "effective_at": int(when.timestamp()),
        "actor": _actor(row),
        row.type: row.details,
    }
    if row.project_id is not None:
        out["project"] = {"id": f"proj_{row.project_id}", "name": row.project_name or ""}
    return out


PARAMS = [
    query("effective_at[gt]", {"type": "integer", "minimum": 0}),
    query("effective_at[gte]", {"type": "integer", "minimum": 0}),
    query("effective_at[lt]", {"type": "integer", "minimum": 0}),
    query("effective_at[lte]", {"type": "integer", "minimum": 0}),
    *(
        query(name, {"type": "string", "maxLength": 200}, many=True)
        for name in ("project_ids[]", "event_types[]", "actor_ids[]", "actor_emails[]", "resource_ids[]")
    ),
    query("tenant_only", {"type": "boolean"}),
    query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
    query("after", {"type": "string", "maxLength": 40}, description="the last id of the previous page"),
    query("before", {"type": "string", "maxLength": 40}, description="the first id of the next page"),
]


@router.get("/v1/organization/audit_logs", openapi_extra=operation(params=PARAMS))
async def list_audit_logs(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    common.admin_caller(ident)
    common.require_manager(ident, "reading the audit log")
    limit = int_param(request, "limit", default=20, low=1, high=100)
    after, before = _event_id(request, "after"), _event_id(request, "before")
    since, until = _effective_at(request)
    tenant_only = single(request, "tenant_only")
    if tenant_only not in (None, "true", "false"):
        raise InvalidRequestError("tenant_only must be true or false", param="tenant_only")
    actors = many(request, "actor_ids")
    accounts = [int(m.group(1)) for a in actors if (m := _USER.match(a)) is not None]
    f = audit_store.EventFilter(
        org_id=ident.account_id,
        project_ids=ids(request, "project_ids", "proj"),
        types=many(request, "event_types"),
        actor_accounts=[min(a, common.MAX_ROW_ID) for a in accounts],
        actor_keys=[a for a in actors if _USER.match(a) is None],
        actor_emails=many(request, "actor_emails"),
        resource_ids=many(request, "resource_ids"),
        since=since,
        until=until,
    )
    rows: list[audit_store.EventRow] = []
    # modelgate records no tenant-scoped events (roles bound to resources): tenant_only finds none.
    if tenant_only != "true":
        async with state.db.engine.connect() as conn:
            rows = await audit_store.org_events(conn, f, limit=limit + 1, after=after, before=before)
    if before is not None and after is None and len(rows) > limit:
        rows = rows[-limit - 1 :]  # the events just newer than ``before``, newest first
        has_more = True
        shown = rows[1:]
    else:
        has_more = len(rows) > limit
        shown = rows[:limit]
    data = [event_object(r) for r in shown]
    return json_response(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }
    )
