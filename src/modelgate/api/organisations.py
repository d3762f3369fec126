"""Organisations, projects, members and budgets through the key API (docs/organisations.md).

The caller is the member a key belongs to, acting in the key's organisation: owners and admins manage
everything in it; a project owner manages its project (allow-list, rate limits, members, members'
budgets); other members and the billing role read. A member of one project never sees another
project's keys, budgets or spend (``KeyIdentity.scope_project``). Every change that alters what a
key may do or spend revokes the cached keys it covers, on every instance.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.accounts.service import get_or_create_account, normalise_email
from modelgate.api.admin_common import record
from modelgate.api.org_access import forbidden, is_manager, keys_under, revoke_keys, visible_project
from modelgate.api.service_query import json_response, parse_body, require_management
from modelgate.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from modelgate.httpkit.contract import json_body, operation
from modelgate.httpkit.deps import CurrentKey, StateDep, text_parameters
from modelgate.store import budgets as budget_store
from modelgate.store import organisations as orgs
from modelgate.store import spend_alerts as alert_store
from modelgate.store.accounts import get_account
from modelgate.store.key_rows import get_key
from modelgate.store.ledger import period_key
from modelgate.wire.organisations import BillingBody, MemberBody, ProjectBody
from modelgate.wire.service import iso, usd

router = APIRouter(tags=["organisations"], dependencies=[Depends(text_parameters)])


def _budget_view(b: budget_store.BudgetInfo) -> dict[str, Any]:
    used = b.spent_credits + b.held_credits
    pct = 100 * used / b.limit_credits if b.limit_credits else 100.0  # ~0 for a counting budget
    return {
        "id": b.id,
        "level": b.level,
        "project_id": b.project_id,
        "member_id": b.member_id,
        "period": b.period,
        "limit_usd": _limit_usd(b.limit_credits),
        "spent_usd": usd(b.spent_credits),
        "held_usd": usd(b.held_credits),
        "alert_thresholds": b.alert_thresholds,
        "alert_webhook": b.alert_webhook,
        "alerts": [t for t in (b.alert_thresholds or []) if pct >= t],  # thresholds crossed this period
    }


def _limit_usd(credits: int) -> float | None:
    """A budget's limit; None for a counting budget (OpenAI's spend alerts with no limit)."""
    return None if credits >= alert_store.NO_LIMIT else usd(credits)


def alert_view(a: alert_store.AlertRow) -> dict[str, Any]:
    """An alert raised, as ``GET /v1/organisation`` lists it (newest first)."""
    return {
        "id": f"spendalert_{a.id}",
        "level": a.level,
        "project_id": a.project_id,
        "member_id": a.member_id,
        "key_id": a.key_id,
        "period": a.period,
        "threshold_percent": a.threshold_percent,
        "threshold_usd": usd(a.threshold_credits),
        "limit_usd": usd(a.limit_credits) if a.limit_credits is not None else None,
        "spent_usd": usd(a.spent_credits),
        "created_at": iso(a.created_at),
        "webhook": {"state": a.webhook_state, "attempts": a.webhook_attempts} if a.webhook_state else None,
    }


def _project_view(p: orgs.ProjectInfo) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "default": p.is_default,
        "allowed_models": p.allowed_models,
        "rpm": p.rpm,
        "tpm": p.tpm,
    }


def _renamed(changes: dict[str, Any]) -> dict[str, Any]:
    """A project change as OpenAI's ``project.updated`` names it (the name is its ``title``)."""
    return {("title" if k == "name" else k): v for k, v in changes.items()}


