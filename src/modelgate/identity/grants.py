"""What groups grant, under the operator's rules (``MODELGATE_GROUP_RULES``), and applying it to an
account's organisation and project memberships (docs/identity.md, "what is mapped and when").

A rule names a group and grants the operator flag, a role in a team organisation, or a membership
of one of its projects (which also makes the person a member of the organisation). Organisations
and projects are found by name; a rule naming one that does not exist grants nothing (logged).

Re-evaluated at every sign-in (and at every SCIM Group change, for its members): what the groups
grant now is applied, and what they granted last time (kept on the identity) but no longer do is
taken back — only while the role is still the one granted: a role an organisation admin gave by
hand is never touched. The strongest of several roles wins (owner > admin > member > billing).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from modelgate.settings import GroupRule
from modelgate.store import identity as store
from modelgate.store import organisations as orgs
from modelgate.store.db import Conn

log = logging.getLogger("modelgate.sso")

ORG_RANK = {"billing": 0, "member": 1, "admin": 2, "owner": 3}
PROJECT_RANK = {"member": 0, "owner": 1}


@dataclass(frozen=True, slots=True)
class Grants:
    operator: bool | None  # None: no rule of this source is about operators
    rules: list[GroupRule] = field(default_factory=list)  # the matched rules with an organisation


def evaluate(rules: list[GroupRule], *, provider: str, groups: list[str]) -> Grants:
    """What ``groups`` grant under ``rules`` (those of any provider or of ``provider``)."""
    applicable = [r for r in rules if r.provider in (None, provider)]
    have = set(groups)
    matched = [r for r in applicable if r.group in have]
    operator = any(r.operator for r in matched) if any(r.operator for r in applicable) else None
    return Grants(operator=operator, rules=[r for r in matched if r.organisation])


async def _wanted(conn: Conn, grants: Grants) -> tuple[dict[int, str], dict[int, str]]:
    """(organisation id -> role, project id -> role) the matched rules grant."""
    org_roles: dict[int, str] = {}
    project_roles: dict[int, str] = {}
    for rule in grants.rules:
        org_id = await store.team_org_by_name(conn, name=str(rule.organisation))
        if org_id is None:
            log.warning("group rule %r names no organisation %r", rule.group, rule.organisation)
            continue
        role = rule.org_role
        if ORG_RANK[role] > ORG_RANK.get(org_roles.get(org_id, ""), -1):
            org_roles[org_id] = role
        if rule.project is None:
            continue
        project_id = await store.project_by_name(conn, org_id=org_id, name=rule.project)
        if project_id is None:
            log.warning("group rule %r names no project %r in %r", rule.group, rule.project, org_id)
            continue
        if PROJECT_RANK[rule.role] > PROJECT_RANK.get(project_roles.get(project_id, ""), -1):
            project_roles[project_id] = rule.role
    return org_roles, project_roles


async def apply(conn: Conn, *, account_id: int, grants: Grants, previous: dict[str, Any]) -> dict[str, Any]:
    """Apply ``grants`` to the account's memberships, taking back what ``previous`` granted and
    ``grants`` does not; returns what is granted now (to keep for the next time)."""
    org_roles, project_roles = await _wanted(conn, grants)
    before_orgs = {int(k): str(v) for k, v in previous.get("orgs", {}).items()}
    before_projects = {int(k): str(v) for k, v in previous.get("projects", {}).items()}
    now_orgs: dict[str, str] = {}
    now_projects: dict[str, str] = {}
    for org_id, role in org_roles.items():
        current = await orgs.org_role(conn, org_id=org_id, account_id=account_id)
        if current is None or before_orgs.get(org_id) == current:
            if current != role:
                await orgs.add_org_member(conn, org_id=org_id, account_id=account_id, role=role)
            now_orgs[str(org_id)] = role
    for project_id, role in project_roles.items():
        current = await orgs.project_role(conn, project_id=project_id, account_id=account_id)
        if current is None or before_projects.get(project_id) == current:
            if current != role:
                await orgs.add_project_member(conn, project_id=project_id, account_id=account_id, role=role)
            now_projects[str(project_id)] = role
    for project_id, role in before_projects.items():
        if (
            str(project_id) not in now_projects
            and (await orgs.project_role(conn, project_id=project_id, account_id=account_id)) == role
        ):
            await store.remove_project_member(conn, project_id=project_id, account_id=account_id)
    for org_id, role in before_orgs.items():
        if (
            str(org_id) not in now_orgs
            and (await orgs.org_role(conn, org_id=org_id, account_id=account_id)) == role
        ):
            await store.remove_org_member(conn, org_id=org_id, account_id=account_id)
    return {"orgs": now_orgs, "projects": now_projects}
