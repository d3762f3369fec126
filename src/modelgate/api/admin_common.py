"""What OpenAI's Admin API endpoints share (docs/admin-api.md): the admin key check, OpenAI's
object ids (``proj_12``, ``user_7``, ``invite_3``, ``key_9``, ``svc_acct_4``), list pages
(``limit``, ``after``, ``has_more``), audit entries and the objects' wire form.

An admin key is a management key: it administers its organisation and cannot call models; an
inference key gets a 403 here, in the same error envelope as every other modelgate error.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi import Request

from modelgate.api.service_query import int_param, require_management, single
from modelgate.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from modelgate.httpkit.contract import query
from modelgate.store import audit as audit_log
from modelgate.store import organisations as orgs
from modelgate.store.admin_directory import MemberRow, ProjectRow
from modelgate.store.keys import KeyIdentity

LIST_PARAMS = [
    query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
    query("after", {"type": "string", "maxLength": 40}, description="the last id of the previous page"),
]
_ID = re.compile(r"^(proj|user|invite|key|svc_acct)_([0-9]{1,10})$")
NOUNS = {
    "proj": "project",
    "user": "user",
    "invite": "invite",
    "key": "API key",
    "svc_acct": "service account",
}
MAX_ROW_ID = 2**31 - 1  # the id columns are INTEGER: a larger id names no row (and overflowed the query)


def parse_id(raw: str, kind: str, *, param: str) -> int:
    """``proj_12`` -> 12; anything else names nothing (404)."""
    m = _ID.match(raw)
    if m is None or m.group(1) != kind or int(m.group(2)) > MAX_ROW_ID:
        raise NotFoundError(f"No {NOUNS[kind]} with id {raw[:60]!r}", param=param)
    return int(m.group(2))


def page_after(request: Request, kind: str) -> tuple[int, int]:
    """``(limit, after)`` of a list request: after is the id after which the page starts."""
    limit = int_param(request, "limit", default=20, low=1, high=100)
    after = single(request, "after")
    return limit, (0 if after is None else parse_after(after, kind))


def parse_after(after: str, kind: str) -> int:
    """The row id of an ``after`` cursor (``proj_12`` -> 12); a 400 if it is not one of ``kind``."""
    m = _ID.match(after)
    if m is None or m.group(1) != kind:
        raise InvalidRequestError(f"after must be an id like {kind}_12", param="after")
    return min(int(m.group(2)), MAX_ROW_ID)


def page(items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A list object from ``limit + 1`` fetched items."""
    shown = items[:limit]
    return {
        "object": "list",
        "data": shown,
        "first_id": shown[0]["id"] if shown else None,
        "last_id": shown[-1]["id"] if shown else None,
        "has_more": len(items) > limit,
    }


def key_ref(key_id: int) -> str:
    """A key's tracking id in OpenAI's objects (audit log actors and resources): ``key_12``."""
    return f"key_{key_id}"


async def record(
    conn: Any,
    ident: KeyIdentity,
    request: Request | None,
    type: str,
    *,
    project_id: int | None = None,
    resource_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write one audit event of the caller's organisation, done through its key (``ident``), in
    the caller's transaction (store/audit.py: ``type`` is an OpenAI event type)."""
    actor = await audit_log.account_actor(
        conn,
        account_id=ident.member_id,
        key=key_ref(ident.key_id),
        ip=request.client.host if request is not None and request.client else None,
    )
    await audit_log.record(
        conn,
        org_id=ident.account_id,
        type=type,
        actor=actor,
        project_id=project_id,
        resource_id=resource_id,
        details=details,
    )


def admin_caller(ident: KeyIdentity) -> None:
    require_management(ident)


def require_manager(ident: KeyIdentity, what: str) -> None:
    if ident.org_role not in orgs.ORG_MANAGERS:
        raise PermissionDeniedError(f"Your role does not allow {what}.", code="role_forbidden")


async def may_manage_project(conn: Any, ident: KeyIdentity, project_id: int) -> None:
    if ident.org_role in orgs.ORG_MANAGERS:
        return
    role = await orgs.project_role(conn, project_id=project_id, account_id=ident.member_id or 0)
    if role != "owner":
        raise PermissionDeniedError("Your role does not allow managing this project.", code="role_forbidden")


def visible(ident: KeyIdentity, row: ProjectRow | None, raw: str) -> ProjectRow:
    """The project if the caller's key may see it (its organisation, its project), else 404."""
    confined = row is not None and ident.scope_project is not None and ident.scope_project != row.id
    if row is None or row.org_id != ident.account_id or confined:
        raise NotFoundError(f"No project with id {raw[:60]!r}", param="project_id", code="project_not_found")
    return row


def ts(when: datetime | None) -> int | None:
    if when is None:
        return None
    return int((when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp())


def project_object(p: ProjectRow) -> dict[str, Any]:
    return {
        "id": f"proj_{p.id}",
        "object": "organization.project",
        "name": p.name,
        "created_at": ts(p.created_at),
        "archived_at": ts(p.archived_at),
        "status": "archived" if p.archived_at is not None else "active",
        "external_key_id": None,
    }


def user_object(m: MemberRow) -> dict[str, Any]:
    return {
        "object": "organization.user",
        "id": f"user_{m.account_id}",
        "name": None,
        "email": m.email,
        "role": m.role,
        "added_at": ts(m.added_at),
    }


def project_user_object(m: MemberRow) -> dict[str, Any]:
    return {
        "object": "organization.project.user",
        "id": f"user_{m.account_id}",
        "name": None,
        "email": m.email,
        "role": m.role,
        "added_at": ts(m.added_at),
    }
