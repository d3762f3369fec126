"""Who a single sign-on is, and what their groups grant (re-evaluated at every sign-in).

The account: the one already linked to the provider's (issuer, subject); else the one with the
provider's verified email, now linked; else a new account without a password (just in time). A
disabled account (deprovisioned through SCIM, or by an operator) cannot sign in.

Groups: ``MODELGATE_GROUP_RULES`` map a group of the groups claim to what it grants. ``operator``:
when any rule (of this provider) grants it, the account is an operator exactly while one of its
groups matches such a rule; without such rules the flag is left as it is. Organisation roles and
project memberships: ``identity/grants.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelgate.identity.grants import Grants, apply, evaluate
from modelgate.identity.oidc import SignedIn, SSOError
from modelgate.settings import GroupRule
from modelgate.store import identity as store
from modelgate.store.accounts import sign_in_state
from modelgate.store.audit import Actor, audit
from modelgate.store.db import Conn


@dataclass(frozen=True, slots=True)
class SignInResult:
    account_id: int
    created: bool
    is_admin: bool
    grants: Grants


async def sign_in(conn: Conn, *, provider: str, who: SignedIn, rules: list[GroupRule]) -> SignInResult:
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
    state = await sign_in_state(conn, account_id=account_id)
    if state is None or state.disabled:
        raise SSOError("This account is disabled. Contact the operator of this gateway.")
    grants = evaluate(rules, provider=provider, groups=who.groups)
    previous = await store.identity_grants(conn, issuer=who.issuer, subject=who.subject)
    granted = await apply(conn, account_id=account_id, grants=grants, previous=previous)
    is_admin = state.is_admin
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
        granted=granted,
    )
    return SignInResult(account_id=account_id, created=created, is_admin=is_admin, grants=grants)
