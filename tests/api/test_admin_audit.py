"""The organisation's audit log (``GET /v1/organization/audit_logs``, docs/admin-api.md): changes
made through OpenAI's Admin API, the organisations API and the keys API are recorded with their
actor and OpenAI's event type; filters, pages (after/before) complete with no duplicates; one
organisation never sees another's events; the openai SDK's types parse every answer, and every
answer is valid against OpenAI's ``ListAuditLogsResponse``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openai
import requests
from jsonschema import Draft202012Validator

from tests.conftest import LiveServer

SPEC = Path(__file__).resolve().parents[1] / "specs" / "openai" / "admin.json"
DOC = json.loads(SPEC.read_text(encoding="utf-8"))
LIST = Draft202012Validator(
    {"$ref": "#/components/schemas/ListAuditLogsResponse", "components": DOC["components"]}
)


def _events(server: LiveServer, key: str, **params: Any) -> dict[str, Any]:
    resp = requests.get(
        f"{server.url}/v1/organization/audit_logs",
        params=params,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    problems = [e.message for e in LIST.iter_errors(body)]
    assert not problems, problems[:3]
    return body


def _call(server: LiveServer, key: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = requests.request(
        method, f"{server.url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


def test_changes_are_recorded_and_listed(live_server: LiveServer) -> None:
    admin = live_server.create_key(email="audit-owner@example.com", usd=0, management=True)
    other = live_server.create_key(email="audit-other@example.com", usd=0, management=True)
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", admin_api_key=admin)
    org = client.admin.organization
    owner = org.users.list().data[0]

    project = org.projects.create(name="audited")
    org.projects.update(project.id, name="audited, renamed")
    added = org.projects.users.create(project.id, role="member", email="audit-dev@example.com")
    org.projects.users.update(added.id, project_id=project.id, role="owner")
    org.users.update(added.id, role="billing")
    org.projects.users.delete(added.id, project_id=project.id)
    org.users.delete(added.id)
    pid = int(project.id.removeprefix("proj_"))
    _call(live_server, admin, "PUT", "/v1/budgets", {"project_id": pid, "period": "day", "limit_usd": 5})
    _call(
        live_server,
        admin,
        "PUT",
        "/v1/organisation/members",
        {"email": "audit-ops@example.com", "role": "admin"},
    )
    made = _call(live_server, admin, "POST", "/v1/keys", {"name": "audited key", "project_id": pid})
    prefix = made["data"]["prefix"] if "data" in made else made["prefix"]
    _call(live_server, admin, "PATCH", f"/v1/keys/{prefix}", {"name": "renamed key"})
    resp = requests.delete(
        f"{live_server.url}/v1/keys/{prefix}", headers={"Authorization": f"Bearer {admin}"}, timeout=30
    )
    assert resp.status_code == 200
    org.projects.archive(project.id)

    listed = org.audit_logs.list(limit=100)
    types = [e.type for e in listed.data]
    assert types == [
        "project.archived",
        "api_key.deleted",
        "api_key.updated",
        "api_key.created",
        "user.added",  # audit-ops joins the organisation
        "project.updated",  # the budget
        "user.deleted",
        "user.deleted",
        "user.updated",
        "user.updated",
        "user.added",
        "project.updated",
        "project.created",
    ]
    created = listed.data[-1]
    assert created.project is not None and created.project.id == project.id
    assert created.actor is not None and created.actor.type == "api_key"
    assert created.actor.api_key is not None and created.actor.api_key.user is not None
    assert created.actor.api_key.user.email == "audit-owner@example.com"
    assert created.actor.api_key.user.id == owner.id
    assert created.project_created is not None and created.project_created.id == project.id
    assert created.project_created.data is not None and created.project_created.data.name == "audited"
    renamed = listed.data[-2].project_updated
    assert renamed is not None and renamed.changes_requested is not None
    assert renamed.changes_requested.title == "audited, renamed"
    budget = _events(live_server, admin, **{"resource_ids[]": project.id, "event_types[]": "project.updated"})
    budget_changes = [e["project.updated"]["changes_requested"] for e in budget["data"]]
    assert {"budget"} in [set(c) for c in budget_changes] and {"title"} in [set(c) for c in budget_changes]
    assert listed.data[0].project_archived is not None

    # Filters.
    assert [e.type for e in org.audit_logs.list(event_types=["user.deleted"]).data] == ["user.deleted"] * 2
    in_project = org.audit_logs.list(project_ids=[project.id], limit=100).data
    assert len(in_project) == 10 and all(e.project and e.project.id == project.id for e in in_project)
    assert len(org.audit_logs.list(actor_emails=["audit-owner@example.com"], limit=100).data) == 13
    assert org.audit_logs.list(actor_emails=["nobody@example.com"]).data == []
    assert len(org.audit_logs.list(actor_ids=[owner.id], limit=100).data) == 13
    key_id = created.actor.api_key.id
    assert key_id is not None and len(org.audit_logs.list(actor_ids=[key_id], limit=100).data) == 13
    assert [e.type for e in org.audit_logs.list(resource_ids=[added.id], limit=100).data] == [
        "user.deleted",
        "user.deleted",
        "user.updated",
        "user.updated",
        "user.added",
    ]
    first = listed.data[-1]
    window = org.audit_logs.list(effective_at={"gte": first.effective_at, "lte": listed.data[0].effective_at})
    assert len(window.data) == 13
    assert org.audit_logs.list(effective_at={"gt": listed.data[0].effective_at}).data == []

    # Pages of three: forwards with after, backwards with before, every event once.
    pages: list[str] = []
    body = _events(live_server, admin, limit=3)
    while True:
        pages += [e["id"] for e in body["data"]]
        if not body["has_more"]:
            break
        body = _events(live_server, admin, limit=3, after=body["last_id"])
    assert pages == [e.id for e in listed.data] and len(set(pages)) == 13
    back: list[str] = []
    body = _events(live_server, admin, limit=3, before=pages[-1])
    while True:
        back = [e["id"] for e in body["data"]] + back
        if not body["has_more"]:
            break
        body = _events(live_server, admin, limit=3, before=body["first_id"])
    assert back == pages[:-1]

    # Another organisation's admin key sees none of it.
    assert _events(live_server, other)["data"] == []
    assert _events(live_server, other, **{"project_ids[]": project.id})["data"] == []
    # An inference key reads no audit log.
    inference = live_server.create_key(email="audit-owner@example.com", usd=0)
    denied = requests.get(
        f"{live_server.url}/v1/organization/audit_logs",
        headers={"Authorization": f"Bearer {inference}"},
        timeout=30,
    )
    assert denied.status_code == 403
