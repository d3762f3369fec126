"""OpenAI's Admin API on modelgate (docs/admin-api.md): projects, organisation users and project
users driven by the real openai SDK (``client.admin.organization``), whose types parse every answer.
Schemathesis drives these operations with the rest of the subtree: ``test_admin_fuzz.py``."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import LiveServer


def test_openai_sdk_manages_projects_and_users(live_server: LiveServer) -> None:
    admin = live_server.create_key(email="owner@example.com", usd=0, management=True)
    inference = live_server.create_key(email="owner@example.com", usd=5.0)
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", admin_api_key=admin)
    org = client.admin.organization

    default = org.projects.list().data
    assert [p.status for p in default] == ["active"]
    made = [org.projects.create(name=f"team {i}") for i in range(3)]
    assert made[0].object == "organization.project" and made[0].name == "team 0" and made[0].created_at > 0
    assert org.projects.retrieve(made[1].id).name == "team 1"
    assert org.projects.update(made[1].id, name="renamed").name == "renamed"
    # Pages of two, followed by the SDK through after/has_more.
    first = org.projects.list(limit=2)
    assert len(first.data) == 2 and first.has_more
    assert [p.id for p in org.projects.list(limit=2)] == [p.id for p in [*default, *made]]

    archived = org.projects.archive(made[2].id)
    assert archived.status == "archived" and archived.archived_at is not None
    assert made[2].id not in [p.id for p in org.projects.list()]
    assert made[2].id in [p.id for p in org.projects.list(include_archived=True)]
    with pytest.raises(openai.BadRequestError):
        org.projects.archive(default[0].id)  # the default project stays
    with pytest.raises(openai.NotFoundError):
        org.projects.retrieve("proj_999999")

    users = org.users.list().data
    assert [(u.email, u.role) for u in users] == [("owner@example.com", "owner")]
    owner = users[0]
    assert org.users.retrieve(owner.id).email == "owner@example.com"
    with pytest.raises(openai.BadRequestError):
        org.users.update(owner.id, role="member")  # the last owner stays

    added = org.projects.users.create(made[0].id, role="member", email="dev@example.com")
    assert added.object == "organization.project.user" and added.role == "member"
    assert org.projects.users.update(added.id, project_id=made[0].id, role="owner").role == "owner"
    assert {u.email for u in org.projects.users.list(made[0].id)} == {"dev@example.com", "owner@example.com"}
    assert org.projects.users.retrieve(added.id, project_id=made[0].id).email == "dev@example.com"
    dev = org.users.retrieve(added.id)
    assert dev.role == "member"  # added to the organisation as a member
    assert org.users.update(dev.id, role="billing").role == "billing"
    gone = org.projects.users.delete(added.id, project_id=made[0].id)
    assert gone.deleted and gone.object == "organization.project.user.deleted"
    assert org.users.delete(dev.id).deleted
    with pytest.raises(openai.NotFoundError):
        org.users.retrieve(dev.id)

    # An inference key administers nothing; an admin key calls no model.
    as_inference = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", admin_api_key=inference)
    with pytest.raises(openai.PermissionDeniedError):
        as_inference.admin.organization.projects.list()
    as_model_caller = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=admin)
    with pytest.raises(openai.PermissionDeniedError):
        as_model_caller.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])


def test_archiving_a_project_disables_its_keys(live_server: LiveServer) -> None:
    admin = live_server.create_key(email="arch@example.com", usd=0, management=True)
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", admin_api_key=admin)
    project = client.admin.organization.projects.create(name="short-lived")
    pid = int(project.id.removeprefix("proj_"))
    key = live_server.create_key(email="arch@example.com", usd=5.0, project_id=pid)
    chat = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)
    assert chat.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}]).choices
    client.admin.organization.projects.archive(project.id)
    with pytest.raises(openai.AuthenticationError):
        chat.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
