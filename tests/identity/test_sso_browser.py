"""Single sign-on end to end in a real headless Chromium (Debian chromium + playwright): two
OpenID providers (authlib, PKCE required, signed ID tokens, discovery, JWKS) configured at once;
just-in-time accounts matched by verified email; the groups claim mapped by the operator's rules
at each sign-in; SSO-only domains refuse passwords except an operator's."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from modelgate.store import organisations as orgs
from modelgate.store.schema import Account
from modelgate.store.schema_identity import AccountIdentity
from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.oidc_provider import OpenIDProvider
from tests.fakes.openai_server import FakeOpenAI
from tests.web.conftest import new_page
from tests.web.helpers import log_in, make_account, with_db

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

RULES = [
    {"group": "ml-platform", "organisation": "corp", "project": "research", "role": "member"},
    {"group": "sales-team", "organisation": "corp", "org_role": "admin", "project": "sales", "role": "owner"},
    {"group": "gateway-admins", "operator": True},
    {"group": "gateway-admins", "organisation": "no such organisation"},  # grants nothing
]


def sso_server(make_live_server: Any, upstream: FakeOpenAI, *idps: tuple[str, OpenIDProvider]) -> LiveServer:
    providers = [
        {
            "name": name,
            "label": idp.title,
            "issuer": idp.issuer,
            "client_id": f"modelgate-{name}",
            "client_secret": f"secret-{name}",
            "scopes": ["openid", "email", "profile", "groups"],
        }
        for name, idp in idps
    ]
    with ThreadPoolExecutor(1) as pool:  # off the thread whose event loop Playwright runs
        server: LiveServer = pool.submit(
            make_live_server,
            MOCK_CONFIG.format(base_url=upstream.base_url),
            oidc_providers=providers,
            group_rules=RULES,
            sso_only_domains=["corp.example"],
        ).result()
    for name, idp in idps:
        idp.add_client(f"modelgate-{name}", f"secret-{name}", f"{server.url}/app/sso/{name}/callback")
    return server


def account(server: LiveServer, email: str) -> Any:
    async def work(conn: Any) -> Any:
        return (await conn.execute(select(Account).where(Account.email == email))).first()

    return with_db(server, work)


def identities(server: LiveServer, email: str) -> list[Any]:
    async def work(conn: Any) -> list[Any]:
        q = select(AccountIdentity).where(AccountIdentity.email == email).order_by(AccountIdentity.id)
        return list((await conn.execute(q)).all())

    return with_db(server, work)


def sign_in_through(page: Any, server: LiveServer, provider: str, username: str, password: str) -> None:
    page.goto(f"{server.url}/app/login")
    page.click(f"#sso-{provider}")
    page.wait_for_selector("#username")  # the provider's own page
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#sign-in")


def team(server: LiveServer) -> tuple[int, int, int]:
    """The 'corp' organisation (owned by its admin) with its 'research' and 'sales' projects."""
    owner = make_account(server, "owner@corp.example", "owner's password")

    async def work(conn: Any) -> tuple[int, int, int]:
        org_id = await orgs.create_org(conn, name="corp", owner_id=owner)
        research = await orgs.create_project(conn, org_id=org_id, name="research")
        sales = await orgs.create_project(conn, org_id=org_id, name="sales")
        return org_id, research, sales

    return with_db(server, work)


def roles(server: LiveServer, email: str, org_id: int, *projects: int) -> tuple[str | None, ...]:
    async def work(conn: Any) -> tuple[str | None, ...]:
        account_id = (await conn.execute(select(Account.id).where(Account.email == email))).scalar_one()
        found = [await orgs.org_role(conn, org_id=org_id, account_id=account_id)]
        for project_id in projects:
            found.append(await orgs.project_role(conn, project_id=project_id, account_id=account_id))
        return tuple(found)

    return with_db(server, work)


def test_two_providers_jit_accounts_and_group_mapping(
    make_live_server: Any,
    openai_upstream: FakeOpenAI,
    browser: Any,
    corp_idp: OpenIDProvider,
    partner_idp: OpenIDProvider,
) -> None:
    server = sso_server(make_live_server, openai_upstream, ("corp", corp_idp), ("partner", partner_idp))
    org_id, research, sales = team(server)

    # Alice: no account yet, created on her first sign-in (just in time).
    page = new_page(browser)
    sign_in_through(page, server, "corp", "alice", "alice-pass")
    page.wait_for_url(f"{server.url}/app/keys")
    assert "alice@corp.example" in page.content()
    alice = account(server, "alice@corp.example")
    assert alice is not None and alice.password_hash is None and not alice.is_admin
    [link] = identities(server, "alice@corp.example")
    assert link.issuer == corp_idp.issuer and link.subject == "sub-alice" and link.provider == "corp"
    assert link.groups == ["ml-platform", "everyone"]
    assert corp_idp.codes_issued == 1 and corp_idp.tokens_issued == 1
    # Her group ml-platform put her in the research project (and so in the organisation).
    assert roles(server, "alice@corp.example", org_id, research, sales) == ("member", "member", None)
    page.context.close()

    # Carol, through the second provider beside the first.
    page = new_page(browser)
    sign_in_through(page, server, "partner", "carol", "carol-pass")
    page.wait_for_url(f"{server.url}/app/keys")
    assert "carol@partner.example" in page.content()
    [link] = identities(server, "carol@partner.example")
    assert link.issuer == partner_idp.issuer and partner_idp.tokens_issued == 1
    page.context.close()

    # Bob already has a password account: matched by his verified email (case aside), made an
    # operator by his group; a password log-in of corp.example is refused (SSO only), but not an
    # operator's (break-glass).
    make_account(server, "bob@corp.example", "bob's password")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = log_in(c, "bob@corp.example", "bob's password")
        assert r.status_code == 403 and "single sign-on" in r.text
    page = new_page(browser)
    sign_in_through(page, server, "corp", "bob", "bob-pass")
    page.wait_for_url(f"{server.url}/app/keys")
    bob = account(server, "bob@corp.example")
    assert bob.is_admin and bob.password_hash is not None
    assert page.goto(f"{server.url}/admin").status == 200  # the operator console
    page.context.close()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert log_in(c, "bob@corp.example", "bob's password").status_code == 303  # an operator

    # Re-evaluated at each sign-in: Bob leaves gateway-admins, and his next sign-in ends it.
    corp_idp.users["bob"].groups = ["everyone"]
    page = new_page(browser)
    sign_in_through(page, server, "corp", "bob", "bob-pass")
    page.wait_for_url(f"{server.url}/app/keys")
    assert not account(server, "bob@corp.example").is_admin
    assert page.goto(f"{server.url}/admin").status == 404  # not an operator any more
    page.context.close()

    # Alice moves from ml-platform to sales-team: her next sign-in moves her between projects.
    corp_idp.users["alice"].groups = ["sales-team"]
    page = new_page(browser)
    sign_in_through(page, server, "corp", "alice", "alice-pass")
    page.wait_for_url(f"{server.url}/app/keys")
    page.context.close()
    assert roles(server, "alice@corp.example", org_id, research, sales) == ("admin", None, "owner")

    # She leaves every group: what her groups granted is taken back, but not a membership the
    # organisation's owner gave her by hand meanwhile.
    async def by_hand(conn: Any) -> None:
        alice_id = (
            await conn.execute(select(Account.id).where(Account.email == "alice@corp.example"))
        ).scalar_one()
        await orgs.add_project_member(conn, project_id=research, account_id=alice_id, role="owner")

    with_db(server, by_hand)
    corp_idp.users["alice"].groups = []
    page = new_page(browser)
    sign_in_through(page, server, "corp", "alice", "alice-pass")
    page.wait_for_url(f"{server.url}/app/keys")
    page.context.close()
    assert roles(server, "alice@corp.example", org_id, research, sales) == (None, "owner", None)

    # An email the provider has not verified does not sign anyone in.
    page = new_page(browser)
    sign_in_through(page, server, "corp", "mallory", "mallory-pass")
    page.wait_for_selector("main")
    assert "has not verified this email address" in page.content()
    assert account(server, "ceo@corp.example") is None
    page.context.close()
