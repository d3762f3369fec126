"""Account balance and money feed (account-balance.md; specs billing-*.json), plus modelgate's admin
top-up.

``GET /v2/billing``, ``/v2/billing/detail``, ``/v2/billing/transactions`` and the legacy
``/v1/billing/balance`` take a regular key (a wallet belongs to the account; a management key
gets 403). Balances are the credits available now: credits held by requests in flight are not in
them until those requests settle. ``POST /v1/admin/top-up`` takes a key of an ``is_admin`` account.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.accounts.service import normalise_email, top_up
from modelgate.api.cursor import decode_cursor, encode_cursor
from modelgate.api.service_query import (
    int_param,
    json_response,
    parse_body,
    parse_instant,
    reject_unknown_params,
    require_regular,
    single,
)
from modelgate.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from modelgate.httpkit.contract import json_body, operation, query
from modelgate.httpkit.deps import AppState, CurrentKey, StateDep, pending_writes_flushed, text_parameters
from modelgate.store.accounts import account_id_by_email, get_account
from modelgate.store.secrets import instance_secret
from modelgate.store.transactions import TxFilter
from modelgate.store.transactions import transactions as transactions_page
from modelgate.wire.service import KINDS_BY_TYPE, TopUp, iso, transaction_view, usd

router = APIRouter(tags=["billing"], dependencies=[Depends(text_parameters), Depends(pending_writes_flushed)])

LOW_BALANCE_CREDITS = 100_000  # 0.05 USD
_TX_PARAMS = {"from", "to", "direction", "type", "limit", "cursor"}


async def _balance(state: AppState, account_id: int) -> tuple[int, str]:
    async with state.db.engine.connect() as conn:
        acc = await get_account(conn, account_id=account_id)
    if acc is None:  # the key outlived its account
        raise NotFoundError("Account not found")
    return acc.balance_credits, acc.email


@router.get("/v2/billing")
async def billing(ident: CurrentKey, state: StateDep) -> Response:
    require_regular(ident)
    credits, _ = await _balance(state, ident.account_id)
    return json_response({"current_balance": usd(credits), "currency": "USD"})


@router.get("/v2/billing/detail")
async def billing_detail(ident: CurrentKey, state: StateDep) -> Response:
    require_regular(ident)
    credits, email = await _balance(state, ident.account_id)
    # billing-detail-v2.json nests the top-level ``required`` list under autotopup_settings (a
    # misplaced list that no body can satisfy); the shape below is the intended one.
    return json_response(
        {
            "user_id": ident.account_id,
            "email": email,
            "current_balance": usd(credits),
            "currency": "USD",
            "autotopup_settings": {"is_enabled": False, "threshold": 0, "amount": 0, "currency": "USD"},
        }
    )


@router.get("/v1/billing/balance")
async def billing_balance_v1(ident: CurrentKey, state: StateDep) -> Response:
    require_regular(ident)
    credits, _ = await _balance(state, ident.account_id)
    low = credits < LOW_BALANCE_CREDITS
    if credits <= 0:
        status, why = "depleted", "The balance is exhausted; top up to continue."
    elif low:
        status, why = "low_balance", "The balance is below the low-balance threshold."
    else:
        status, why = "current", "The balance is sufficient."
    return json_response(
        {
            "balance": credits,
            "lowBalance": low,
            "lowBalanceThreshold": LOW_BALANCE_CREDITS,
            "lastUpdated": iso(datetime.now(UTC)),
            "autoDebitStatus": "disabled",
            "status": status,
            "statusExplanation": why,
        }
    )


async def _cursor_secret(state: AppState) -> bytes:
    secret = state.extras.get("cursor_secret")
    if secret is None:
        secret = state.extras["cursor_secret"] = await instance_secret(state.db.engine, "cursor_secret")
    return bytes(secret)


@router.get(
    "/v2/billing/transactions",
    openapi_extra=operation(
        params=[
            query("from", {"type": "string", "format": "date-time", "example": "2026-08-01T00:00:00Z"}),
            query("to", {"type": "string", "format": "date-time", "example": "2026-08-18T00:00:00Z"}),
            query("direction", {"enum": ["TOPUP", "CHARGE"]}),
            query("type", {"enum": sorted(KINDS_BY_TYPE)}),
            query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "example": 50}),
            query("cursor", {"type": "string"}, description="next_cursor of the previous page"),
        ]
    ),
)
async def transactions(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    require_regular(ident)
    reject_unknown_params(request, _TX_PARAMS)
    start_raw, end_raw = single(request, "from"), single(request, "to")
    start = parse_instant(start_raw, "from") if start_raw is not None else None
    end = parse_instant(end_raw, "to") if end_raw is not None else None
    if start is not None and end is not None and end <= start:
        raise InvalidRequestError("to must be later than from", param="to")
    direction = single(request, "direction")
    if direction is not None and direction not in ("TOPUP", "CHARGE"):
        raise InvalidRequestError("direction must be TOPUP or CHARGE", param="direction")
    tx_type = single(request, "type")
    if tx_type is not None and tx_type not in KINDS_BY_TYPE:
        raise InvalidRequestError(f"type must be one of {', '.join(KINDS_BY_TYPE)}", param="type")
    limit = int_param(request, "limit", default=50, low=1, high=100)
    scope = "|".join(
        [
            f"{ident.account_id}/{ident.scope_project or ''}",
            start_raw or "",
            end_raw or "",
            direction or "",
            tx_type or "",
            str(limit),
        ]
    )
    secret = await _cursor_secret(state)
    cursor = single(request, "cursor")
    before_id = None
    if cursor is not None:
        data = decode_cursor(secret, cursor, scope=scope)
        before_id = data.get("id")
        if not isinstance(before_id, int):
            raise InvalidRequestError("cursor is malformed", param="cursor", code="invalid_cursor")

    # A project member reads the charges of its project's keys only (docs/organisations.md).
    f = TxFilter(
        ident.account_id,
        since=start,
        until=end,
        direction=direction,
        kind=KINDS_BY_TYPE[tx_type] if tx_type is not None else None,
        before_id=before_id,
        project_id=ident.scope_project,
    )
    async with state.db.engine.connect() as conn:
        rows = await transactions_page(conn, f, limit=limit + 1)
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(secret, {"id": int(rows[-1].id)}, scope=scope) if has_more else None
    return json_response(
        {
            "data": [transaction_view(r) for r in rows],
            "pagination": {"next_cursor": next_cursor, "has_more": has_more},
        }
    )


@router.post("/v1/admin/top-up", openapi_extra=operation(body=json_body(TopUp)))
async def admin_top_up(request: Request, ident: CurrentKey, state: StateDep) -> Response:
    async with state.db.engine.connect() as conn:
        caller = await get_account(conn, account_id=ident.account_id)
    if caller is None or not caller.is_admin:
        raise PermissionDeniedError(
            "This endpoint requires a key of an administrator account.", code="admin_only"
        )
    body = await parse_body(request, TopUp)
    email = normalise_email(body.email)
    async with state.db.engine.begin() as conn:
        account_id = await account_id_by_email(conn, email=email)
        if account_id is None:
            raise NotFoundError(f"No account with email {email}", param="email", code="account_not_found")
        credits = await top_up(
            conn, account_id=account_id, usd=body.usd, description=body.description or "admin top-up"
        )
        acc = await get_account(conn, account_id=account_id)
    assert acc is not None
    return json_response(
        {
            "data": {
                "email": email,
                "amount": {"usd": usd(credits), "credits": credits},
                "balance": {"usd": usd(acc.balance_credits), "credits": acc.balance_credits},
            }
        }
    )
