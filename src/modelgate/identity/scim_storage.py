"""The SCIM resources in modelgate's database, for ``scim2-server``'s protocol handler.

Each resource is kept whole (the JSON its identity provider wrote, less any password: accounts
provisioned through SCIM sign in through single sign-on) with its version for ETags. A User
provisions the account of its email (its primary email, else its first, else a ``userName`` that
is an email): found by that email, or created without a password. ``active: false`` deactivates
the account (``store.identity.deactivate_account``: the account and every key it owns disabled,
its web sessions ended) and, once committed, revokes those keys from every instance's cache;
``active: true`` enables the account again (its keys stay disabled). Deleting a User deactivates
its account the same way; the account row and its books stay. Through an organisation's token,
a provisioned account also joins that organisation (as a member); Groups map to roles through
``identity/scim_groups.py``.

Searches: an ``userName eq "..."`` filter (what identity providers send before each create) is
answered from an index; other filters are evaluated by scim2-server over the tenant's resources
of that type.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from scim2_models import (
    Meta,
    NotFoundException,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    SearchRequest,
    UniquenessException,
)
from scim2_models.path import CompareOperator, Comparison
from scim2_server.memory import InMemoryStorage
from scim2_server.storage import AsyncScimStorage, SearchPage

from modelgate.identity.scim_groups import member_ids, regroup
from modelgate.settings import GroupRule
from modelgate.store import identity as store
from modelgate.store import organisations as orgs
from modelgate.store.accounts import sign_in_state
from modelgate.store.audit import Actor, audit
from modelgate.store.db import Conn, Engine, IntegrityError

SCIM_ACTOR = Actor(None, "SCIM")

ModelFor = Callable[[ResourceType], type[Resource[Any]]]
Revoke = Callable[[int], Awaitable[None]]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _version(tag: str | None) -> int | None:
    """The number of an ETag this storage gave (``W/"3"``); -1 for any other tag."""
    if tag is None:
        return None
    digits = tag.removeprefix("W/").strip('"')
    return int(digits) if digits.isdigit() else -1


def user_email(resource: Any) -> str | None:
    """The email a User resource provisions: its primary email, else its first, else its userName."""
    emails = [e for e in (getattr(resource, "emails", None) or []) if getattr(e, "value", None)]
    chosen = next((e for e in emails if e.primary), emails[0] if emails else None)
    candidate = str(chosen.value) if chosen is not None else str(getattr(resource, "user_name", "") or "")
    candidate = candidate.strip().lower()
    local, _, domain = candidate.partition("@")
    if not local or "." not in domain or len(candidate) > 320 or any(c.isspace() for c in candidate):
        return None
    return candidate


class DatabaseScimStorage(AsyncScimStorage):
    """One tenant's SCIM resources (a tenant is what one bearer token provisions)."""

    supports_cursors = False

    def __init__(
        self,
        *,
        engine: Engine,
        tenant: str,
        model_for: ModelFor,
        revoke: Revoke,
        org_id: int | None = None,
        rules: list[GroupRule] | None = None,
    ) -> None:
        self._engine = engine
        self._tenant = tenant
        self._org_id = org_id
        self._rules = rules or []
        self._model_for = model_for
        self._revoke = revoke

    def _load(self, resource_type: ResourceType, row: store.ScimRow) -> Resource[Any]:
        resource = self._model_for(resource_type).model_validate(json.loads(row.body))
        resource.id = row.id
        resource.meta = Meta(
            resource_type=resource_type.name,
            created=_aware(row.created_at),
            last_modified=_aware(row.updated_at),
            version=f'W/"{row.version}"',
        )
        return resource

    @staticmethod
    def _body(resource: Resource[Any]) -> tuple[str, str | None]:
        """The JSON kept for a resource (no id, meta or password) and its unique value."""
        data = resource.model_dump()
        for name in ("id", "meta", "password"):
            data.pop(name, None)
        user_name = data.get("userName")
        return json.dumps(data), (str(user_name).lower() if isinstance(user_name, str) else None)

    async def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        async with self._engine.connect() as conn:
            row = await store.scim_get(conn, tenant=self._tenant, resource_id=resource_id[:64])
        if row is None or row.resource_type != resource_type.name:
            raise NotFoundException(detail=f"{resource_type.name} {resource_id!r} not found")
        return self._load(resource_type, row)

    async def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        by_name = {str(rt.name): rt for rt in resource_types}
        async with self._engine.connect() as conn:
            rows = await store.scim_list(
                conn,
                tenant=self._tenant,
                resource_types=list(by_name),
                unique_value=_user_name_equality(search_request, list(by_name)),
            )
        memory = InMemoryStorage()
        memory.resources = [self._load(by_name[row.resource_type], row) for row in rows]
        return memory.search(resource_types, search_request, position=position)

    async def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        resource_id = uuid.uuid4().hex
        body, unique = self._body(resource)
        now = datetime.now(UTC)
        revoked: list[int] = []
        try:
            async with self._engine.begin() as conn:
                account_id = None
                if resource_type.name == "User":
                    account_id, revoked = await self._provision(conn, resource, None)
                await store.scim_insert(
                    conn,
                    tenant=self._tenant,
                    resource_id=resource_id,
                    resource_type=str(resource_type.name),
                    unique_value=unique,
                    account_id=account_id,
                    body=body,
                    now=now,
                )
                if resource_type.name == "Group":
                    await self._regroup(conn, member_ids(json.loads(body)))
        except IntegrityError:
            raise UniquenessException(detail="This userName is already in use.") from None
        await self._revoke_all(revoked)
        return await self.get(resource_type, resource_id)

    async def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        resource_id = str(resource.id)
        body, unique = self._body(resource)
        revoked: list[int] = []
        try:
            async with self._engine.begin() as conn:
                row = await self._current(conn, resource_type, resource_id, expected_version)
                account_id = row.account_id
                if resource_type.name == "User":
                    account_id, revoked = await self._provision(conn, resource, account_id)
                written = await store.scim_replace(
                    conn,
                    tenant=self._tenant,
                    resource_id=resource_id,
                    expected_version=row.version,
                    unique_value=unique,
                    account_id=account_id,
                    body=body,
                    now=datetime.now(UTC),
                )
                if not written:  # written by another request since it was read
                    raise PreconditionFailedException
                if resource_type.name == "Group":
                    await self._regroup(conn, member_ids(json.loads(row.body)) | member_ids(json.loads(body)))
        except IntegrityError:
            raise UniquenessException(detail="This userName is already in use.") from None
        await self._revoke_all(revoked)
        return await self.get(resource_type, resource_id)

    async def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        revoked: list[int] = []
        async with self._engine.begin() as conn:
            row = await self._current(conn, resource_type, resource_id[:64], expected_version)
            if row.account_id is not None and resource_type.name == "User":
                revoked = await store.deactivate_account(conn, account_id=row.account_id)
                await audit(conn, actor=SCIM_ACTOR, action="account.deprovision", account_id=row.account_id)
            if not await store.scim_delete(
                conn, tenant=self._tenant, resource_id=row.id, expected_version=row.version
            ):
                raise PreconditionFailedException
            if resource_type.name == "Group":
                await self._regroup(conn, member_ids(json.loads(row.body)))
        await self._revoke_all(revoked)

    async def _current(
        self, conn: Conn, resource_type: ResourceType, resource_id: str, expected: str | None
    ) -> store.ScimRow:
        row = await store.scim_get(conn, tenant=self._tenant, resource_id=resource_id)
        if row is None or row.resource_type != resource_type.name:
            raise NotFoundException(detail=f"{resource_type.name} {resource_id!r} not found")
        wanted = _version(expected)
        if wanted is not None and wanted != row.version:
            raise PreconditionFailedException
        return row

    async def _provision(
        self, conn: Conn, resource: Any, account_id: int | None
    ) -> tuple[int | None, list[int]]:
        """The account a User provisions (kept once linked), enabled or deactivated as the
        resource's ``active`` says; and the keys to revoke after the commit."""
        if account_id is None:
            email = user_email(resource)
            if email is None:
                return None, []
            found = await store.account_by_email(conn, email=email)
            if found is None:
                account_id = await store.create_sso_account(conn, email=email)
                await audit(conn, actor=SCIM_ACTOR, action="account.provision", account_id=account_id)
                if self._org_id is not None:
                    await orgs.add_org_member(conn, org_id=self._org_id, account_id=account_id, role="member")
            else:
                account_id = found[0]
                if (
                    self._org_id is not None
                    and (await orgs.org_role(conn, org_id=self._org_id, account_id=account_id)) is None
                ):  # an organisation's directory reaches its own members only
                    raise UniquenessException(
                        detail="An account with this email exists outside this organisation; an "
                        "operator or the organisation's owner must add it to the organisation first."
                    )
        state = await sign_in_state(conn, account_id=account_id)
        disabled = state.disabled if state is not None else False
        if resource.active is False and not disabled:
            revoked = await store.deactivate_account(conn, account_id=account_id)
            await audit(conn, actor=SCIM_ACTOR, action="account.deactivate", account_id=account_id)
            return account_id, revoked
        if resource.active is not False and disabled:
            await store.set_account_enabled(conn, account_id=account_id)
            await audit(conn, actor=SCIM_ACTOR, action="account.activate", account_id=account_id)
        return account_id, []

    async def _regroup(self, conn: Conn, user_ids: set[str]) -> None:
        await regroup(conn, tenant=self._tenant, org_id=self._org_id, rules=self._rules, user_ids=user_ids)

    async def _revoke_all(self, key_ids: list[int]) -> None:
        for key_id in key_ids:
            await self._revoke(key_id)


def _user_name_equality(search_request: SearchRequest[Any], names: list[str]) -> str | None:
    """The value of a ``userName eq "..."`` filter on Users (answered from the index), else None."""
    scim_filter = search_request.filter
    if names != ["User"] or scim_filter is None:
        return None
    node = getattr(scim_filter, "ast", None)
    if (
        isinstance(node, Comparison)
        and node.op == CompareOperator.eq
        and isinstance(node.value, str)
        and str(node.attr_path).rsplit(":", 1)[-1].lower() == "username"
    ):
        return node.value.lower()
    return None
