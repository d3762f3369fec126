"""OpenAI's Admin API spend limits and spend alerts on modelgate's budgets (docs/admin-api.md):

- ``/organization/spend_limit``, ``/organization/projects/{id}/spend_limit``: the organisation's or
  project's budget (docs/organisations.md), in whole cents per month. A budget set per day or week
  with ``PUT /v1/budgets`` reads with that interval; ``POST`` makes it monthly.
- ``/organization/spend_alerts``, ``/organization/projects/{id}/spend_alerts``: amount thresholds
  on the level's monthly spend, mailed to their recipients and posted to the budget's webhook like its
  percentage thresholds. A level with no budget gets a counting one, which limits nothing.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.api import admin_common as common
from modelgate.api.service_query import json_response, parse_body
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.errors import NotFoundError
from modelgate.httpkit.contract import json_body, operation, query
from modelgate.httpkit.deps import AppState, CurrentKey, StateDep, text_parameters
from modelgate.store import admin_directory as directory
from modelgate.store import budgets as budget_store
from modelgate.store import spend_rules as rules
from modelgate.store.keys import KeyIdentity
from modelgate.store.ledger import period_key
from modelgate.store.spend_alerts import NO_LIMIT
from modelgate.wire.spend import SpendLimitBody

router = APIRouter(tags=["admin"], dependencies=[Depends(text_parameters)])
ORG = "/v1/organization"
PROJECT = "/v1/organization/projects/{project_id}"
CENT = CREDITS_PER_USD // 100
_ALERT = re.compile(r"^alert_([0-9]{1,10})$")
LIST_PARAMS = [
    query("limit", {"type": "integer", "minimum": 0, "maximum": 100, "default": 20}),
    query("order", {"type": "string", "enum": ["asc", "desc"], "default": "asc"}),
    query("after", {"type": "string", "maxLength": 40}, description="the last id of the previous page"),
    query("before", {"type": "string", "maxLength": 40}, description="the first id of the next page"),
]


async def level(state: AppState, ident: KeyIdentity, raw: str | None, *, manage: bool) -> int | None:
    """The project named by ``raw`` (None: the organisation), checked for the caller."""
    common.admin_caller(ident)
    if manage:
        common.require_manager(ident, "changing spend limits and alerts")
    if raw is None:
        return None
    async with state.db.engine.connect() as conn:
        row = await directory.project_row(conn, project_id=common.parse_id(raw, "proj", param="project_id"))
    return common.visible(ident, row, raw).id


async def keys_to_revoke(state: AppState, conn: Any, ident: KeyIdentity, project_id: int | None) -> list[int]:
    return await budget_store.keys_under(conn, org_id=ident.account_id, project_id=project_id, member_id=None)


async def revoke_all(state: AppState, keys: list[int]) -> None:
    for key_id in keys:
        await state.keys.revoke(key_id=key_id)


def kind_of(project_id: int | None) -> str:
    return "organization" if project_id is None else "project"


def cents(credits: int) -> int:
    return round(credits / CENT)


async def record_change(
    conn: Any, ident: KeyIdentity, request: Request, project_id: int | None, change: Any
) -> None:
    kind = "organization.updated" if project_id is None else "project.updated"
    resource = f"org_{ident.account_id}" if project_id is None else f"proj_{project_id}"
    await common.record(
        conn,
        ident,
        request,
        kind,
        project_id=project_id,
        resource_id=resource,
        details={"changes_requested": change},
    )


# Spend limits


async def _limit_object(conn: Any, project_id: int | None, b: budget_store.BudgetRow) -> dict[str, Any]:
    spent, _held = await budget_store.bucket_spend(conn, budget_id=b.id, period=period_key(b.period))
    return {
        "object": f"{kind_of(project_id)}.spend_limit",
        "threshold_amount": cents(b.limit_credits),
        "currency": "USD",
        "interval": b.period,
        "enforcement": {"status": "enforcing" if spent >= b.limit_credits else "inactive"},
    }


async def _get_limit(state: AppState, ident: KeyIdentity, project_id: int | None) -> Response:
    async with state.db.engine.connect() as conn:
        b = await budget_store.budget_at(conn, org_id=ident.account_id, project_id=project_id)
        if b is None or b.limit_credits >= NO_LIMIT:
            raise NotFoundError(
                f"This {kind_of(project_id)} has no spend limit", code="spend_limit_not_found"
            )
        return json_response(await _limit_object(conn, project_id, b))


async def _set_limit(
    request: Request, state: AppState, ident: KeyIdentity, project_id: int | None
) -> Response:
    body = await parse_body(request, SpendLimitBody)
    limit = body.threshold_amount * CENT
    async with state.db.engine.begin() as conn:
        b = await budget_store.budget_at(conn, org_id=ident.account_id, project_id=project_id)
        if b is None:
            await budget_store.set_budget(
                conn, org_id=ident.account_id, project_id=project_id, period="month", limit_credits=limit
            )
        else:
            await budget_store.set_limit(conn, budget_id=b.id, period="month", limit_credits=limit)
        await record_change(
            conn, ident, request, project_id, {"spend_limit": {"threshold_amount": body.threshold_amount}}
        )
        b = await budget_store.budget_at(conn, org_id=ident.account_id, project_id=project_id)
        assert b is not None
        answer = await _limit_object(conn, project_id, b)
        keys = await keys_to_revoke(state, conn, ident, project_id)
    await revoke_all(state, keys)
    return json_response(answer)


async def _delete_limit(
    request: Request, state: AppState, ident: KeyIdentity, project_id: int | None
) -> Response:
    async with state.db.engine.begin() as conn:
        b = await budget_store.budget_at(conn, org_id=ident.account_id, project_id=project_id)
        if b is None or b.limit_credits >= NO_LIMIT:
            raise NotFoundError(
                f"This {kind_of(project_id)} has no spend limit", code="spend_limit_not_found"
            )
        if await rules.count_rules(conn, budget_id=b.id):  # its spend alerts keep counting
            await budget_store.set_limit(conn, budget_id=b.id, period=b.period, limit_credits=NO_LIMIT)
        else:
            await budget_store.delete_budget(conn, org_id=ident.account_id, budget_id=b.id)
        await record_change(conn, ident, request, project_id, {"spend_limit": None})
        keys = await keys_to_revoke(state, conn, ident, project_id)
    await revoke_all(state, keys)
    return json_response({"object": f"{kind_of(project_id)}.spend_limit.deleted", "deleted": True})


@router.get(ORG + "/spend_limit")
async def get_org_limit(ident: CurrentKey, state: StateDep) -> Response:
    await level(state, ident, None, manage=False)
    return await _get_limit(state, ident, None)


@router.post(ORG + "/spend_limit", openapi_extra=operation(body=json_body(SpendLimitBody)))
async def set_org_limit(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    await level(state, ident, None, manage=True)
    return await _set_limit(request, state, ident, None)


@router.delete(ORG + "/spend_limit")
async def delete_org_limit(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    await level(state, ident, None, manage=True)
    return await _delete_limit(request, state, ident, None)


@router.get(PROJECT + "/spend_limit")
async def get_project_limit(ident: CurrentKey, state: StateDep, project_id: str) -> Response:
    return await _get_limit(state, ident, await level(state, ident, project_id, manage=False))


@router.post(PROJECT + "/spend_limit", openapi_extra=operation(body=json_body(SpendLimitBody)))
async def set_project_limit(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str
) -> Response:
    return await _set_limit(request, state, ident, await level(state, ident, project_id, manage=True))


@router.delete(PROJECT + "/spend_limit")
async def delete_project_limit(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str
) -> Response:
    return await _delete_limit(request, state, ident, await level(state, ident, project_id, manage=True))