@router.get("/v1/organisation", openapi_extra=operation(extension=True))
async def organisation(ident: CurrentKey, state: StateDep) -> Response:
    """The key's organisation as its caller may see it: projects, budgets and their spend."""
    async with state.db.engine.connect() as conn:
        member = ident.member_id or ident.account_id
        mine = {m.org_id: m for m in await orgs.memberships(conn, account_id=member)}
        info = mine.get(ident.account_id)
        projects = await orgs.visible_projects(conn, org_id=ident.account_id, account_id=member)
        if ident.scope_project is not None:
            projects = [p for p in projects if p.id == ident.scope_project]
        seen = [p.id for p in projects]
        budgets = await budget_store.list_budgets(
            conn,
            org_id=ident.account_id,
            bucket=period_key,
            project_ids=seen if ident.scope_project is not None else None,
        )
        alerts = await alert_store.recent_alerts(
            conn, org_id=ident.account_id, project_ids=seen if ident.scope_project is not None else None
        )
    return json_response(
        {
            "data": {
                "id": ident.account_id,
                "name": info.name if info else None,
                "personal": info.personal if info else None,
                "billing": "postpaid" if info and info.postpaid else "prepaid",
                "role": ident.org_role,
                "project_id": ident.project_id,
                "projects": [_project_view(p) for p in projects],
                "budgets": [_budget_view(b) for b in budgets],
                "recent_alerts": [alert_view(a) for a in alerts],
            }
        }
    )


