"""``POST /app/orgs``: a signed-in person creates a team organisation from ``/app/projects``
(``accounts/team_orgs.py``; they become its owner; prepaid, zero balance), then lands on the
projects page with the switcher set to it. Refused (403) when the operator turned self-service
creation off (``MODELGATE_ORG_SELF_SERVICE=false``: only operators create organisations then)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from modelgate.accounts.team_orgs import OrgNameError, create_team_org
from modelgate.httpkit.deps import app_state
from modelgate.store.audit import Actor
from modelgate.web.organisation import remember_org
from modelgate.web.project_access import not_allowed
from modelgate.web.projects import _list_page
from modelgate.web.sessions import CsrfUser

router = APIRouter(include_in_schema=False)


@router.post("/app/orgs")
async def new_organisation(request: Request, user: CsrfUser) -> Response:
    state = app_state(request)
    if not state.settings.org_self_service:
        return not_allowed(request, "Organisations are created by the operators of this gateway.")
    form = await request.form()
    raw = str(form.get("name") or "")[:1000]
    ip = request.client.host if request.client is not None else None
    try:
        async with state.db.engine.begin() as conn:
            org_id = await create_team_org(
                conn, name=raw, owner_id=user.account_id, actor=Actor(user.account_id, user.email, ip=ip)
            )
    except OrgNameError as exc:
        return await _list_page(
            request, user, errors={"new-org": str(exc)}, status_code=400, new_org_name=raw.strip()[:200]
        )
    response = RedirectResponse(f"/app/projects?saved=org#org-{org_id}", status_code=303)
    return remember_org(request, response, org_id)
