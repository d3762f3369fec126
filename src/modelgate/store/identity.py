"""SQL of identity for companies (issue 25): SCIM resources, single sign-on in progress, accounts'
identities at OpenID providers, and deprovisioning (keyword-only, in the caller's transaction).

Deprovisioning (``deactivate_account``) disables the account and every key it owns and ends its web
sessions in one transaction; the caller then revokes the keys in every instance's cache
(``await keys.revoke(key_id=...)``). The books (ledger, request logs) are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.store.organisations import create_personal_org
from modelgate.store.schema import Account, ApiKey, Organisation, OrgMember, Project, ProjectMember, utcnow
from modelgate.store.schema_identity import AccountIdentity, OIDCLogin, OrgSignIn, ScimResource, ScimToken
from modelgate.store.schema_web import WebSession


@dataclass(frozen=True, slots=True)
class ScimRow:
    id: str
    resource_type: str
    account_id: int | None
    version: int
    body: str
    created_at: datetime
    updated_at: datetime


_SCIM_COLUMNS = (
    ScimResource.id,
    ScimResource.resource_type,
    ScimResource.account_id,
    ScimResource.version,
    ScimResource.body,
    ScimResource.created_at,
    ScimResource.updated_at,
)


def _scim_row(row: Any) -> ScimRow:
    return ScimRow(*row)


async def scim_get(conn: AsyncConnection, *, tenant: str, resource_id: str) -> ScimRow | None:
    q = select(*_SCIM_COLUMNS).where(ScimResource.tenant == tenant, ScimResource.id == resource_id)
    row = (await conn.execute(q)).first()
    return _scim_row(row) if row is not None else None


async def scim_list(
    conn: AsyncConnection, *, tenant: str, resource_types: list[str], unique_value: str | None = None
) -> list[ScimRow]:
    """The tenant's resources of these types (only the one whose unique value is ``unique_value``,
    when given), oldest first."""
    q = select(*_SCIM_COLUMNS).where(
        ScimResource.tenant == tenant, ScimResource.resource_type.in_(resource_types)
    )
    if unique_value is not None:
        q = q.where(ScimResource.unique_value == unique_value)
    rows = (await conn.execute(q.order_by(ScimResource.created_at, ScimResource.id))).all()
    return [_scim_row(r) for r in rows]


async def scim_insert(
    conn: AsyncConnection,
    *,
    tenant: str,
    resource_id: str,
    resource_type: str,
    unique_value: str | None,
    account_id: int | None,
    body: str,
    now: datetime,
) -> None:
    """Raises ``IntegrityError`` when the unique value is taken in the tenant."""
    await conn.execute(
        insert(ScimResource).values(
            id=resource_id,
            tenant=tenant,
            resource_type=resource_type,
            unique_value=unique_value,
            account_id=account_id,
            version=1,
            body=body,
            created_at=now,
            updated_at=now,
        )
    )


async def scim_replace(
    conn: AsyncConnection,
    *,
    tenant: str,
    resource_id: str,
    expected_version: int | None,
    unique_value: str | None,
    account_id: int | None,
    body: str,
    now: datetime,
) -> bool:
    """Write a new version; False when the resource is gone or at another version than
    ``expected_version``. Raises ``IntegrityError`` when the unique value is taken."""
    q = update(ScimResource).where(ScimResource.tenant == tenant, ScimResource.id == resource_id)
    if expected_version is not None:
        q = q.where(ScimResource.version == expected_version)
    res = await conn.execute(
        q.values(
            unique_value=unique_value,
            account_id=account_id,
            body=body,
            updated_at=now,
            version=ScimResource.version + 1,
        )
    )
    return bool(res.rowcount == 1)


async def scim_delete(
    conn: AsyncConnection, *, tenant: str, resource_id: str, expected_version: int | None
) -> bool:
    q = delete(ScimResource).where(ScimResource.tenant == tenant, ScimResource.id == resource_id)
    if expected_version is not None:
        q = q.where(ScimResource.version == expected_version)
    return bool((await conn.execute(q)).rowcount == 1)


async def account_by_email(conn: AsyncConnection, *, email: str) -> tuple[int, bool] | None:
    """(id, disabled) of the account with this (normalised) email."""
    row = (await conn.execute(select(Account.id, Account.disabled).where(Account.email == email))).first()
    return (int(row[0]), bool(row[1])) if row is not None else None


async def create_sso_account(conn: AsyncConnection, *, email: str) -> int:
    """A new account without a password (it signs in through its identity provider)."""
    result = await conn.execute(
        insert(Account).values(email=email, is_admin=False, balance_credits=0).returning(Account.id)
    )
    account_id = int(result.scalar_one())
    await create_personal_org(conn, account_id=account_id, name=email)
    return account_id


async def deactivate_account(conn: AsyncConnection, *, account_id: int) -> list[int]:
    """Disable the account and every live key it owns (in its own organisation and, as their
    member, in team organisations), and end its web sessions; returns the ids
    of its keys, to revoke from every instance's cache once committed."""
    await conn.execute(update(Account).where(Account.id == account_id).values(disabled=True))
    now = utcnow()
    owned = or_(ApiKey.account_id == account_id, ApiKey.member_id == account_id)  # team keys too
    await conn.execute(
        update(ApiKey)
        .where(owned, ApiKey.deleted_at.is_(None), ApiKey.disabled.is_(False))
        .values(disabled=True, updated_at=now)
    )
    await conn.execute(delete(WebSession).where(WebSession.account_id == account_id))
    rows = await conn.execute(select(ApiKey.id).where(owned))
    return [int(r[0]) for r in rows]


