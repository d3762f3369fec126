"""OpenAI's Admin API on modelgate (docs/admin-api.md): projects, organisation users and project
users driven by the real openai SDK (``client.admin.organization``), whose types parse every answer;
and schemathesis over the same operations from OpenAI's published document
(``tests/specs/openai/admin.json``; the operations of ``OWN_PATHS``), valid and invalid cases, with an
admin key and an inference key: every 2xx conforms to OpenAI's schema, every error to OpenAI's
``ErrorResponse``, no 5xx, and an inference key administers nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode

from tests.conftest import LiveServer

SPEC = Path(__file__).resolve().parents[1] / "specs" / "openai" / "admin.json"
PROJECT_ROLES = ["owner", "member"]
ORG_ROLES = ["admin", "member", "billing", "reader"]  # never owner: the owner is not removed
# The document holds the whole /organization subtree, which tests/api/test_admin_fuzz.py drives
# whole (and tests/api/test_admin_spend.py the spend operations): this test keeps to the operations
# below, with more examples each.
ORG = "/organization"
OWN_PATHS = {
    f"{ORG}/projects",
    f"{ORG}/projects/{{project_id}}",
    f"{ORG}/projects/{{project_id}}/archive",
    f"{ORG}/users",
    f"{ORG}/users/{{user_id}}",
    f"{ORG}/projects/{{project_id}}/users",
    f"{ORG}/projects/{{project_id}}/users/{{user_id}}",
    f"{ORG}/invites",
    f"{ORG}/invites/{{invite_id}}",
    f"{ORG}/projects/{{project_id}}/api_keys",
    f"{ORG}/projects/{{project_id}}/api_keys/{{api_key_id}}",
    f"{ORG}/projects/{{project_id}}/service_accounts",
    f"{ORG}/projects/{{project_id}}/service_accounts/{{service_account_id}}",
    f"{ORG}/projects/{{project_id}}/service_accounts/{{service_account_id}}/api_keys",
    f"{ORG}/admin_api_keys",
    f"{ORG}/admin_api_keys/{{key_id}}",
    f"{ORG}/projects/{{project_id}}/model_permissions",
    f"{ORG}/projects/{{project_id}}/rate_limits",
    f"{ORG}/projects/{{project_id}}/rate_limits/{{rate_limit_id}}",
}
EXAMPLES = int(os.environ.get("MODELGATE_FUZZ_EXAMPLES", "15"))


def _validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator({**schema, "components": doc["components"]})


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


def test_schemathesis_drives_openais_admin_operations(live_server: LiveServer) -> None:
    email = "fuzz-admin@example.com"
    admin = live_server.create_key(email=email, usd=0, management=True)
    inference = live_server.create_key(email=email, usd=5.0)
    doc = json.loads(SPEC.read_text(encoding="utf-8"))
    errors = _validator(doc, {"$ref": "#/components/schemas/ErrorResponse"})
    h = {"Authorization": f"Bearer {admin}"}
    base = f"{live_server.url}/v1"
    made = requests.post(
        f"{base}/organization/projects", json={"name": "fuzzed"}, headers=h, timeout=30
    ).json()
    owner = requests.get(f"{base}/organization/users", headers=h, timeout=30).json()["data"][0]["id"]
    joined = requests.post(
        f"{base}/organization/projects/{made['id']}/users",
        json={"user_id": owner, "role": "owner"},
        headers=h,
        timeout=30,
    )
    assert joined.status_code == 200, joined.text
    second = requests.post(
        f"{base}/organization/projects/{made['id']}/users",
        json={"email": "second@example.com", "role": "member"},
        headers=h,
        timeout=30,
    ).json()["id"]
    pid = made["id"]
    invite = requests.post(
        f"{base}/organization/invites",
        json={"email": "inv@example.com", "role": "reader"},
        headers=h,
        timeout=30,
    ).json()["id"]
    bot = requests.post(
        f"{base}/organization/projects/{pid}/service_accounts", json={"name": "bot"}, headers=h, timeout=30
    ).json()
    spare = requests.post(
        f"{base}/organization/admin_api_keys", json={"name": "spare"}, headers=h, timeout=30
    ).json()["id"]
    real = {
        "project_id": [pid],
        "user_id": [second, owner],
        "invite_id": [invite],
        "service_account_id": [bot["id"]],
        "api_key_id": [bot["api_key"]["id"]],
        "key_id": [spare],
        "rate_limit_id": ["rl_mock/echo", "rl_mock/chain"],
    }
    schema = schemathesis.openapi.from_dict(doc)
    fuzz = _Fuzz(base=base, admin=admin, inference=inference, real=real, errors=errors)
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path not in OWN_PATHS:
            continue
        ok_schema = operation.definition.raw["responses"]["200"]["content"]["application/json"]["schema"]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz.drive(operation, mode, _validator(doc, ok_schema))
    fuzz.session.close()
    operations = sum(1 for r in schema.get_all_operations() if r.ok().path in OWN_PATHS)
    assert operations >= 33 and fuzz.calls >= EXAMPLES * operations
    assert not fuzz.failures, "\n".join(fuzz.failures[:20])
    # Every operation was answered with success at least once (so its schema was checked), but
    # those whose one real object the fuzz may delete first (a removed user, the invite, the
    # service account and its key, the spare admin key).
    unanswered = [op for op, seen in fuzz.answered.items() if not any(s < 300 for s in seen)]
    assert len(fuzz.answered) == operations and len(unanswered) <= 4, unanswered


class _Fuzz:
    def __init__(
        self,
        *,
        base: str,
        admin: str,
        inference: str,
        real: dict[str, list[str]],
        errors: Draft202012Validator,
        aim: Any = None,
    ) -> None:
        self.base, self.admin, self.inference, self.real, self.errors = base, admin, inference, real, errors
        self.aim = aim  # (case, operation, data): more aiming for another test's operations
        self.session = requests.Session()
        self.failures: list[str] = []
        self.calls = 0
        self.answered: dict[str, set[int]] = {}

    def drive(self, operation: Any, mode: GenerationMode, conforms: Draft202012Validator) -> None:
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(
            case=operation.as_strategy(generation_mode=mode),
            key=st.sampled_from([self.admin, self.inference]),
            data=st.data(),
        )
        def run(case: Any, key: str, data: st.DataObject) -> None:
            # Half of the time the example is aimed: the admin key, real ids in the path and, for a
            # membership change, a role modelgate knows and a real user, so that it is carried out.
            if data.draw(st.booleans()):
                key = self.admin
                params = case.path_parameters if isinstance(case.path_parameters, dict) else {}
                for name, ids in self.real.items():
                    if name in params:
                        params[name] = data.draw(st.sampled_from(ids))
                if case.method == "POST" and isinstance(case.body, dict):
                    _aim_body(operation.path, case.body, data)
                if case.method == "POST" and "/users" in operation.path and isinstance(case.body, dict):
                    project = "/projects/" in operation.path
                    case.body["role"] = data.draw(st.sampled_from(PROJECT_ROLES if project else ORG_ROLES))
                    if operation.path.endswith("/users"):
                        case.body.pop("email", None)
                        case.body["user_id"] = data.draw(st.sampled_from(self.real["user_id"]))
                if self.aim is not None:
                    self.aim(case, operation, data)
            where = f"{case.method} {case.formatted_path} ({mode.name}, query {case.query!r})"
            try:
                resp = case.call(
                    base_url=self.base,
                    session=self.session,
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=60,
                )
            except requests.RequestException as exc:
                self.failures.append(f"{where}: no answer ({exc!r})")
                return
            self.calls += 1
            self.answered.setdefault(f"{case.method} {operation.path}", set()).add(resp.status_code)
            where += f" body {str(case.body)[:200]}"
            if resp.status_code >= 500:
                self.failures.append(f"{where} -> {resp.status_code} {resp.text[:300]!r}")
                return
            if key == self.inference and resp.status_code < 400:
                self.failures.append(f"{where}: an inference key administered ({resp.status_code})")
            check = conforms if resp.status_code < 300 else self.errors
            problems = [e.message for e in check.iter_errors(resp.json())]
            if problems:
                self.failures.append(f"{where} -> {resp.status_code} does not conform: {problems[:3]}")

        run()


def _aim_body(path: str, body: dict[str, Any], data: st.DataObject) -> None:
    """A body modelgate carries out: an invite to a new address as a reader, an allow-list, only
    the rate limits modelgate has."""
    if path.endswith("/invites"):
        body.clear()
        body.update(email=f"fuzz{data.draw(st.integers(0, 10**6))}@example.com", role="reader")
    elif path.endswith("/model_permissions"):
        body["mode"] = "allow_list"
    elif "/rate_limits/" in path:
        for name in list(body):
            body.pop(name)
        body["max_requests_per_1_minute"] = data.draw(st.integers(1, 10**6))


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