@router.post("/v1/projects", openapi_extra=operation(body=json_body(ProjectBody), extension=True))
async def create_project(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    require_management(ident)
    if not is_manager(ident):
        raise forbidden("creating projects")
    body = await parse_body(request, ProjectBody)
    if body.name is None:
        raise InvalidRequestError("name is required", param="name")
    async with state.db.engine.begin() as conn:
        pid = await orgs.create_project(
            conn,
            org_id=ident.account_id,
            name=body.name,
            owner_id=ident.member_id,
            allowed_models=body.allowed_models,
            rpm=body.rpm,
            tpm=body.tpm,
        )
        await record(
            conn,
            ident,
            request,
            "project.created",
            project_id=pid,
            resource_id=f"proj_{pid}",
            details={"data": {"name": body.name}},
        )
        created = await orgs.project_of(conn, project_id=pid)
    assert created is not None
    return json_response({"data": _project_view(created)})


@router.patch(
    "/v1/projects/{project_id}", openapi_extra=operation(body=json_body(ProjectBody), extension=True)
)
async def patch_project(request: Request, ident: CurrentKey, state: StateDep, project_id: int) -> Response:
    require_management(ident)
    body = await parse_body(request, ProjectBody)
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    if changes.get("name", "") is None:
        raise InvalidRequestError("name cannot be null", param="name")
    async with state.db.engine.begin() as conn:
        await visible_project(conn, ident, project_id, manage=True)
        await orgs.update_project(conn, project_id=project_id, **changes)
        await record(
            conn,
            ident,
            request,
            "project.updated",
            project_id=project_id,
            resource_id=f"proj_{project_id}",
            details={"changes_requested": _renamed(changes)},
        )
        updated = await orgs.project_of(conn, project_id=project_id)
        keys = await keys_under(conn, org=ident.account_id, project=project_id, member=None)
    await revoke_keys(state, keys)
    assert updated is not None
    return json_response({"data": _project_view(updated)})


@router.put("/v1/organisation/members", openapi_extra=operation(body=json_body(MemberBody), extension=True))
async def put_org_member(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    require_management(ident)
    if not is_manager(ident):
        raise forbidden("managing the organisation's members")
    body = await parse_body(request, MemberBody)
    if body.role not in orgs.ORG_ROLES:
        raise InvalidRequestError(f"role must be one of {', '.join(orgs.ORG_ROLES)}", param="role")
    if body.role == "owner" and ident.org_role != "owner":
        raise forbidden("naming owners")
    async with state.db.engine.begin() as conn:
        account = await get_or_create_account(conn, email=normalise_email(body.email))
        before = await orgs.org_role(conn, org_id=ident.account_id, account_id=account)
        await orgs.add_org_member(conn, org_id=ident.account_id, account_id=account, role=body.role)
        await record(
            conn,
            ident,
            request,
            "user.added" if before is None else "user.updated",
            resource_id=f"user_{account}",
            details={"data" if before is None else "changes_requested": {"role": body.role}},
        )
        keys = await keys_under(conn, org=ident.account_id, project=None, member=account)
    await revoke_keys(state, keys)
    return json_response({"data": {"member_id": account, "role": body.role}})


@router.put(
    "/v1/projects/{project_id}/members", openapi_extra=operation(body=json_body(MemberBody), extension=True)
)
async def put_project_member(
    request: Request, ident: CurrentKey, state: StateDep, project_id: int
) -> Response:
    require_management(ident)
    body = await parse_body(request, MemberBody)
    if body.role not in orgs.PROJECT_ROLES:
        raise InvalidRequestError(f"role must be one of {', '.join(orgs.PROJECT_ROLES)}", param="role")
    async with state.db.engine.begin() as conn:
        await visible_project(conn, ident, project_id, manage=True)
        account = await get_or_create_account(conn, email=normalise_email(body.email))
        if await orgs.org_role(conn, org_id=ident.account_id, account_id=account) is None:
            await orgs.add_org_member(conn, org_id=ident.account_id, account_id=account, role="member")
        before = await orgs.project_role(conn, project_id=project_id, account_id=account)
        await orgs.add_project_member(conn, project_id=project_id, account_id=account, role=body.role)
        await record(
            conn,
            ident,
            request,
            "user.added" if before is None else "user.updated",
            project_id=project_id,
            resource_id=f"user_{account}",
            details={"data" if before is None else "changes_requested": {"role": body.role}},
        )
    return json_response({"data": {"member_id": account, "project_id": project_id, "role": body.role}})


@router.get("/v1/keys/{prefix}/spend", openapi_extra=operation(extension=True))
async def key_spend(ident: CurrentKey, state: StateDep, prefix: str) -> Response:
    """A key's spend against each level it falls under, in each level's current period."""
    async with state.db.engine.connect() as conn:
        if prefix != ident.prefix and not ident.is_management:
            raise PermissionDeniedError(
                "A regular API key can only read its own spend.", code="key_prefix_forbidden"
            )
        rec = await get_key(conn, account_id=ident.account_id, prefix=prefix, project_id=ident.scope_project)
        if rec is None:
            raise NotFoundError(f"No API key with prefix {prefix!r}", param="prefix", code="key_not_found")
        scope = await budget_store.key_scope(
            conn, org_id=rec.account_id, project_id=rec.project_id, member_id=rec.member_id
        )
        levels = []
        for b in scope.budgets:
            spent, held = await budget_store.bucket_spend(conn, budget_id=b.id, period=period_key(b.period))
            levels.append(
                {
                    "level": b.level,
                    "period": b.period,
                    "limit_usd": _limit_usd(b.limit_credits),
                    "spent_usd": usd(spent),
                    "held_usd": usd(held),
                }
            )
        if rec.limit_credits is not None:
            spent, held = await budget_store.key_bucket_spend(
                conn, key_id=rec.id, period=period_key(rec.limit_retention)
            )
            levels.append(
                {
                    "level": "key",
                    "period": rec.limit_retention,
                    "limit_usd": usd(rec.limit_credits),
                    "spent_usd": usd(spent),
                    "held_usd": usd(held),
                }
            )
    return json_response({"data": {"prefix": rec.prefix, "project_id": rec.project_id, "levels": levels}})


@router.put("/v1/organisation/billing", openapi_extra=operation(body=json_body(BillingBody), extension=True))
async def put_billing(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    """Prepaid or postpaid: an operator's decision (a postpaid organisation spends without credits)."""
    require_management(ident)
    body = await parse_body(request, BillingBody)
    async with state.db.engine.begin() as conn:
        caller = await get_account(conn, account_id=ident.member_id or ident.account_id)
        if caller is None or not caller.is_admin:
            raise forbidden("changing how the organisation pays (operators only)")
        await orgs.set_postpaid(conn, org_id=ident.account_id, postpaid=body.mode == "postpaid")
        await record(
            conn,
            ident,
            request,
            "organization.updated",
            resource_id=f"org_{ident.account_id}",
            details={"changes_requested": {"billing_mode": body.mode}},
        )
    return json_response({"data": {"billing": body.mode}})