async def set_account_enabled(conn: AsyncConnection, *, account_id: int) -> bool:
    """Enable a disabled account (its keys stay disabled); True when it was disabled."""
    res = await conn.execute(
        update(Account).where(Account.id == account_id, Account.disabled.is_(True)).values(disabled=False)
    )
    return bool(res.rowcount == 1)


async def set_operator_flag(conn: AsyncConnection, *, account_id: int, operator: bool) -> bool:
    """Set ``is_admin``; True when it changed."""
    res = await conn.execute(
        update(Account)
        .where(Account.id == account_id, Account.is_admin.is_not(operator))
        .values(is_admin=operator)
    )
    return bool(res.rowcount == 1)


async def save_oidc_login(
    conn: AsyncConnection,
    *,
    digest: str,
    provider: str,
    code_verifier: str,
    nonce: str,
    next_path: str,
    expires_at: datetime,
) -> None:
    await conn.execute(delete(OIDCLogin).where(OIDCLogin.expires_at < utcnow()))
    await conn.execute(
        insert(OIDCLogin).values(
            digest=digest,
            provider=provider,
            code_verifier=code_verifier,
            nonce=nonce,
            next_path=next_path,
            expires_at=expires_at,
        )
    )


@dataclass(frozen=True, slots=True)
class PendingLogin:
    provider: str
    code_verifier: str
    nonce: str
    next_path: str
    expires_at: datetime


async def take_oidc_login(conn: AsyncConnection, *, digest: str) -> PendingLogin | None:
    """The sign-in in progress with this state digest, used up (a state is good once)."""
    row = (
        await conn.execute(
            select(
                OIDCLogin.provider,
                OIDCLogin.code_verifier,
                OIDCLogin.nonce,
                OIDCLogin.next_path,
                OIDCLogin.expires_at,
            ).where(OIDCLogin.digest == digest)
        )
    ).first()
    if row is None:
        return None
    res = await conn.execute(delete(OIDCLogin).where(OIDCLogin.digest == digest))
    if res.rowcount != 1:  # used concurrently
        return None
    return PendingLogin(*row)


async def identity_account(conn: AsyncConnection, *, issuer: str, subject: str) -> int | None:
    q = select(AccountIdentity.account_id).where(
        AccountIdentity.issuer == issuer, AccountIdentity.subject == subject
    )
    row = (await conn.execute(q)).first()
    return int(row[0]) if row is not None else None


