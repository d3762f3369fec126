"""The operator console, ``/admin``: accounts (search, balance, top-up with a note, disable/enable,
their keys) and the audit log of every operator action.

Only operators (``accounts.is_admin``) see it; everyone else, signed in or not, gets a 404 page, as
if it did not exist. Models and providers, request lookup and settings are in ``admin_status``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from modelgate.httpkit.deps import app_state, pending_writes_flushed
from modelgate.store.audit import Actor
from modelgate.store.operators import (
    account_exists,
    account_row,
    find_accounts,
    live_keys,
    recent_audit,
    set_account_disabled,
    set_key_disabled,
)
from modelgate.store.spend_alerts import recent_alerts
from modelgate.store.usage import LogFilter, log_page
from modelgate.web.project_access import record
from modelgate.web.render import render
from modelgate.web.sessions import WebUser, check_user_csrf, enforce_two_factor, load_user

PAGE_SIZE = 50
MAX_ID = 2**31 - 1


class NotOperator(Exception):
    """Not signed in as an operator: the console answers 404."""


async def operator(request: Request) -> WebUser:
    user = await load_user(request)
    if user is None or not user.is_admin:
        raise NotOperator
    await enforce_two_factor(request, user)
    return user


async def operator_csrf(request: Request) -> WebUser:
    user = await operator(request)
    await check_user_csrf(request, user)
    return user


Operator = Annotated[WebUser, Depends(operator)]
OperatorCsrf = Annotated[WebUser, Depends(operator_csrf)]


def _path_id(name: str) -> Callable[[Request], int]:
    """A positive id from the path; anything else is the console's 404 page (not a 422)."""

    def parse(request: Request) -> int:
        raw = str(request.path_params.get(name, ""))
        if not raw.isdigit() or len(raw) > 10 or not 1 <= int(raw) <= MAX_ID:
            raise NotOperator
        return int(raw)

    return parse


AccountId = Annotated[int, Depends(_path_id("account_id"))]
KeyId = Annotated[int, Depends(_path_id("key_id"))]


def actor(user: WebUser) -> Actor:
    return Actor(user.account_id, user.email)


async def not_found(request: Request, exc: Exception) -> Response:
    return render(
        request,
        "error.html",
        {"title": "Page not found", "message": "There is no page at this address.", "back": "/"},
        status_code=404,
    )


router = APIRouter(include_in_schema=False, dependencies=[Depends(pending_writes_flushed)])


def _page_number(value: str | None) -> int:
    try:
        return min(max(1, int(value or 1)), 100_000)
    except ValueError:
        return 1


@router.get("/admin")
async def console_home(request: Request, user: Operator) -> Response:
    return RedirectResponse("/admin/accounts", status_code=303)


@router.get("/admin/accounts")
async def accounts_page(request: Request, user: Operator) -> Response:
    q = request.query_params.get("q", "").strip()[:320].replace("\x00", "")
    page = _page_number(request.query_params.get("page"))
    async with app_state(request).db.engine.connect() as conn:
        total, rows = await find_accounts(conn, q=q, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
        entries = await recent_audit(conn, limit=10)
    return render(
        request,
        "admin/accounts.html",
        {
            "accounts": rows,
            "q": q,
            "page_no": page,
            "pages": max(1, math.ceil(total / PAGE_SIZE)),
            "total": total,
            "audit": entries,
            "page": "admin",
            "section": "accounts",
        },
    )


@dataclass
class _Form:
    errors: dict[str, str]
    values: dict[str, str]


async def _account_page(
    request: Request, user: WebUser, account_id: int, *, form: _Form | None = None, status_code: int = 200
) -> Response:
    async with app_state(request).db.engine.connect() as conn:
        account = await account_row(conn, account_id=account_id)
        if account is None:
            raise NotOperator  # an unknown account: the same 404 page
        keys = await live_keys(conn, account_id=account_id)
        logs = await log_page(conn, LogFilter(account_id=account_id), limit=20)
        entries = await recent_audit(conn, limit=20, account_id=account_id)
    return render(
        request,
        "admin/account.html",
        {
            "account": account,
            "keys": keys,
            "logs": [dict(r._mapping) for r in logs],
            "audit": entries,
            "form": form or _Form({}, {}),
            "done": request.query_params.get("done", ""),
            "mail_configured": bool(app_state(request).settings.smtp_host),
            "page": "admin",
            "section": "accounts",
        },
        status_code=status_code,
    )


@router.get("/admin/accounts/{account_id}")
async def account_page(request: Request, user: Operator, account_id: AccountId) -> Response:
    return await _account_page(request, user, account_id)


@router.post("/admin/accounts/{account_id}/status")
async def account_status(request: Request, user: OperatorCsrf, account_id: AccountId) -> Response:
    form = await request.form()
    disabled = form.get("disabled") == "1"
    if disabled and account_id == user.account_id:
        return await _account_page(
            request,
            user,
            account_id,
            form=_Form({"status": "You cannot disable your own account."}, {}),
            status_code=400,
        )
    state = app_state(request)
    async with state.db.engine.begin() as conn:
        if not await account_exists(conn, account_id=account_id):
            raise NotOperator
        key_ids = await set_account_disabled(
            conn, account_id=account_id, disabled=disabled, actor=actor(user)
        )
    # The very next request with any of its keys, on any instance, is refused (or accepted).
    await asyncio.gather(*(state.keys.revoke(key_id=key_id) for key_id in key_ids))
    done = "disabled" if disabled else "enabled"
    return RedirectResponse(f"/admin/accounts/{account_id}?done={done}", status_code=303)


@router.post("/admin/keys/{key_id}/toggle")
async def key_toggle(request: Request, user: OperatorCsrf, key_id: KeyId) -> Response:
    form = await request.form()
    disabled = form.get("enable") != "1"
    state = app_state(request)
    async with state.db.engine.begin() as conn:
        account_id = await set_key_disabled(conn, key_id=key_id, disabled=disabled)
        if account_id is None:
            raise NotOperator
        # One row in the one audit log: the console's list, and the organisation's (OpenAI's type).
        await record(
            conn,
            request,
            user,
            account_id,
            "api_key.updated",
            resource_id=f"key_{key_id}",
            details={"changes_requested": {"disabled": disabled}},
        )
    await state.keys.revoke(key_id=key_id)
    return RedirectResponse(f"/admin/accounts/{account_id}#keys", status_code=303)


@router.get("/admin/audit")
async def audit_page(request: Request, user: Operator) -> Response:
    async with app_state(request).db.engine.connect() as conn:
        entries = await recent_audit(conn, limit=500)
        alerts = await recent_alerts(conn, limit=50)
    return render(
        request,
        "admin/audit.html",
        {"audit": entries, "spend_alerts": alerts, "page": "admin", "section": "audit"},
    )
