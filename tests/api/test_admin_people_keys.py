"""OpenAI's Admin API on modelgate, part 2 (docs/admin-api.md): invites and accepting them on
``/app/invite/<token>``, project API keys, service accounts and their keys, admin API keys, model
permissions and rate limits, driven by the real openai SDK (its admin types parse every answer);
the operations modelgate has no concept for answer a conforming 400; an admin of one organisation
cannot see or touch another's invites, keys or service accounts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import requests
from jsonschema import Draft202012Validator
from sqlalchemy import update

from modelgate.accounts.service import get_or_create_account
from modelgate.api.admin_unsupported import UNSUPPORTED
from modelgate.store import admin_invites as invites
from modelgate.store.accounts import account_id_by_email
from modelgate.store.audit import EventFilter, org_events
from modelgate.store.db import Database
from modelgate.store.schema_admin import OrgInvite
from tests.conftest import MOCK_CONFIG, LiveServer
from tests.fakes.smtp import link_in, smtp_server

SPEC = Path(__file__).resolve().parents[1] / "specs" / "openai" / "admin.json"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HI = [{"role": "user", "content": "hi"}]


def _admin(server: LiveServer, email: str) -> tuple[str, Any]:
    key = server.create_key(email=email, usd=0, management=True)
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", admin_api_key=key, max_retries=0)
    return key, client.admin.organization


def _chat(server: LiveServer, key: str) -> Any:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0).chat.completions


def _csrf(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


def test_invite_is_sent_accepted_once_and_withdrawn(live_server: LiveServer) -> None:
    _, org = _admin(live_server, "boss@example.com")
    project = org.projects.create(name="team")
    invite = org.invites.create(
        email="New@Example.com", role="reader", projects=[{"id": project.id, "role": "owner"}]
    )
    assert invite.object == "organization.invite" and invite.status == "pending" and invite.role == "reader"
    assert invite.email == "new@example.com" and invite.projects[0].id == project.id
    assert invite.expires_at is not None and invite.expires_at > invite.created_at
    link = invite.model_extra["modelgate_accept_url"]  # no SMTP here: the link is answered
    assert link.startswith(live_server.url + "/app/invite/")
    assert [i.id for i in org.invites.list()] == [invite.id]
    assert org.invites.retrieve(invite.id).model_extra.get("modelgate_accept_url") is None  # shown once
    path = link.removeprefix(live_server.url)

    with httpx.Client(base_url=live_server.url, timeout=30) as web:
        page = web.get(path)
        assert page.status_code == 200 and "Log in to accept" in page.text and "new@example.com" in page.text
        signup = web.get(f"/app/signup?next={path}&email=new@example.com")
        joined = web.post(
            "/app/signup",
            data={
                "email": "new@example.com",
                "password": "a long password",
                "csrf_token": _csrf(signup),
                "next": path,
            },
            follow_redirects=False,
        )
        assert joined.status_code == 303 and joined.headers["location"] == path, joined.text[:300]
        page = web.get(path)
        assert 'id="accept-invite"' in page.text
        done = web.post(path, data={"csrf_token": _csrf(page)}, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"].startswith("/app/projects")
        again = web.post(path, data={"csrf_token": _csrf(page)}, follow_redirects=False)
        assert again.status_code == 410 and "already used" in again.text
        assert web.get("/app/invite/not-a-token").status_code == 404

    accepted = org.invites.retrieve(invite.id)
    assert accepted.status == "accepted" and accepted.accepted_at is not None
    member = next(u for u in org.users.list() if u.email == "new@example.com")
    assert member.role == "member"  # reader
    assert org.projects.users.retrieve(member.id, project_id=project.id).role == "owner"
    with pytest.raises(openai.BadRequestError):
        org.invites.delete(invite.id)  # accepted: stays
    with pytest.raises(openai.BadRequestError):
        org.invites.create(email="new@example.com", role="reader")  # a member already

    withdrawn = org.invites.create(email="later@example.com", role="owner")
    assert withdrawn.role == "owner"
    gone = org.invites.delete(withdrawn.id)
    assert gone.deleted and gone.object == "organization.invite.deleted"
    with pytest.raises(openai.NotFoundError):
        org.invites.retrieve(withdrawn.id)
    with httpx.Client(base_url=live_server.url, timeout=30) as web:
        refused = web.get(withdrawn.model_extra["modelgate_accept_url"].removeprefix(live_server.url))
        assert refused.status_code == 410 and "withdrawn" in refused.text
    with pytest.raises(openai.NotFoundError):
        org.invites.create(
            email="x@example.com", role="reader", projects=[{"id": "proj_999999", "role": "member"}]
        )


def test_signed_in_as_someone_else_cannot_accept(live_server: LiveServer) -> None:
    _, org = _admin(live_server, "boss2@example.com")
    path = org.invites.create(email="invited@example.com", role="reader").model_extra["modelgate_accept_url"]
    path = path.removeprefix(live_server.url)
    with httpx.Client(base_url=live_server.url, timeout=30) as web:
        signup = web.get("/app/signup")
        web.post(
            "/app/signup",
            data={"email": "other@example.com", "password": "a long password", "csrf_token": _csrf(signup)},
        )
        page = web.get(path)
        assert "signed in as" in page.text and 'id="accept-invite"' not in page.text
        tried = web.post(path, data={"csrf_token": _csrf(page)}, follow_redirects=False)
        assert tried.status_code == 303
    assert "other@example.com" not in [u.email for u in org.users.list()]


def test_project_keys_and_service_accounts(live_server: LiveServer) -> None:
    _, org = _admin(live_server, "keys@example.com")
    project = org.projects.create(name="svc")
    pid = int(project.id.removeprefix("proj_"))
    member_key = live_server.create_key(email="keys@example.com", usd=5.0, project_id=pid, name="mine")
    assert _chat(live_server, member_key).create(model="echo", messages=HI).choices

    sa = org.projects.service_accounts.create(project.id, name="ci bot")
    assert sa.object == "organization.project.service_account" and sa.role == "member" and sa.api_key
    assert sa.id.startswith("svc_acct_") and sa.api_key.value and sa.api_key.id.startswith("key_")
    assert _chat(live_server, sa.api_key.value).create(model="echo", messages=HI).choices  # the pool pays
    bare = org.projects.service_accounts.create(project.id, name="later", create_service_account_only=True)
    assert bare.api_key is None
    second = org.projects.service_accounts.api_keys.create(bare.id, project_id=project.id, name="deploy")
    assert second.value and second.name == "deploy"
    assert {s.id for s in org.projects.service_accounts.list(project.id)} == {sa.id, bare.id}
    changed = org.projects.service_accounts.update(sa.id, project_id=project.id, name="ci", role="owner")
    assert (changed.name, changed.role) == ("ci", "owner")
    assert org.projects.service_accounts.retrieve(sa.id, project_id=project.id).name == "ci"

    listed = org.projects.api_keys.list(project.id).data
    by_id = {k.id: k for k in listed}
    assert set(by_id) >= {sa.api_key.id, second.id} and len(listed) == 3
    owned = by_id[sa.api_key.id]
    assert owned.owner.type == "service_account" and owned.owner.service_account.id == sa.id
    assert sa.api_key.value not in owned.redacted_value  # (last_used_at is written in the background)
    mine = next(k for k in listed if k.name == "mine")
    assert mine.owner.type == "user" and mine.owner.user.email == "keys@example.com"
    assert mine.owner_project_access == "active"
    assert org.projects.api_keys.retrieve(mine.id, project_id=project.id).name == "mine"
    with pytest.raises(openai.BadRequestError):
        org.projects.api_keys.delete(owned.id, project_id=project.id)  # goes with its service account
    assert org.projects.api_keys.delete(mine.id, project_id=project.id).deleted
    with pytest.raises(openai.AuthenticationError):
        _chat(live_server, member_key).create(model="echo", messages=HI)
    with pytest.raises(openai.NotFoundError):
        org.projects.api_keys.retrieve(mine.id, project_id=project.id)

    assert org.projects.service_accounts.delete(sa.id, project_id=project.id).deleted
    with pytest.raises(openai.AuthenticationError):
        _chat(live_server, sa.api_key.value).create(model="echo", messages=HI)
    assert _chat(live_server, second.value).create(model="echo", messages=HI).choices
    inactive = org.projects.api_keys.list(project.id, owner_project_access="inactive").data
    assert [k.id for k in inactive] == [owned.id]
    with pytest.raises(openai.NotFoundError):
        org.projects.service_accounts.retrieve(sa.id, project_id=project.id)


def test_admin_api_keys(live_server: LiveServer) -> None:
    _key, org = _admin(live_server, "adm@example.com")
    made = org.admin_api_keys.create(name="ops", expires_in_seconds=3600)
    assert made.value and made.name == "ops" and made.expires_at is not None
    assert made.owner.role == "owner" and made.owner.name == "adm@example.com"
    listed = org.admin_api_keys.list().data
    assert made.id in [k.id for k in listed] and len(listed) == 2
    assert next(k.id for k in org.admin_api_keys.list(order="desc").data) == made.id
    assert org.admin_api_keys.retrieve(made.id).redacted_value.startswith(made.value[:8])
    other = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", admin_api_key=made.value)
    assert other.admin.organization.projects.list().data  # it administers
    with pytest.raises(openai.PermissionDeniedError):
        _chat(live_server, made.value).create(model="echo", messages=HI)  # and calls no model
    assert org.admin_api_keys.delete(made.id).deleted
    with pytest.raises(openai.AuthenticationError):
        other.admin.organization.projects.list()
    inference = live_server.create_key(email="adm@example.com", usd=1.0)
    with pytest.raises(openai.PermissionDeniedError):
        openai.OpenAI(
            base_url=f"{live_server.url}/v1", api_key="unused", admin_api_key=inference
        ).admin.organization.admin_api_keys.list()


def test_model_permissions_and_rate_limits(live_server: LiveServer) -> None:
    _, org = _admin(live_server, "perm@example.com")
    project = org.projects.create(name="limited")
    key = live_server.create_key(email="perm@example.com", usd=5.0, project_id=int(project.id[5:]))
    start = org.projects.model_permissions.retrieve(project.id)
    assert (start.mode, start.model_ids) == ("deny_list", [])
    limits = org.projects.rate_limits.list_rate_limits(project.id).data
    assert {r.id for r in limits} >= {"rl_mock/echo", "rl_mock/chain"}
    assert all(r.max_requests_per_1_minute == 0 for r in limits)  # no project limit

    allowed = org.projects.model_permissions.update(project.id, mode="allow_list", model_ids=["mock/chain"])
    assert (allowed.mode, allowed.model_ids) == ("allow_list", ["mock/chain"])
    with pytest.raises(openai.PermissionDeniedError):
        _chat(live_server, key).create(model="mock/echo", messages=HI)
    assert [r.id for r in org.projects.rate_limits.list_rate_limits(project.id)] == ["rl_mock/chain"]
    with pytest.raises(openai.BadRequestError):
        org.projects.model_permissions.update(project.id, mode="deny_list", model_ids=["mock/echo"])
    assert org.projects.model_permissions.delete(project.id).deleted
    assert _chat(live_server, key).create(model="mock/echo", messages=HI).choices

    rl = org.projects.rate_limits.update_rate_limit(
        "rl_mock/echo", project_id=project.id, max_requests_per_1_minute=600, max_tokens_per_1_minute=9000
    )
    assert (rl.model, rl.max_requests_per_1_minute, rl.max_tokens_per_1_minute) == ("mock/echo", 600, 9000)
    assert all(
        r.max_requests_per_1_minute == 600 for r in org.projects.rate_limits.list_rate_limits(project.id)
    )
    with pytest.raises(openai.BadRequestError):
        org.projects.rate_limits.update_rate_limit(
            "rl_mock/echo", project_id=project.id, max_requests_per_1_day=5
        )
    with pytest.raises(openai.NotFoundError):
        org.projects.rate_limits.update_rate_limit(
            "rl_nope", project_id=project.id, max_requests_per_1_minute=5
        )


def test_roles_are_modelgates_fixed_roles(live_server: LiveServer) -> None:
    _, org = _admin(live_server, "roles@example.com")
    roles = org.roles.list()
    assert [r.id for r in roles.data] == ["role_owner", "role_admin", "role_member", "role_billing"]
    assert all(r.predefined_role for r in roles.data) and not roles.has_more
    assert org.roles.retrieve("role_billing").permissions == [
        "organization.usage.read",
        "organization.billing.read",
    ]
    with pytest.raises(openai.NotFoundError):
        org.roles.retrieve("role_superuser")
    owner = org.users.list().data[0]
    assert [r.name for r in org.users.roles.list(owner.id).data] == ["owner"]
    with pytest.raises(openai.NotFoundError):
        org.users.roles.list("user_999999")
    with pytest.raises(openai.BadRequestError):
        org.roles.create(role_name="custom", permissions=[])  # the roles are fixed


def test_operations_without_a_modelgate_concept_answer_a_conforming_400(live_server: LiveServer) -> None:
    admin = live_server.create_key(email="none@example.com", usd=0, management=True)
    inference = live_server.create_key(email="none@example.com", usd=1.0)
    doc = json.loads(SPEC.read_text(encoding="utf-8"))
    errors = Draft202012Validator(
        {"$ref": "#/components/schemas/ErrorResponse", "components": doc["components"]}
    )
    with requests.Session() as s:
        for path, methods, _ in UNSUPPORTED:
            url = live_server.url + path.format(
                project_id="proj_1", certificate_id="cert_1", group_id="g", role_id="r", user_id="user_1"
            )
            for method in methods:
                r = s.request(method, url, headers={"Authorization": f"Bearer {admin}"}, json={}, timeout=30)
                assert r.status_code == 400, (method, path, r.text)
                assert (
                    not list(errors.iter_errors(r.json()))
                    and r.json()["error"]["code"] == "unsupported_by_modelgate"
                )
                r = s.request(
                    method, url, headers={"Authorization": f"Bearer {inference}"}, json={}, timeout=30
                )
                assert r.status_code == 403, (method, path, r.text)


def test_an_admin_of_one_organisation_cannot_reach_anothers(live_server: LiveServer) -> None:
    _, a = _admin(live_server, "a@example.com")
    _, b = _admin(live_server, "b@example.com")
    live_server.create_key(email="b@example.com", usd=5.0)  # credits for B's service account
    b_project = b.projects.create(name="b's")
    b_invite = b.invites.create(email="guest@example.com", role="reader")
    b_sa = b.projects.service_accounts.create(b_project.id, name="b bot")
    assert b_sa.api_key is not None
    b_admin = b.admin_api_keys.create(name="b ops")
    a_project = a.projects.create(name="a's")

    assert b_invite.id not in [i.id for i in a.invites.list()]
    assert b_admin.id not in [k.id for k in a.admin_api_keys.list()]
    for call in (
        lambda: a.invites.retrieve(b_invite.id),
        lambda: a.invites.delete(b_invite.id),
        lambda: a.admin_api_keys.retrieve(b_admin.id),
        lambda: a.admin_api_keys.delete(b_admin.id),
        lambda: a.projects.api_keys.list(b_project.id),
        lambda: a.projects.api_keys.retrieve(b_sa.api_key.id, project_id=a_project.id),
        lambda: a.projects.api_keys.delete(b_sa.api_key.id, project_id=a_project.id),
        lambda: a.projects.service_accounts.list(b_project.id),
        lambda: a.projects.service_accounts.retrieve(b_sa.id, project_id=a_project.id),
        lambda: a.projects.service_accounts.delete(b_sa.id, project_id=a_project.id),
        lambda: a.projects.service_accounts.api_keys.create(b_sa.id, project_id=a_project.id),
        lambda: a.projects.model_permissions.update(b_project.id, mode="allow_list", model_ids=[]),
        lambda: a.projects.rate_limits.list_rate_limits(b_project.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    # B's things are untouched.
    assert b.invites.retrieve(b_invite.id).status == "pending"
    assert b.admin_api_keys.retrieve(b_admin.id).name == "b ops"
    assert b.projects.service_accounts.retrieve(b_sa.id, project_id=b_project.id).name == "b bot"
    assert _chat(live_server, b_sa.api_key.value).create(model="echo", messages=HI).choices


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_invite_is_mailed_when_smtp_is_configured(make_live_server: Any, openai_upstream: Any) -> None:
    with smtp_server() as (box, port):
        server = make_live_server(
            MOCK_CONFIG.format(base_url=openai_upstream.base_url),
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            mail_from="Gateway <gateway@example.com>",
        )
        _, org = _admin(server, "mailer@example.com")
        invite = org.invites.create(email="friend@example.com", role="reader")
        assert "modelgate_accept_url" not in invite.model_extra  # mailed: not answered
        mail = box.wait_for("friend@example.com", "invited you")
        link = link_in(mail, "/app/invite/")
        with httpx.Client(timeout=30) as web:
            assert "Join mailer@example.com" in web.get(link).text


def test_expired_invite_is_refused_and_an_invite_is_claimed_once(live_server: LiveServer) -> None:
    _, org = _admin(live_server, "exp@example.com")
    invite = org.invites.create(email="late@example.com", role="reader")
    path = invite.model_extra["modelgate_accept_url"].removeprefix(live_server.url)
    row_id = int(invite.id.removeprefix("invite_"))

    async def claims() -> list[bool]:
        db = Database(live_server.settings.database_url)
        try:
            async with db.engine.begin() as conn:
                account = await get_or_create_account(conn, email="late@example.com")
                first = await invites.claim_invite(conn, invite_id=row_id, account_id=account)
                second = await invites.claim_invite(conn, invite_id=row_id, account_id=account)
                await conn.execute(
                    update(OrgInvite)
                    .where(OrgInvite.id == row_id)
                    .values(accepted_at=None, accepted_by=None, expires_at=datetime.now(UTC) - timedelta(1))
                )
                third = await invites.claim_invite(conn, invite_id=row_id, account_id=account)
            return [first, second, third]
        finally:
            await db.aclose()

    assert live_server.run(claims()) == [True, False, False]  # once; never once expired
    assert org.invites.retrieve(invite.id).status == "expired"
    with httpx.Client(base_url=live_server.url, timeout=30) as web:
        page = web.get(path)
        assert page.status_code == 410 and "expired" in page.text


def test_changes_are_in_the_audit_log(live_server: LiveServer) -> None:
    _, org = _admin(live_server, "audit@example.com")
    project = org.projects.create(name="audited")
    sa = org.projects.service_accounts.create(project.id, name="bot")
    org.projects.service_accounts.delete(sa.id, project_id=project.id)
    invite = org.invites.create(email="aud2@example.com", role="reader")
    org.invites.delete(invite.id)
    org.projects.rate_limits.update_rate_limit(
        "rl_mock/echo", project_id=project.id, max_tokens_per_1_minute=5000
    )
    made = org.admin_api_keys.create(name="x")

    async def events() -> list[tuple[str, str | None]]:
        db = Database(live_server.settings.database_url)
        try:
            async with db.engine.connect() as conn:
                org_id = await account_id_by_email(conn, email="audit@example.com")
                assert org_id is not None
                rows = await org_events(conn, EventFilter(org_id=org_id), limit=100)
            return [(r.type, r.details.get("id")) for r in reversed(rows)]
        finally:
            await db.aclose()

    seen = live_server.run(events())
    for expected in [
        ("service_account.created", sa.id),
        ("api_key.created", sa.api_key.id),
        ("service_account.deleted", sa.id),
        ("invite.sent", invite.id),
        ("invite.deleted", invite.id),
        ("rate_limit.updated", "rl_mock/echo"),
        ("api_key.created", made.id),
    ]:
        assert expected in seen, (expected, seen)
