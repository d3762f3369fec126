"""OpenAI's Admin API spend alerts (``/organization/spend_alerts``,
``/organization/projects/{id}/spend_alerts``; docs/admin-api.md): an alert is an amount of its
level's monthly spend, kept on the level's budget (``store/spend_rules.py``) and raised like the
budget's percentage thresholds (``mail/spend_alerts.py``): once per month, mailed to its recipients,
posted to the budget's webhook, shown on the consoles."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.accounts.service import normalise_email
from modelgate.api.admin_common import MAX_ROW_ID
from modelgate.api.admin_spend import (
    CENT,
    LIST_PARAMS,
    ORG,
    PROJECT,
    cents,
    keys_to_revoke,
    kind_of,
    level,
    record_change,
    revoke_all,
)
from modelgate.api.service_query import int_param, json_response, parse_body, single
from modelgate.errors import InvalidRequestError, NotFoundError
from modelgate.httpkit.contract import json_body, operation
from modelgate.httpkit.deps import AppState, CurrentKey, StateDep, text_parameters
from modelgate.store import budgets as budget_store
from modelgate.store import spend_rules as rules
from modelgate.store.keys import KeyIdentity
from modelgate.store.spend_alerts import NO_LIMIT
from modelgate.wire.spend import SpendAlertBody

router = APIRouter(tags=["admin"], dependencies=[Depends(text_parameters)])


def _alert_id(raw: str, *, param: str = "alert_id") -> int:
    head, _, digits = raw.partition("_")
    if head != "alert" or not digits.isdigit() or len(digits) > 10 or int(digits) > MAX_ROW_ID:
        raise NotFoundError(f"No spend alert with id {raw[:60]!r}", param=param, code="spend_alert_not_found")
    return int(digits)


def _object(project_id: int | None, r: rules.RuleRow) -> dict[str, Any]:
    return {
        "id": f"alert_{r.id}",
        "object": f"{kind_of(project_id)}.spend_alert",
        "threshold_amount": cents(r.threshold_credits),
        "currency": "USD",
        "interval": "month",
        "notification_channel": {
            "type": "email",
            "recipients": r.recipients,
            "subject_prefix": r.subject_prefix,
        },
    }


def _recipients(body: SpendAlertBody) -> list[str]:
    out: list[str] = []
    for raw in body.notification_channel.recipients:
        try:
            email = normalise_email(raw)
        except InvalidRequestError:
            raise InvalidRequestError(
                f"{raw[:80]!r} is not an email address", param="notification_channel.recipients"
            ) from None
        if email not in out:
            out.append(email)
    return out


async def _rule(conn: Any, ident: KeyIdentity, project_id: int | None, raw: str) -> rules.RuleRow:
    """The alert ``raw`` of this level of the caller's organisation (404 otherwise)."""
    found = await rules.rule_of(conn, rule_id=_alert_id(raw))
    if found is None or found.org_id != ident.account_id or found.project_id != project_id or found.member_id:
        raise NotFoundError(
            f"No spend alert with id {raw[:60]!r}", param="alert_id", code="spend_alert_not_found"
        )
    return found


def _cursor(request: Request, name: str) -> int | None:
    raw = single(request, name)
    if raw is None:
        return None
    try:
        return _alert_id(raw, param=name)
    except NotFoundError:
        raise InvalidRequestError(f"{name} must be an id like alert_12", param=name) from None


async def _list(request: Request, state: AppState, ident: KeyIdentity, project_id: int | None) -> Response:
    limit = int_param(request, "limit", default=20, low=0, high=100)
    order = single(request, "order") or "asc"
    if order not in ("asc", "desc"):
        raise InvalidRequestError("order must be asc or desc", param="order")
    after, before = _cursor(request, "after"), _cursor(request, "before")
    async with state.db.engine.connect() as conn:
        b = await budget_store.budget_at(conn, org_id=ident.account_id, project_id=project_id)
        found = (
            await rules.rules_page(
                conn, budget_id=b.id, after=after, before=before, limit=limit + 1, desc=order == "desc"
            )
            if b is not None
            else []
        )
    shown = [_object(project_id, r) for r in found[:limit]]
    return json_response(
        {
            "object": "list",
            "data": shown,
            "first_id": shown[0]["id"] if shown else None,
            "last_id": shown[-1]["id"] if shown else None,
            "has_more": len(found) > limit,
        }
    )


async def _create(request: Request, state: AppState, ident: KeyIdentity, project_id: int | None) -> Response:
    body = await parse_body(request, SpendAlertBody)
    recipients = _recipients(body)
    keys: list[int] = []
    async with state.db.engine.begin() as conn:
        b = await budget_store.budget_at(conn, org_id=ident.account_id, project_id=project_id)
        if b is None:  # a counting budget: it refuses nothing
            budget_id = await budget_store.set_budget(
                conn, org_id=ident.account_id, project_id=project_id, period="month", limit_credits=NO_LIMIT
            )
            keys = await keys_to_revoke(state, conn, ident, project_id)
        elif b.period != "month":
            raise InvalidRequestError(
                f"this {kind_of(project_id)}'s budget is counted per {b.period}; spend alerts count monthly "
                "spend: make its period month (PUT /v1/budgets) or use its alert_thresholds",
                param="interval",
            )
        else:
            budget_id = b.id
        rule_id = await rules.create_rule(
            conn,
            budget_id=budget_id,
            threshold_credits=body.threshold_amount * CENT,
            recipients=recipients,
            subject_prefix=body.notification_channel.subject_prefix,
        )
        await record_change(conn, ident, request, project_id, {"spend_alert": {"id": f"alert_{rule_id}"}})
        made = await rules.rule_of(conn, rule_id=rule_id)
    await revoke_all(state, keys)
    assert made is not None
    return json_response(_object(project_id, made))


