"""OpenAI's Admin API: costs (``GET /v1/organization/costs``, docs/admin-api.md): the ledger's
model-usage charges per day in USD, exactly (1 USD = 2,000,000 credits), grouped in SQL
(store/usage.py ``cost_buckets``) by project, key and line item (the model charged)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.api import admin_common as common
from modelgate.api import admin_usage as u
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.httpkit.contract import operation
from modelgate.httpkit.deps import CurrentKey, StateDep, text_parameters
from modelgate.store import usage as usage_store

router = APIRouter(tags=["admin"], dependencies=[Depends(text_parameters)])


@router.get("/v1/organization/costs", openapi_extra=operation(params=u.params(None)))
async def costs(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    """The ledger's model-usage charges per day, in USD (1 USD = 2,000,000 credits, exactly)."""
    common.admin_caller(ident)
    win = u.window(request, widths=("1d",), limits=(7, 180))
    groups = u.group_by(request, u.COST_GROUPS)
    projects = u.scope(ident, u.ids(request, "project_ids", "proj"))
    keys = u.ids(request, "api_key_ids", "key")
    results: dict[int, list[dict[str, Any]]] = {}
    if win.count:
        async with state.db.engine.connect() as conn:
            rows = await usage_store.cost_buckets(
                conn,
                org_id=ident.account_id,
                since=win.since,
                until=win.until,
                start=win.first,
                width=win.width,
                project_ids=projects,
                key_ids=keys,
                group_by=groups,
            )
        for r in sorted(rows, key=lambda r: repr([r.get(g) for g in ("bucket", *groups)])):
            result: dict[str, Any] = {
                "object": "organization.costs.result",
                "amount": {"value": float(Decimal(int(r["credits"])) / CREDITS_PER_USD), "currency": "usd"},
                "line_item": r.get("line_item"),
                "project_id": f"proj_{r['project_id']}" if r.get("project_id") is not None else None,
            }
            if "api_key_id" in groups:
                result["api_key_id"] = (
                    common.key_ref(r["api_key_id"]) if r.get("api_key_id") is not None else None
                )
            results.setdefault(int(r["bucket"]), []).append(result)
    return u.page(win, results)
