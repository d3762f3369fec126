"""Who may do what in an organisation through the key API (``api/organisations.py``,
``api/budgets.py``): the role checks, project visibility, and the cached keys a change revokes."""

from __future__ import annotations

from typing import Any

from modelgate.api.admin_common import MAX_ROW_ID
from modelgate.errors import NotFoundError, PermissionDeniedError
from modelgate.httpkit.deps import AppState
from modelgate.store import budgets as budget_store
from modelgate.store import organisations as orgs
from modelgate.store.keys import KeyIdentity


def forbidden(what: str) -> PermissionDeniedError:
    return PermissionDeniedError(f"Your role does not allow {what}.", code="role_forbidden")


def is_manager(ident: KeyIdentity) -> bool:
    return ident.org_role in orgs.ORG_MANAGERS


def in_range(row_id: int) -> bool:
    """An id a database row can have (a path id beyond INTEGER overflowed the query: a 500)."""
    return 1 <= row_id <= MAX_ROW_ID


async def visible_project(
    conn: Any, ident: KeyIdentity, project_id: int, *, manage: bool
) -> orgs.ProjectInfo:
    """A project of the caller's organisation it may see (404 otherwise) and, with ``manage``, manage."""
    found = await orgs.project_of(conn, project_id=project_id) if in_range(project_id) else None
    confined = ident.scope_project is not None and ident.scope_project != project_id
    if found is None or found.org_id != ident.account_id or confined:
        raise NotFoundError(f"No project with id {project_id}", param="project_id", code="project_not_found")
    if manage and not is_manager(ident):
        role = await orgs.project_role(conn, project_id=project_id, account_id=ident.member_id or 0)
        if role != "owner":
            raise forbidden("managing this project")
    return found


async def keys_under(conn: Any, *, org: int, project: int | None, member: int | None) -> list[int]:
    return await budget_store.keys_under(conn, org_id=org, project_id=project, member_id=member)


async def revoke_keys(state: AppState, key_ids: list[int]) -> None:
    for key_id in key_ids:
        await state.keys.revoke(key_id=key_id)