async def _get(state: AppState, ident: KeyIdentity, project_id: int | None, alert_id: str) -> Response:
    async with state.db.engine.connect() as conn:
        return json_response(_object(project_id, await _rule(conn, ident, project_id, alert_id)))


async def _update(
    request: Request, state: AppState, ident: KeyIdentity, project_id: int | None, alert_id: str
) -> Response:
    body = await parse_body(request, SpendAlertBody)
    recipients = _recipients(body)
    async with state.db.engine.begin() as conn:
        found = await _rule(conn, ident, project_id, alert_id)
        await rules.update_rule(
            conn,
            rule_id=found.id,
            threshold_credits=body.threshold_amount * CENT,
            recipients=recipients,
            subject_prefix=body.notification_channel.subject_prefix,
        )
        await record_change(conn, ident, request, project_id, {"spend_alert": {"id": alert_id}})
        updated = await rules.rule_of(conn, rule_id=found.id)
    assert updated is not None
    return json_response(_object(project_id, updated))


async def _delete(
    request: Request, state: AppState, ident: KeyIdentity, project_id: int | None, alert_id: str
) -> Response:
    keys: list[int] = []
    async with state.db.engine.begin() as conn:
        found = await _rule(conn, ident, project_id, alert_id)
        await rules.delete_rule(conn, rule_id=found.id)
        if await rules.drop_if_only_counting(conn, budget_id=found.budget_id):
            keys = await keys_to_revoke(state, conn, ident, project_id)
        await record_change(
            conn, ident, request, project_id, {"spend_alert": {"id": alert_id, "deleted": True}}
        )
    await revoke_all(state, keys)
    return json_response(
        {"id": f"alert_{found.id}", "object": f"{kind_of(project_id)}.spend_alert.deleted", "deleted": True}
    )


@router.get(ORG + "/spend_alerts", openapi_extra=operation(params=LIST_PARAMS))
async def list_org_alerts(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    return await _list(request, state, ident, await level(state, ident, None, manage=False))


@router.post(ORG + "/spend_alerts", openapi_extra=operation(body=json_body(SpendAlertBody)))
async def create_org_alert(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    return await _create(request, state, ident, await level(state, ident, None, manage=True))


@router.get(ORG + "/spend_alerts/{alert_id}")
async def get_org_alert(ident: CurrentKey, state: StateDep, alert_id: str) -> Response:
    return await _get(state, ident, await level(state, ident, None, manage=False), alert_id)


@router.post(ORG + "/spend_alerts/{alert_id}", openapi_extra=operation(body=json_body(SpendAlertBody)))
async def update_org_alert(request: Request, ident: CurrentKey, state: StateDep, alert_id: str) -> Response:
    return await _update(request, state, ident, await level(state, ident, None, manage=True), alert_id)


@router.delete(ORG + "/spend_alerts/{alert_id}")
async def delete_org_alert(request: Request, ident: CurrentKey, state: StateDep, alert_id: str) -> Response:
    return await _delete(request, state, ident, await level(state, ident, None, manage=True), alert_id)


@router.get(PROJECT + "/spend_alerts", openapi_extra=operation(params=LIST_PARAMS))
async def list_project_alerts(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str
) -> Response:
    return await _list(request, state, ident, await level(state, ident, project_id, manage=False))


@router.post(PROJECT + "/spend_alerts", openapi_extra=operation(body=json_body(SpendAlertBody)))
async def create_project_alert(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str
) -> Response:
    return await _create(request, state, ident, await level(state, ident, project_id, manage=True))


@router.get(PROJECT + "/spend_alerts/{alert_id}")
async def get_project_alert(ident: CurrentKey, state: StateDep, project_id: str, alert_id: str) -> Response:
    return await _get(state, ident, await level(state, ident, project_id, manage=False), alert_id)


@router.post(PROJECT + "/spend_alerts/{alert_id}", openapi_extra=operation(body=json_body(SpendAlertBody)))
async def update_project_alert(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str, alert_id: str
) -> Response:
    return await _update(request, state, ident, await level(state, ident, project_id, manage=True), alert_id)


@router.delete(PROJECT + "/spend_alerts/{alert_id}")
async def delete_project_alert(
    request: Request, ident: CurrentKey, state: StateDep, project_id: str, alert_id: str
) -> Response:
    return await _delete(request, state, ident, await level(state, ident, project_id, manage=True), alert_id)
