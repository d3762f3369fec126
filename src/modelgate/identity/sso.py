"""Who a single sign-on is, and what their groups grant (re-evaluated at every sign-in).

The account: the one already linked to the provider's (issuer, subject); else the one with the
provider's verified email, now linked; else a new account without a password (just in time). A
disabled account (deprovisioned through SCIM, or by an operator) cannot sign in.

Groups: ``MODELGATE_GROUP_RULES`` map a group of the groups claim to what it grants. ``operator``:
when any rule (of this provider) grants it, the account is an operator exactly while one of its
groups matches such a rule; without such rules the flag is left as it is. ``project``/``role``
rules are evaluated and kept on the identity; docs/identity.md says what they apply to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.accounts.operators import Actor, audit
from modelgate.identity.oidc import SignedIn, SSOError
from modelgate.settings import GroupRule
from modelgate.store import identity as store


@dataclass(frozen=True, slots=True)
class Membership:
    organisation: str | None
    project: str
    role: str


@dataclass(frozen=True, slots=True)
class Grants:
    operator: bool | None  # None: no rule of this provider is about operators
    memberships: list[Membership] = field(default_factory=list)


def evaluate(rules: list[GroupRule], *, provider: str, groups: list[str]) -> Grants:
    """What ``groups`` grant under ``rules`` (those of any provider or of ``provider``)."""
    applicable = [r for r in rules if r.provider in (None, provider)]
    have = set(groups)
    matched = [r for r in applicable if r.group in have]
    operator = any(r.operator for r in matched) if any(r.operator for r in applicable) else None
    memberships = list(
        dict.fromkeys(Membership(r.organisation, r.project, r.role) for r in matched if r.project)
    )
    return Grants(operator=operator, memberships=memberships)


@dataclass(frozen=True, slots=True)
class SignInResult:
    account_id: int
    created: bool
    is_admin: bool
    grants: Grants


async def sign_in(
    conn: AsyncConnection, *, provider: str, who: SignedIn, rules: list[GroupRule]
) -> SignInResult:
    """The account ``who`` signs in as, its groups' grants applied (in the caller's transaction)."""
    actor = Actor(None, f"sso:{provider}")
    created = False
    account_id = await store.identity_account(conn, issuer=who.issuer, subject=who.subject)
    if account_id is None:
        found = await store.account_by_email(conn, email=who.email)
        if found is not None:
            account_id = found[0]
        else:
            account_id = await store.create_sso_account(conn, email=who.email)
            created = True
            await audit(conn, actor=actor, action="account.sso_create", account_id=account_id)
    flags = await store.account_flags(conn, account_id=account_id)
    if flags is None or flags[0]:
        raise SSOError("This account is disabled. Contact the operator of this gateway.")
    grants = evaluate(rules, provider=provider, groups=who.groups)
    is_admin = flags[1]
    if grants.operator is not None and grants.operator != is_admin:
        await store.set_operator_flag(conn, account_id=account_id, operator=grants.operator)
        action = "account.make_operator" if grants.operator else "account.remove_operator"
        await audit(conn, actor=actor, action=action, account_id=account_id, detail="groups claim")
        is_admin = grants.operator
    await store.record_identity(
        conn,
        account_id=account_id,
        provider=provider,
        issuer=who.issuer,
        subject=who.subject,
        email=who.email,
        groups=who.groups,
    )
    return SignInResult(account_id=account_id, created=created, is_admin=is_admin, grants=grants)
