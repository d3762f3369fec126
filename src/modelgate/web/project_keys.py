"""Keys on a project's page: create one in the project (the person's own: it falls under their
member budget), edit one (name, spending limit, scopes, allowed models, expiry), switch it off or on,
delete it. A plain member creates keys and edits its own; the project's owners and the
organisation's owners and admins edit every key of the project; the billing role changes nothing.

Creating answers with a redirect, the new key riding to the next page load in a 2-minute HttpOnly
cookie scoped to the project's page (shown once), as on the Keys page.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

from fastapi import APIRouter, Path, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from modelgate.accounts.keys import KEY_SCOPES, key_digest
from modelgate.accounts.manage import UNSET, update_key
from modelgate.accounts.service import create_key
from modelgate.httpkit.deps import app_state
from modelgate.store.admin_directory import project_row
from modelgate.store.key_rows import delete_key, get_key_by_id
from modelgate.store.keys import live_key_with_digest
from modelgate.web.keys import parse_limit
from modelgate.web.project_access import (
    MAX_ID,
    ProjectAccess,
    clean_text,
    not_allowed,
    not_found,
    parse_count,
    parse_models,
    project_access,
    record,
)
from modelgate.web.projects import project_page
from modelgate.web.sessions import CsrfUser

router = APIRouter(include_in_schema=False)
NEW_KEY_COOKIE = "mg_new_project_key"


async def new_key_shown_once(request: Request, project_id: int) -> str | None:
    """The key created just before this page's redirect, if it is a live key of the project's
    organisation that the signed-in person made."""
    raw = request.cookies.get(NEW_KEY_COOKIE)
    if not raw or len(raw) > 64:
        return None
    user = getattr(request.state, "web_user", None)
    async with app_state(request).db.engine.connect() as conn:
        access = await project_access(conn, user, project_id) if user is not None else None
        if access is None:
            return None
        live = await live_key_with_digest(conn, account_id=access.org.org_id, digest=key_digest(raw))
    return raw if live else None


def _key_fields(form: FormData, errors: dict[str, str], prefix: str) -> dict[str, object]:
    """Name, limit, scopes, allowed models and expiry from a key form; problems into ``errors``."""
    name = clean_text(form.get("name"))
    if name is None:
        errors[prefix] = "Give the key a name of at most 200 characters."
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str) and s in KEY_SCOPES]
    if not scopes:
        errors[prefix] = "Choose at least one scope (model:chat to call chat models)."
    retention = str(form.get("retention") or "")
    limit_problems: dict[str, str] = {}
    limit = parse_limit(str(form.get("limit_usd") or "").strip(), retention, limit_problems)
    if limit_problems:
        errors[prefix] = " ".join(limit_problems.values())
    models = parse_models(str(form.get("allowed_models") or ""))
    if isinstance(models, str):
        errors[prefix] = f"Allowed models: {models}."
    expires = None
    raw_expiry = str(form.get("expires") or "").strip()
    if raw_expiry:
        try:
            expires = datetime.combine(
                datetime.strptime(raw_expiry[:10], "%Y-%m-%d").date(), time(0), tzinfo=UTC
            )
        except ValueError:
            errors[prefix] = "Enter the expiry as a date (YYYY-MM-DD), or leave it empty."
    rpm = parse_count(str(form.get("rpm") or ""))
    if isinstance(rpm, str):
        errors[prefix] = f"Requests per minute: {rpm}."
    return {
        "name": name,
        "scopes": scopes,
        "limit": (retention or "no_reset", limit) if limit is not None else None,
        "allowed_models": models,
        "expires_at": expires,
        "rpm": rpm,
    }


@router.post("/app/projects/{project_id}/keys")
async def create_project_key(
    request: Request, user: CsrfUser, project_id: int = Path(ge=1, le=MAX_ID)
) -> Response:
    form = await request.form()
    errors: dict[str, str] = {}
    values = _key_fields(form, errors, "new-key")
    async with app_state(request).db.engine.begin() as conn:
        access = await project_access(conn, user, project_id)
        if access is None:
            return not_found(request, "project")
        if not access.uses:
            return not_allowed(
                request, "Only the project's members create keys in it (the billing role reads only)."
            )
        found = await project_row(conn, project_id=project_id)
        if found is not None and found.archived_at is not None:
            return not_allowed(
                request,
                "This project is archived: its keys are off and no key can be made in it.",
                back=f"/app/projects/{project_id}",
            )
        if errors:
            echo = {
                k: str(form.get(k) or "")
                for k in ("name", "limit_usd", "retention", "allowed_models", "expires", "rpm")
            }
            return await project_page(
                request,
                user,
                project_id,
                errors=errors,
                form={**echo, "scopes": values["scopes"]},
                status_code=400,
            )
        limit = values["limit"]
        new = await create_key(
            conn,
            account_id=access.org.org_id,
            project_id=project_id,
            member_id=user.account_id,
            name=str(values["name"]),
            scopes=values["scopes"],  # type: ignore[arg-type]
            limit_retention=limit[0] if isinstance(limit, tuple) else None,
            limit_credits=limit[1] if isinstance(limit, tuple) else None,
            allowed_models=values["allowed_models"],  # type: ignore[arg-type]
            rpm=values["rpm"],  # type: ignore[arg-type]
            expires_at=values["expires_at"],  # type: ignore[arg-type]
        )
        await record(
            conn,
            request,
            user,
            access.org.org_id,
            "api_key.created",
            project_id=project_id,
            resource_id=f"key_{new.key_id}",
            details={"data": {"name": values["name"], "scopes": values["scopes"]}},
        )
    response = RedirectResponse(f"/app/projects/{project_id}?saved=key#new-key", status_code=303)
    response.set_cookie(
        NEW_KEY_COOKIE,
        new.key,
        max_age=120,
        path=f"/app/projects/{project_id}",
        httponly=True,
        samesite="strict",
        secure=app_state(request).settings.secure_cookies,
    )
    return response


async def _editable(
    request: Request, conn: object, access: ProjectAccess | None, key_id: int
) -> Response | None:
    """None when the person may change the key; else the answer (404 for a key they cannot see)."""
    if access is None:
        return not_found(request, "project")
    rec = await get_key_by_id(conn, key_id=key_id)  # type: ignore[arg-type]
    if (
        rec is None
        or rec.deleted_at is not None
        or rec.account_id != access.org.org_id
        or rec.project_id != access.project.id
    ):
        return not_found(request, "key")
    if not access.may_edit(rec):
        return not_allowed(
            request,
            "You can change your own keys; the project's owners change the others.",
            back=f"/app/projects/{access.project.id}",
        )
    return None


@router.post("/app/projects/{project_id}/keys/{key_id}/edit")
async def edit_project_key(
    request: Request,
    user: CsrfUser,
    project_id: int = Path(ge=1, le=MAX_ID),
    key_id: int = Path(ge=1, le=MAX_ID),
) -> Response:
    form = await request.form()
    errors: dict[str, str] = {}
    values = _key_fields(form, errors, f"key-{key_id}")
    async with app_state(request).db.engine.begin() as conn:
        access = await project_access(conn, user, project_id)
        answer = await _editable(request, conn, access, key_id)
        if answer is not None or access is None:
            return answer or not_found(request, "project")
        if errors:
            return await project_page(request, user, project_id, errors=errors, status_code=400)
        rec = await get_key_by_id(conn, key_id=key_id)
        assert rec is not None
        await update_key(
            conn,
            key_id=key_id,
            name=str(values["name"]),
            scopes=values["scopes"] if not rec.is_management else UNSET,  # type: ignore[arg-type]
            limit=values["limit"] if not rec.is_management else UNSET,  # type: ignore[arg-type]
            allowed_models=values["allowed_models"],  # type: ignore[arg-type]
            rpm=values["rpm"],  # type: ignore[arg-type]
            expires_at=values["expires_at"],  # type: ignore[arg-type]
        )
        changed = {k: v for k, v in values.items() if k != "limit"}
        await record(
            conn,
            request,
            user,
            access.org.org_id,
            "api_key.updated",
            project_id=project_id,
            resource_id=f"key_{key_id}",
            details={"changes_requested": changed},
        )
    await app_state(request).keys.revoke(key_id=key_id)
    return RedirectResponse(f"/app/projects/{project_id}?saved=key-{key_id}#key-{key_id}", status_code=303)


@router.post("/app/projects/{project_id}/keys/{key_id}/{action}")
async def switch_project_key(
    request: Request,
    user: CsrfUser,
    action: str,
    project_id: int = Path(ge=1, le=MAX_ID),
    key_id: int = Path(ge=1, le=MAX_ID),
) -> Response:
    """``disable``, ``enable`` or ``delete`` a key of the project."""
    if action not in ("disable", "enable", "delete"):
        return not_found(request)
    async with app_state(request).db.engine.begin() as conn:
        access = await project_access(conn, user, project_id)
        answer = await _editable(request, conn, access, key_id)
        if answer is not None or access is None:
            return answer or not_found(request, "project")
        if action == "delete":
            await delete_key(conn, key_id=key_id)
        else:
            await update_key(conn, key_id=key_id, disabled=action == "disable")
        await record(
            conn,
            request,
            user,
            project_id=project_id,
            org_id=access.org.org_id,
            type="api_key.deleted" if action == "delete" else "api_key.updated",
            resource_id=f"key_{key_id}",
            details=None if action == "delete" else {"changes_requested": {"disabled": action == "disable"}},
        )
    await app_state(request).keys.revoke(key_id=key_id)
    return RedirectResponse(f"/app/projects/{project_id}?saved={action}#keys", status_code=303)