async def identity_grants(conn: AsyncConnection, *, issuer: str, subject: str) -> dict[str, Any]:
    """What the identity's groups granted at its latest sign-in (``{"orgs": {}, "projects": {}}``)."""
    q = select(AccountIdentity.granted).where(
        AccountIdentity.issuer == issuer, AccountIdentity.subject == subject
    )
    row = (await conn.execute(q)).first()
    granted = row[0] if row is not None and isinstance(row[0], dict) else {}
    return {"orgs": dict(granted.get("orgs") or {}), "projects": dict(granted.get("projects") or {})}


async def record_identity(
    conn: AsyncConnection,
    *,
    account_id: int,
    provider: str,
    issuer: str,
    subject: str,
    email: str,
    groups: list[str],
    granted: dict[str, Any] | None = None,
) -> None:
    """Link (issuer, subject) to the account, or refresh the link's email, groups and grants."""
    now = utcnow()
    res = await conn.execute(
        update(AccountIdentity)
        .where(AccountIdentity.issuer == issuer, AccountIdentity.subject == subject)
        .values(email=email, groups=groups, granted=granted, last_sign_in_at=now, provider=provider)
    )
    if res.rowcount == 0:
        await conn.execute(
            insert(AccountIdentity).values(
                account_id=account_id,
                provider=provider,
                issuer=issuer,
                subject=subject,
                email=email,
                groups=groups,
                granted=granted,
                created_at=now,
                last_sign_in_at=now,
            )
        )


async def team_org_by_name(conn: AsyncConnection, *, name: str) -> int | None:
    """The id of the (non-personal) organisation of this name."""
    q = select(Organisation.id).where(Organisation.name == name, Organisation.personal.is_(False))
    row = (await conn.execute(q.order_by(Organisation.id).limit(1))).first()
    return int(row[0]) if row is not None else None


async def project_by_name(conn: AsyncConnection, *, org_id: int, name: str) -> int | None:
    q = select(Project.id).where(Project.org_id == org_id, Project.name == name)
    row = (await conn.execute(q.order_by(Project.id).limit(1))).first()
    return int(row[0]) if row is not None else None


async def remove_org_member(conn: AsyncConnection, *, org_id: int, account_id: int) -> None:
    await conn.execute(
        delete(OrgMember).where(OrgMember.org_id == org_id, OrgMember.account_id == account_id)
    )


async def remove_project_member(conn: AsyncConnection, *, project_id: int, account_id: int) -> None:
    await conn.execute(
        delete(ProjectMember).where(
            ProjectMember.project_id == project_id, ProjectMember.account_id == account_id
        )
    )


async def org_name(conn: AsyncConnection, *, org_id: int) -> str | None:
    row = (await conn.execute(select(Organisation.name).where(Organisation.id == org_id))).first()
    return str(row[0]) if row is not None else None


async def add_scim_token(conn: AsyncConnection, *, org_id: int, digest: str, prefix: str) -> None:
    values = {"digest": digest, "org_id": org_id, "prefix": prefix, "created_at": utcnow()}
    await conn.execute(insert(ScimToken).values(**values))


async def scim_token_org(conn: AsyncConnection, *, digest: str) -> int | None:
    """The organisation whose SCIM token has this digest."""
    row = (await conn.execute(select(ScimToken.org_id).where(ScimToken.digest == digest))).first()
    return int(row[0]) if row is not None else None


async def set_sso_only(conn: AsyncConnection, *, org_id: int, sso_only: bool) -> None:
    res = await conn.execute(update(OrgSignIn).where(OrgSignIn.org_id == org_id).values(sso_only=sso_only))
    if res.rowcount == 0:
        await conn.execute(insert(OrgSignIn).values(org_id=org_id, sso_only=sso_only))


async def in_sso_only_org(conn: AsyncConnection, *, account_id: int) -> bool:
    """Whether the account is a member of an organisation whose members sign in through SSO only."""
    q = (
        select(OrgMember.org_id)
        .join(OrgSignIn, OrgSignIn.org_id == OrgMember.org_id)
        .where(OrgMember.account_id == account_id, OrgSignIn.sso_only.is_(True))
        .limit(1)
    )
    return (await conn.execute(q)).first() is not None
