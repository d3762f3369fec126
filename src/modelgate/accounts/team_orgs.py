"""Creating a team organisation (docs/organisations.md, "Creating an organisation"): one function
for the web page, the operator console and ``modelgate admin create-org``. The name is checked
(one line, 1 to ``MAX_NAME`` characters) and must be free among team organisations ignoring case
(SSO grant rules and the command line find organisations by name); the creator's chosen owner
becomes its ``owner``; its pool starts at a zero balance, prepaid unless said otherwise. It is
recorded in the audit log in OpenAI's vocabulary, which has no ``organization.created``: as
``organization.updated`` with ``changes_requested`` holding the new ``name`` and ``billing_mode``,
and ``user.added`` (``data.role`` ``owner``) for the owner."""

from __future__ import annotations

from modelgate.store import organisations as orgs
from modelgate.store.audit import Actor, record
from modelgate.store.db import Conn

MAX_NAME = 100


class OrgNameError(ValueError):
    """A name that cannot be used; its message says why, for the person who typed it."""


def clean_name(raw: object) -> str:
    name = " ".join(str(raw or "").split())
    if not name:
        raise OrgNameError("Give the organisation a name.")
    if len(name) > MAX_NAME or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise OrgNameError(f"Use at most {MAX_NAME} characters, on one line.")
    return name


async def create_team_org(
    conn: Conn, *, name: object, owner_id: int, actor: Actor, postpaid: bool = False
) -> int:
    """Create the organisation in the caller's transaction; returns its id. Raises
    ``OrgNameError`` for a bad or taken name (nothing is written then)."""
    clean = clean_name(name)
    if await orgs.team_org_named(conn, name=clean) is not None:
        raise OrgNameError(f"An organisation named “{clean}” exists already: choose another name.")
    org_id = await orgs.create_org(conn, name=clean, owner_id=owner_id, postpaid=postpaid)
    mode = "postpaid" if postpaid else "prepaid"
    await record(
        conn,
        org_id=org_id,
        type="organization.updated",
        actor=actor,
        resource_id=f"org_{org_id}",
        details={"changes_requested": {"name": clean, "billing_mode": mode}},
    )
    await record(
        conn,
        org_id=org_id,
        type="user.added",
        actor=actor,
        resource_id=f"user_{owner_id}",
        details={"data": {"role": "owner"}},
    )
    return org_id
