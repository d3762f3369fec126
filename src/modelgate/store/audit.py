"""The one audit log (``audit_log``): every management action, written in the caller's transaction
by ``record`` (an organisation's changes, in OpenAI's event vocabulary) or ``audit`` (an operator's
console or command-line action on an account or the gateway), read by the console and by OpenAI's
``GET /organization/audit_logs`` (``org_events``). docs/admin-api.md lists what is recorded."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.schema import Account, Project
from modelgate.store.schema_web import AuditEntry

# The event types modelgate records, OpenAI's names (``AuditLogEventType``). Budget and billing-mode
# changes have no OpenAI type: they are ``organization.updated`` / ``project.updated`` with the
# change under ``changes_requested`` (``budget``, ``billing_mode``: modelgate's extensions).
EVENT_TYPES = frozenset(
    {
        "api_key.created",
        "api_key.updated",
        "api_key.deleted",
        "invite.sent",
        "invite.accepted",
        "invite.deleted",
        "organization.updated",
        "project.created",
        "project.updated",
        "project.archived",
        "project.deleted",
        "rate_limit.updated",
        "rate_limit.deleted",
        "service_account.created",
        "service_account.updated",
        "service_account.deleted",
        "user.added",
        "user.updated",
        "user.deleted",
    }
)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it: a person (``account_id``, ``email``) in a web session or the console, or through
    an API key (``key``: the key's tracking id, e.g. ``key_12``), or the command line (no account)."""

    account_id: int | None
    email: str
    key: str | None = None
    ip: str | None = None


async def audit(
    conn: AsyncConnection, *, actor: Actor, action: str, account_id: int | None = None, detail: str = ""
) -> None:
    """An operator's action on an account or the gateway (the console's log)."""
    await conn.execute(
        insert(AuditEntry).values(
            actor_id=actor.account_id,
            actor=actor.email[:320],
            action=action[:64],
            account_id=account_id,
            detail=detail[:2000] or None,
            actor_key=actor.key,
            actor_ip=(actor.ip or None) and actor.ip[:64],
        )
    )


async def record(
    conn: AsyncConnection,
    *,
    org_id: int,
    type: str,
    actor: Actor,
    project_id: int | None = None,
    resource_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """One management change of organisation ``org_id``, in the same transaction as the change.

    ``type`` is one of ``EVENT_TYPES``; ``resource_id`` the changed object's API id (``proj_3``,
    ``user_7``, ``key_12``, ``invite_5``...); ``details`` the event's payload as OpenAI's
    ``AuditLog`` shapes it under the type (``{"data": {...}}`` or ``{"changes_requested": {...}}``;
    its ``id`` is ``resource_id``)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"not an audit event type modelgate records: {type!r}")
    payload = {"id": resource_id, **(details or {})} if resource_id is not None else dict(details or {})
    await conn.execute(
        insert(AuditEntry).values(
            actor_id=actor.account_id,
            actor=actor.email[:320],
            action=type,
            account_id=org_id,
            org_id=org_id,
            project_id=project_id,
            resource_id=resource_id[:64] if resource_id else None,
            detail=json.dumps(payload, separators=(",", ":"), default=str)[:4000],
            actor_key=actor.key[:64] if actor.key else None,
            actor_ip=actor.ip[:64] if actor.ip else None,
        )
    )


async def account_actor(
    conn: AsyncConnection, *, account_id: int | None, key: str | None = None, ip: str | None = None
) -> Actor:
    """The actor for a person's account (its email looked up), acting through ``key`` if given."""
    email = ""
    if account_id is not None:
        found = (await conn.execute(select(Account.email).where(Account.id == account_id))).scalar()
        email = str(found or "")
    return Actor(account_id, email, key=key, ip=ip)


# -- reading an organisation's events ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which of an organisation's events: each field set narrows them."""

    org_id: int
    project_ids: Sequence[int] = ()
    types: Sequence[str] = ()
    actor_accounts: Sequence[int] = ()  # a person's account id (a user id, ``user_7``)
    actor_keys: Sequence[str] = ()  # a key's tracking id
    actor_emails: Sequence[str] = ()
    resource_ids: Sequence[str] = ()
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    created_at: datetime
    type: str
    project_id: int | None
    project_name: str | None
    actor_id: int | None
    actor_email: str
    actor_key: str | None
    actor_ip: str | None
    details: dict[str, Any]


def _conditions(f: EventFilter) -> list[Any]:
    conds: list[Any] = [AuditEntry.org_id == f.org_id]
    if f.project_ids:
        conds.append(AuditEntry.project_id.in_(sorted(set(f.project_ids))))
    if f.types:
        conds.append(AuditEntry.action.in_(sorted(set(f.types))))
    actors = []
    if f.actor_accounts:
        actors.append(AuditEntry.actor_id.in_(sorted(set(f.actor_accounts))))
    if f.actor_keys:
        actors.append(AuditEntry.actor_key.in_(sorted(set(f.actor_keys))))
    if actors:
        conds.append(or_(*actors))
    if f.actor_emails:
        conds.append(AuditEntry.actor.in_(sorted({e.lower() for e in f.actor_emails})))
    if f.resource_ids:
        conds.append(AuditEntry.resource_id.in_(sorted(set(f.resource_ids))))
    if f.since is not None:
        conds.append(AuditEntry.created_at >= f.since)
    if f.until is not None:
        conds.append(AuditEntry.created_at < f.until)
    return conds


async def org_events(
    conn: AsyncConnection, f: EventFilter, *, limit: int, after: int | None = None, before: int | None = None
) -> list[EventRow]:
    """A page of events, newest first: older than event ``after``, or (``before``) the ``limit``
    events just newer than event ``before``; ``limit`` rows at most."""
    conds = _conditions(f)
    if after is not None:
        conds.append(AuditEntry.id < after)
    if before is not None:
        conds.append(AuditEntry.id > before)
    order = AuditEntry.id.asc() if before is not None and after is None else AuditEntry.id.desc()
    q = (
        select(
            AuditEntry.id,
            AuditEntry.created_at,
            AuditEntry.action,
            AuditEntry.project_id,
            Project.name,
            AuditEntry.actor_id,
            AuditEntry.actor,
            AuditEntry.actor_key,
            AuditEntry.actor_ip,
            AuditEntry.detail,
        )
        .outerjoin(Project, Project.id == AuditEntry.project_id)
        .where(*conds)
        .order_by(order)
        .limit(limit)
    )
    rows = [EventRow(*r[:9], _payload(r[9])) for r in (await conn.execute(q)).all()]
    return sorted(rows, key=lambda r: -r.id)


def _payload(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
