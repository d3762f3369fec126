"""Top-ups and corrections on the operator console, with a confirmation step.

The account page's form posts an amount (``billing/amounts.py``: exact, up to six decimals; negative
for a correction, which needs a reason); the confirmation page repeats it exactly (``$5.555``), with
the balance before and after, and carries the amount in integer credits and a one-time reference;
only its POST changes the balance (``store/adjustments.py``). The audit log and the account's
transactions show the amount as typed. An organisation's console page tops up its pool (the
``accounts`` row whose id is the organisation's) through the same two steps.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Path, Request
from starlette.responses import RedirectResponse, Response

from modelgate.billing.amounts import AmountError, parse_usd, usd_exact
from modelgate.httpkit.deps import app_state
from modelgate.store.adjustments import account_balance, apply_adjustment
from modelgate.store.audit import audit
from modelgate.store.db import IntegrityError
from modelgate.store.organisations import organisation_name
from modelgate.web.admin import AccountId, NotOperator, OperatorCsrf, _account_page, _Form, actor
from modelgate.web.admin_orgs import org_console_page
from modelgate.web.project_access import MAX_ID
from modelgate.web.render import render
from modelgate.web.sessions import WebUser

router = APIRouter(include_in_schema=False)

MAX_NOTE = 500
MAX_CREDITS = 1_000_000 * 2_000_000
ACCOUNT = "/admin/accounts/{}"
ORGANISATION = "/admin/organisations/{}"
OrgId = Path(ge=1, le=MAX_ID)


def _note(raw: object) -> str:
    return str(raw or "").strip().replace("\x00", "")


def _check(credits: int, note: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if len(note) > MAX_NOTE:
        errors["note"] = f"Use at most {MAX_NOTE} characters."
    elif credits < 0 and not note:
        errors["note"] = "A correction needs a reason (it is shown in the audit log)."
    return errors


@router.post("/admin/accounts/{account_id}/top-up")
async def top_up_review(request: Request, user: OperatorCsrf, account_id: AccountId) -> Response:
    async def again(form: _Form) -> Response:
        return await _account_page(request, user, account_id, form=form, status_code=400)

    return await _review(request, account_id, ACCOUNT.format(account_id), again)


@router.post("/admin/organisations/{org_id}/top-up")
async def org_top_up_review(request: Request, user: OperatorCsrf, org_id: int = OrgId) -> Response:
    await _organisation(request, org_id)

    async def again(form: _Form) -> Response:
        return await org_console_page(request, org_id, form=form, status_code=400)

    return await _review(request, org_id, ORGANISATION.format(org_id), again)


@router.post("/admin/accounts/{account_id}/top-up/confirm")
async def top_up_confirm(request: Request, user: OperatorCsrf, account_id: AccountId) -> Response:
    return await _confirm(request, user, account_id, ACCOUNT.format(account_id))


@router.post("/admin/organisations/{org_id}/top-up/confirm")
async def org_top_up_confirm(request: Request, user: OperatorCsrf, org_id: int = OrgId) -> Response:
    await _organisation(request, org_id)
    return await _confirm(request, user, org_id, ORGANISATION.format(org_id))


async def _organisation(request: Request, org_id: int) -> None:
    async with app_state(request).db.engine.connect() as conn:
        if await organisation_name(conn, org_id=org_id) is None:
            raise NotOperator  # no such organisation: the console's 404


async def _review(
    request: Request, account_id: int, back: str, again: Callable[[_Form], Awaitable[Response]]
) -> Response:
    """Check the amount and show the confirmation page (nothing changes yet)."""
    form = await request.form()
    raw = str(form.get("usd") or "")[:64]
    note = _note(form.get("note"))
    errors: dict[str, str] = {}
    credits = 0
    try:
        credits = parse_usd(raw, allow_negative=True)
    except AmountError as exc:
        errors["usd"] = str(exc)
    errors.update(_check(credits, note) if not errors.get("usd") else {})
    if errors:
        return await again(_Form(errors, {"usd": raw, "note": note}))
    async with app_state(request).db.engine.connect() as conn:
        account = await account_balance(conn, account_id=account_id)
    if account is None:
        raise NotOperator
    ctx = {
        "account": account,
        "credits": credits,
        "amount": usd_exact(credits),
        "before": usd_exact(account.balance_credits),
        "after": usd_exact(account.balance_credits + credits),
        "negative_after": account.balance_credits + credits < 0,
        "note": note,
        "reference": "console-" + secrets.token_hex(12),
        "back": back,
        "page": "admin",
        "section": "organisations" if back.startswith("/admin/organisations") else "accounts",
    }
    return render(request, "admin/top_up_confirm.html", ctx)


async def _confirm(request: Request, user: WebUser, account_id: int, back: str) -> Response:
    form = await request.form()
    raw = str(form.get("credits") or "")
    reference = str(form.get("reference") or "")
    note = _note(form.get("note"))
    valid_ref = reference.startswith("console-") and len(reference) == 32 and reference[8:].isalnum()
    digits = raw.removeprefix("-")
    if not (digits.isdigit() and len(digits) <= 16 and valid_ref):
        raise NotOperator  # not from the confirmation page: the console's 404
    credits = int(raw)
    if credits == 0 or abs(credits) > MAX_CREDITS or _check(credits, note):
        raise NotOperator
    kind = "top-up" if credits > 0 else "correction"
    description = note or "operator top-up"
    try:
        async with app_state(request).db.engine.begin() as conn:
            if await account_balance(conn, account_id=account_id) is None:
                raise NotOperator
            applied = await apply_adjustment(
                conn, account_id=account_id, credits=credits, description=description, reference_id=reference
            )
            if applied:
                await audit(
                    conn,
                    actor=actor(user),
                    action="account.top_up" if credits > 0 else "account.correction",
                    account_id=account_id,
                    detail=usd_exact(credits) + (f" — {note}" if note else ""),
                )
    except IntegrityError:  # the same confirmation, sent twice at once: the other one applied it
        applied = False
    done = kind if applied else "already"
    return RedirectResponse(f"{back}?done={done}", status_code=303)
