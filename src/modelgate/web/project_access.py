"""Who may do what on the organisation pages (docs/organisations.md, "Who sees what"), decided on
the server for every request from the person's memberships — never from the switcher's cookie:

* an organisation's ``owner`` and ``admin`` manage everything in it (projects, members, budgets,
  every key); ``billing`` reads everything and changes nothing;
* a project ``owner`` manages its project (settings, members, members' budgets, its keys);
* a plain ``member`` sees only the projects it belongs to, creates keys there and edits its own.

Anything a person may not see is answered as if it did not exist (404), so ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi import Request
from starlette.responses import Response

from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.store import audit as audit_log
from modelgate.store import organisations as orgs
from modelgate.store.db import Conn
from modelgate.store.key_rows import KeyRecord
from modelgate.web.render import render
from modelgate.web.sessions import WebUser

MAX_ID = 2**31 - 1


@dataclass(frozen=True, slots=True)
class OrgAccess:
    org_id: int
    name: str
    personal: bool
    postpaid: bool
    role: str  # the person's role in the organisation

    @property
    def whole(self) -> bool:
        """Sees every project (owner, admin, billing)."""
        return self.role in orgs.ORG_WIDE_ROLES

    @property
    def manages(self) -> bool:
        return self.role in orgs.ORG_MANAGERS

    @property
    def label(self) -> str:
        return "Personal" if self.personal else self.name


@dataclass(frozen=True, slots=True)
class ProjectAccess:
    user: WebUser
    org: OrgAccess
    project: orgs.ProjectInfo
    project_role: str | None  # the person's role in the project (None: sees it through the org)

    @property
    def manages(self) -> bool:
        """Changes the project's settings, members, members' budgets and every key in it."""
        return self.org.manages or (self.project_role == "owner" and self.org.role != "billing")

    @property
    def uses(self) -> bool:
        """Creates keys in it (and edits its own): any project member but the billing role."""
        return self.manages or (self.project_role is not None and self.org.role != "billing")

    def may_edit(self, key: KeyRecord) -> bool:
        return self.manages or (self.uses and key.member_id == self.user.account_id)


async def org_access(conn: Conn, user: WebUser, org_id: int) -> OrgAccess | None:
    if not 1 <= org_id <= MAX_ID:
        return None
    for m in await orgs.memberships(conn, account_id=user.account_id):
        if m.org_id == org_id:
            return OrgAccess(m.org_id, m.name, m.personal, m.postpaid, m.role)
    return None


async def project_access(conn: Conn, user: WebUser, project_id: int) -> ProjectAccess | None:
    """The person's reach in a project, or None when they may not see it."""
    if not 1 <= project_id <= MAX_ID:
        return None
    project = await orgs.project_of(conn, project_id=project_id)
    if project is None:
        return None
    org = await org_access(conn, user, project.org_id)
    if org is None:
        return None
    role = await orgs.project_role(conn, project_id=project_id, account_id=user.account_id)
    if role is None and not org.whole:
        return None
    return ProjectAccess(user, org, project, role)


async def my_projects(conn: Conn, user: WebUser, org: OrgAccess) -> list[orgs.ProjectInfo]:
    """The projects of ``org`` the person may see."""
    return await orgs.visible_projects(conn, org_id=org.org_id, account_id=user.account_id)


def not_found(request: Request, what: str = "page") -> Response:
    return render(
        request,
        "error.html",
        {
            "title": "Not found",
            "message": f"There is no such {what}, or it is not yours to see.",
            "back": "/app/projects",
        },
        status_code=404,
    )


def not_allowed(request: Request, message: str, back: str = "/app/projects") -> Response:
    return render(
        request, "error.html", {"title": "Not allowed", "message": message, "back": back}, status_code=403
    )


def parse_usd(raw: str) -> int | None:
    """A positive USD amount as typed (``12.50``, ``$0.01``) in credits; None when it is not one."""
    try:
        value = Decimal(raw.replace(",", "").strip().lstrip("$"))
        if not value.is_finite() or not 0 < value <= 1_000_000_000:
            return None
        credits = int(value * CREDITS_PER_USD)
    except (ValueError, ArithmeticError):
        return None
    return credits if credits >= 1 else None


def parse_count(raw: str, *, high: int = 100_000_000) -> int | str | None:
    """An optional whole number (rpm, tpm): None when empty, the problem as text when bad."""
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 10 or not 1 <= int(raw) <= high:
        return f"a whole number from 1 to {high:,}, or empty"
    return int(raw)


def parse_models(raw: str) -> list[str] | str | None:
    """A comma- or line-separated model list (empty: any model); the problem as text when bad."""
    models = [m.strip() for m in raw.replace("\n", ",").split(",") if m.strip()]
    if len(models) > 500 or any(len(m) > 200 or any(ord(c) < 32 for c in m) for m in models):
        return "at most 500 model names of at most 200 characters, separated by commas"
    return list(dict.fromkeys(models)) or None


def clean_text(raw: object, limit: int = 200) -> str | None:
    """A one-line name from a form; None when empty, too long or holding control characters."""
    value = str(raw or "").strip()
    if not value or len(value) > limit or any(ord(c) < 32 for c in value):
        return None
    return value


async def record(
    conn: Conn,
    request: Request,
    user: WebUser,
    org_id: int,
    type: str,
    *,
    project_id: int | None = None,
    resource_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """One audit event of the organisation (store/audit.py), done by the signed-in person on a page,
    in the caller's transaction."""
    actor = audit_log.Actor(
        user.account_id, user.email, ip=request.client.host if request.client is not None else None
    )
    await audit_log.record(
        conn,
        org_id=org_id,
        type=type,
        actor=actor,
        project_id=project_id,
        resource_id=resource_id,
        details=details,
    )
