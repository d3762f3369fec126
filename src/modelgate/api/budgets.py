"""Budgets through the key API (docs/organisations.md): set one at the organisation, a project or a
member within a project, with its period, limit, alert thresholds and signed webhook; delete one.
A change revokes the cached keys it covers, on every instance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.accounts.service import get_or_create_account, normalise_email
from modelgate.api.admin_common import record
from modelgate.api.org_access import forbidden, in_range, is_manager, keys_under, revoke_keys, visible_project
from modelgate.api.service_query import json_response, parse_body, require_management
from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.errors import InvalidRequestError, NotFoundError
from modelgate.httpkit.contract import json_body, operation
from modelgate.httpkit.deps import CurrentKey, StateDep, text_parameters
from modelgate.mail.spend_alerts import SEAL_PURPOSE
from modelgate.mail.webhooks import new_secret, url_problem
from modelgate.store import budgets as budget_store
from modelgate.store import organisations as orgs
from modelgate.store.keys import KeyIdentity
from modelgate.store.secrets import seal
from modelgate.wire.organisations import BudgetBody

router = APIRouter(tags=["organisations"], dependencies=[Depends(text_parameters)])


async def _record_budget(
    conn: Any, ident: KeyIdentity, request: Request, project_id: int | None, budget: dict[str, Any]
) -> None:
    """A budget change: ``organization.updated`` or ``project.updated`` with ``changes_requested.
    budget`` (budgets are modelgate's extension; OpenAI's vocabulary has no budget event)."""
    if project_id is None:
        kind, resource = "organization.updated", f"org_{ident.account_id}"
    else:
        kind, resource = "project.updated", f"proj_{project_id}"
    await record(
        conn,
        ident,
        request,
        kind,
        project_id=project_id,
        resource_id=resource,
        details={"changes_requested": {"budget": budget}},
    )


@router.put("/v1/budgets", openapi_extra=operation(body=json_body(BudgetBody), extension=True))
async def put_budget(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    require_management(ident)
    body = await parse_body(request, BudgetBody)
    if body.member_email is not None and body.project_id is None:
        raise InvalidRequestError(
            "a member's budget is set within a project: give project_id", param="project_id"
        )
    if any(not 1 <= t <= 100 for t in body.alert_thresholds or []):
        raise InvalidRequestError("alert_thresholds are percentages from 1 to 100", param="alert_thresholds")
    webhook = body.alert_webhook or None
    if webhook is not None:
        problem = url_problem(webhook, refuse_private=state.settings.webhook_refuse_private)
        if problem is not None:
            raise InvalidRequestError(problem, param="alert_webhook", code="invalid_webhook_url")
    async with state.db.engine.begin() as conn:
        member = None
        if body.project_id is None:
            if not is_manager(ident):
                raise forbidden("setting the organisation's budget")
        else:
            # A project's own budget: the organisation's managers; a member's: the project owner too.
            await visible_project(conn, ident, body.project_id, manage=body.member_email is not None)
            if body.member_email is None and not is_manager(ident):
                raise forbidden("setting a project's budget")
        if body.member_email is not None:
            member = await get_or_create_account(conn, email=normalise_email(body.member_email))
            if await orgs.org_role(conn, org_id=ident.account_id, account_id=member) is None:
                raise NotFoundError("No such member in this organisation", param="member_email")
        before = await budget_store.budget_at(
            conn, org_id=ident.account_id, project_id=body.project_id, member_id=member
        )
        budget_id = await budget_store.set_budget(
            conn,
            org_id=ident.account_id,
            project_id=body.project_id,
            member_id=member,
            period=body.period,
            limit_credits=round(body.limit_usd * CREDITS_PER_USD),
            alert_thresholds=body.alert_thresholds,
            alert_webhook=webhook,
        )
        budget: dict[str, Any] = {"id": budget_id, "period": body.period, "limit_usd": body.limit_usd}
        if member is not None:
            budget["member_id"] = f"user_{member}"
        await _record_budget(conn, ident, request, body.project_id, budget)
        secret = await webhook_secret(conn, budget_id, before, webhook)
        keys = await keys_under(conn, org=ident.account_id, project=body.project_id, member=member)
    await revoke_keys(state, keys)
    shown = {"alert_webhook_secret": secret} if secret is not None else {}
    return json_response({"data": {"id": budget_id, **shown}})


async def webhook_secret(
    conn: Any, budget_id: int, before: budget_store.BudgetRow | None, webhook: str | None
) -> str | None:
    """A webhook keeps its signing secret while its URL stays; a new URL gets a new secret, returned
    (shown this once); no webhook, no secret."""
    if webhook is None:
        await budget_store.set_webhook(conn, budget_id=budget_id, url=None, secret_sealed=None)
        return None
    if before is not None and before.alert_webhook == webhook and before.alert_webhook_secret:
        await budget_store.set_webhook(
            conn, budget_id=budget_id, url=webhook, secret_sealed=before.alert_webhook_secret
        )
        return None
    secret = new_secret()
    sealed = await seal(conn, secret, purpose=SEAL_PURPOSE)
    await budget_store.set_webhook(conn, budget_id=budget_id, url=webhook, secret_sealed=sealed)
    return secret


@router.delete("/v1/budgets/{budget_id}", openapi_extra=operation(extension=True))
async def delete_budget(request: Request, ident: CurrentKey, state: StateDep, budget_id: int) -> Response:
    require_management(ident)
    if not is_manager(ident):
        raise forbidden("deleting budgets")
    async with state.db.engine.begin() as conn:
        found = await budget_store.get_budget(conn, budget_id=budget_id) if in_range(budget_id) else None
        if found is None or found[0] != ident.account_id:
            raise NotFoundError(f"No budget with id {budget_id}", param="budget_id", code="budget_not_found")
        keys = await keys_under(conn, org=found[0], project=found[1], member=found[2])
        await budget_store.delete_budget(conn, org_id=ident.account_id, budget_id=budget_id)
        await _record_budget(conn, ident, request, found[1], {"id": budget_id, "deleted": True})
    await revoke_keys(state, keys)
    return json_response({"data": {"id": budget_id, "deleted": True}})
