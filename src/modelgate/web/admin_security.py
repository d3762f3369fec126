"""Account recovery and sign-in rules on the operator console: a one-time password-reset link for
an account (shown to the operator to pass on, or mailed when SMTP is configured), and the rule that
every account must use two-factor sign-in. Each is written to the audit log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from modelgate.httpkit.deps import app_state
from modelgate.mail import messages
from modelgate.store.adjustments import account_balance
from modelgate.store.audit import audit
from modelgate.store.totp import set_two_factor_required
from modelgate.web.admin import AccountId, NotOperator, OperatorCsrf, actor
from modelgate.web.recovery import RESET_TTL, base_url, mailer, make_reset_link
from modelgate.web.render import render

router = APIRouter(include_in_schema=False)


@router.post("/admin/accounts/{account_id}/reset-link")
async def reset_link(request: Request, user: OperatorCsrf, account_id: AccountId) -> Response:
    form = await request.form()
    send = form.get("send") == "1" and mailer(request).configured
    async with app_state(request).db.engine.begin() as conn:
        account = await account_balance(conn, account_id=account_id)
        if account is None:
            raise NotOperator
        await audit(
            conn,
            actor=actor(user),
            action="account.reset_mail" if send else "account.reset_link",
            account_id=account_id,
            detail="password-reset link " + ("mailed" if send else "shown to the operator"),
        )
    link = await make_reset_link(request, account_id=account_id)
    if send:
        token = link.rsplit("/", 1)[-1]
        mail = messages.password_reset(
            to=account.email, base_url=base_url(request), token=token, ttl=RESET_TTL
        )
        mailer(request).submit(mail)
        return RedirectResponse(f"/admin/accounts/{account_id}?done=reset-mailed", status_code=303)
    ctx = {"account": account, "link": link, "hours": int(RESET_TTL.total_seconds() // 3600)}
    return render(request, "admin/reset_link.html", {**ctx, "page": "admin", "section": "accounts"})


@router.post("/admin/settings/two-factor")
async def two_factor_rule(request: Request, user: OperatorCsrf) -> Response:
    form = await request.form()
    required = form.get("required") == "1"
    async with app_state(request).db.engine.begin() as conn:
        await set_two_factor_required(conn, required=required)
        await audit(
            conn,
            actor=actor(user),
            action="settings.two_factor",
            detail="two-factor sign-in " + ("required" if required else "optional"),
        )
    return RedirectResponse("/admin/settings?saved=1#sign-in-security", status_code=303)
