"""The identity commands of ``modelgate admin`` (``cli.py`` parses them): an organisation's SCIM
token, and "SSO only" for an organisation. Each is written to the audit log."""

from __future__ import annotations

import hashlib
import secrets

from modelgate.settings import Settings
from modelgate.store import identity as store
from modelgate.store.audit import audit
from modelgate.store.db import Conn, upgraded
from modelgate.store.operators import CLI


class NoSuchOrganisation(LookupError):
    pass


async def _org(conn: Conn, name: str) -> int:
    org_id = await store.team_org_by_name(conn, name=name)
    if org_id is None:
        raise NoSuchOrganisation(f"no team organisation named {name!r}")
    return org_id


async def issue_scim_token(settings: Settings, *, organisation: str) -> str:
    """A new SCIM token of the organisation (shown once; only its digest is kept)."""
    token = "scim_" + secrets.token_urlsafe(32)
    async with upgraded(settings) as db, db.engine.begin() as conn:
        org_id = await _org(conn, organisation)
        digest = hashlib.sha256(token.encode()).hexdigest()
        await store.add_scim_token(conn, org_id=org_id, digest=digest, prefix=token[5:13])
        await audit(conn, actor=CLI, action="org.scim_token", account_id=org_id, detail=token[5:13])
    return token


async def set_sso_only(settings: Settings, *, organisation: str, sso_only: bool) -> None:
    async with upgraded(settings) as db, db.engine.begin() as conn:
        org_id = await _org(conn, organisation)
        await store.set_sso_only(conn, org_id=org_id, sso_only=sso_only)
        action = "org.sso_only" if sso_only else "org.passwords_allowed"
        await audit(conn, actor=CLI, action=action, account_id=org_id)
