"""SCIM Groups to roles: a SCIM Group's ``displayName`` is a group name for ``MODELGATE_GROUP_RULES``
(rules of ``provider`` ``scim`` or of none), evaluated for a User whenever a Group it is (or was) a
member of is written, and applied as at a sign-in (``identity/grants.py``). Through an
organisation's token, only rules of that organisation count, and none grants the operator flag: an
organisation's directory cannot reach beyond it. What was granted is kept on the identity
``scim:{tenant}`` + the User's id (``account_identities``)."""

from __future__ import annotations

import json
from typing import Any

from modelgate.identity.grants import apply, evaluate
from modelgate.settings import GroupRule
from modelgate.store import identity as store
from modelgate.store.db import Conn


def member_ids(body: dict[str, Any]) -> set[str]:
    """The ids of a Group document's members."""
    members = body.get("members")
    if not isinstance(members, list):
        return set()
    return {str(m["value"]) for m in members if isinstance(m, dict) and isinstance(m.get("value"), str)}


async def _rules(conn: Conn, rules: list[GroupRule], org_id: int | None) -> list[GroupRule]:
    scim = [r for r in rules if r.provider in (None, "scim")]
    if org_id is None:
        return scim
    name = await store.org_name(conn, org_id=org_id)
    return [r for r in scim if r.organisation is not None and r.organisation == name and not r.operator]


async def regroup(
    conn: Conn,
    *,
    tenant: str,
    org_id: int | None,
    rules: list[GroupRule],
    user_ids: set[str],
) -> None:
    """Evaluate the groups of these Users again and apply what they grant."""
    if not user_ids or not rules:
        return
    applicable = await _rules(conn, rules, org_id)
    groups_of: dict[str, list[str]] = {uid: [] for uid in user_ids}
    for row in await store.scim_list(conn, tenant=tenant, resource_types=["Group"]):
        body = json.loads(row.body)
        name = body.get("displayName")
        if not isinstance(name, str):
            continue
        for uid in member_ids(body) & user_ids:
            groups_of[uid].append(name)
    issuer = f"scim:{tenant}"
    for uid, groups in groups_of.items():
        user = await store.scim_get(conn, tenant=tenant, resource_id=uid)
        if user is None or user.resource_type != "User" or user.account_id is None:
            continue
        grants = evaluate(applicable, provider="scim", groups=groups)
        previous = await store.identity_grants(conn, issuer=issuer, subject=uid)
        granted = await apply(conn, account_id=user.account_id, grants=grants, previous=previous)
        if grants.operator is not None:
            await store.set_operator_flag(conn, account_id=user.account_id, operator=grants.operator)
        body = json.loads(user.body)
        await store.record_identity(
            conn,
            account_id=user.account_id,
            provider="scim",
            issuer=issuer,
            subject=uid,
            email=str(body.get("userName") or "")[:320],
            groups=groups,
            granted=granted,
        )
