"""SCIM per organisation: an organisation's token (``modelgate admin scim-token``) sees only its
own resources, the Users it provisions join it, and its Groups grant roles in it alone through the
operator's group rules (never the operator flag, never another organisation); a gateway token's
Groups may grant the operator flag. "SSO only" per organisation refuses its members' passwords
(operators excepted)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import select

from modelgate.identity.admin import issue_scim_token, set_sso_only
from modelgate.store import organisations as orgs
from modelgate.store.schema import Account
from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.openai_server import FakeOpenAI
from tests.identity.test_scim_conformance import TOKEN
from tests.web.helpers import log_in, make_account, with_db

RULES = [
    {"group": "Research", "provider": "scim", "organisation": "acme", "project": "research"},
    {"group": "Admins", "provider": "scim", "operator": True},
    {"group": "Other", "provider": "scim", "organisation": "other-org", "org_role": "owner"},
]
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def scim(server: LiveServer, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}/scim/v2",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
        timeout=30,
    )


def setup(server: LiveServer) -> tuple[int, int, int]:
    owner = make_account(server, "owner@acme.example")

    async def work(conn: Any) -> tuple[int, int, int]:
        acme = await orgs.create_org(conn, name="acme", owner_id=owner)
        research = await orgs.create_project(conn, org_id=acme, name="research")
        other = await orgs.create_org(conn, name="other-org", owner_id=owner)
        return acme, research, other

    return with_db(server, work)


def state(server: LiveServer, email: str, acme: int, research: int, other: int) -> tuple[Any, ...]:
    async def work(conn: Any) -> tuple[Any, ...]:
        row = (await conn.execute(select(Account.id, Account.is_admin).where(Account.email == email))).one()
        return (
            await orgs.org_role(conn, org_id=acme, account_id=row.id),
            await orgs.project_role(conn, project_id=research, account_id=row.id),
            await orgs.org_role(conn, org_id=other, account_id=row.id),
            bool(row.is_admin),
        )

    return with_db(server, work)


def test_organisation_token_groups_and_isolation(make_live_server: Any, openai_upstream: FakeOpenAI) -> None:
    server = make_live_server(
        MOCK_CONFIG.format(base_url=openai_upstream.base_url), scim_token=TOKEN, group_rules=RULES
    )
    acme, research, other = setup(server)
    acme_token = asyncio.run(issue_scim_token(server.settings, organisation="acme"))
    with scim(server, acme_token) as c, scim(server, TOKEN) as gateway:
        r = c.post("/Users", json={"schemas": [USER], "userName": "alice@acme.example"})
        assert r.status_code == 201, r.text
        alice = r.json()["id"]
        assert state(server, "alice@acme.example", acme, research, other) == ("member", None, None, False)
        for name in ("Research", "Admins", "Other"):
            r = c.post(
                "/Groups", json={"schemas": [GROUP], "displayName": name, "members": [{"value": alice}]}
            )
            assert r.status_code == 201, r.text
        # Research put her in the project; Admins and Other are beyond this organisation's reach.
        assert state(server, "alice@acme.example", acme, research, other) == ("member", "member", None, False)
        research_group = c.get("/Groups", params={"filter": 'displayName eq "Research"'}).json()["Resources"][
            0
        ]
        r = c.patch(
            f"/Groups/{research_group['id']}",
            json={
                "schemas": [PATCH],
                "Operations": [{"op": "remove", "path": f'members[value eq "{alice}"]'}],
            },
        )
        assert r.status_code in (200, 204), r.text
        assert state(server, "alice@acme.example", acme, research, other) == ("member", None, None, False)

        # The gateway's token sees none of acme's resources, and its Groups may make operators.
        assert gateway.get("/Users").json()["totalResults"] == 0
        assert c.get("/Users").json()["totalResults"] == 1
        assert gateway.get(f"/Users/{alice}").status_code == 404
        r = gateway.post("/Users", json={"schemas": [USER], "userName": "ops@gateway.example"})
        ops = r.json()["id"]
        r = gateway.post(
            "/Groups", json={"schemas": [GROUP], "displayName": "Admins", "members": [{"value": ops}]}
        )
        assert r.status_code == 201, r.text
        assert state(server, "ops@gateway.example", acme, research, other)[3] is True
        assert gateway.delete(f"/Groups/{r.json()['id']}").status_code == 204
        assert state(server, "ops@gateway.example", acme, research, other)[3] is False

        # An account that is not the organisation's is beyond its directory's reach.
        make_account(server, "someone@elsewhere.example")
        r = c.post("/Users", json={"schemas": [USER], "userName": "someone@elsewhere.example"})
        assert r.status_code == 409 and "outside this organisation" in r.text, r.text

    with httpx.Client(timeout=30) as plain:
        r = plain.get(f"{server.url}/scim/v2/Users", headers={"Authorization": f"Bearer {acme_token}x"})
        assert r.status_code == 401


def test_sso_only_per_organisation(make_live_server: Any, openai_upstream: FakeOpenAI) -> None:
    server = make_live_server(MOCK_CONFIG.format(base_url=openai_upstream.base_url))
    acme, _, _ = setup(server)
    member = make_account(server, "dev@acme.example", "dev's password")
    operator = make_account(server, "root@acme.example", "root's password", operator=True)

    async def join(conn: Any) -> None:
        for account_id in (member, operator):
            await orgs.add_org_member(conn, org_id=acme, account_id=account_id, role="member")

    with_db(server, join)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert log_in(c, "dev@acme.example", "dev's password").status_code == 303
    asyncio.run(set_sso_only(server.settings, organisation="acme", sso_only=True))
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = log_in(c, "dev@acme.example", "dev's password")
        assert r.status_code == 403 and "single sign-on" in r.text
        assert log_in(c, "root@acme.example", "root's password").status_code == 303  # break-glass
