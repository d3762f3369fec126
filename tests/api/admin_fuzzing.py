"""The schemathesis driver of the Admin API tests (``test_admin_fuzz.py`` drives the whole
``/organization`` subtree, ``test_admin_spend.py`` aims it at the spend operations): cases valid and
invalid, with an admin key and an inference key; half of them aimed (the admin key, real ids, bodies
modelgate carries out) so that every served operation is answered with success; no 5xx, 2xx
conforming to OpenAI's schema of the operation, errors to OpenAI's ``ErrorResponse``, an inference
key administers nothing, an unserved operation answers a 4xx."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode

SPEC = Path(__file__).resolve().parents[1] / "specs" / "openai" / "admin.json"
PROJECT_ROLES = ["owner", "member"]
ORG_ROLES = ["admin", "member", "billing", "reader"]  # never owner: the owner is not removed
EXAMPLES = int(os.environ.get("MODELGATE_FUZZ_EXAMPLES", "5"))
UNSERVED_EXAMPLES = max(1, EXAMPLES // 3)
# Query parameters an aimed case drops (cursors of other pages) or sets (a real time window).
CURSORS = ("after", "before", "page", "limit", "end_time")


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator({**schema, "components": doc["components"]})


class Fuzz:
    """Drives one operation with schemathesis cases; collects failures and the statuses seen."""

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

    def _aim(self, case: Any, operation: Any, data: st.DataObject) -> None:
        """The admin key, real ids in the path, a real time window, no foreign cursor and, for a
        membership change, a role modelgate knows and a real user, so that it is carried out."""
        params = case.path_parameters if isinstance(case.path_parameters, dict) else {}
        for name, ids in self.real.items():
            if name in params:
                params[name] = data.draw(st.sampled_from(ids))
        if isinstance(case.query, dict):
            for name in CURSORS:
                case.query.pop(name, None)
            if "start_time" in case.query:
                case.query["start_time"] = int(time.time()) - 3 * 86400
        if case.method == "POST" and isinstance(case.body, dict):
            aim_body(operation.path, case.body, data)
        if case.method == "POST" and "/users" in operation.path and isinstance(case.body, dict):
            project = "/projects/" in operation.path
            case.body["role"] = data.draw(st.sampled_from(PROJECT_ROLES if project else ORG_ROLES))
            if operation.path.endswith("/users"):
                case.body.pop("email", None)
                case.body["user_id"] = data.draw(st.sampled_from(self.real["user_id"]))
        if self.aim is not None:
            self.aim(case, operation, data)

    def drive(
        self, operation: Any, mode: GenerationMode, conforms: Draft202012Validator, *, served: bool = True
    ) -> None:
        @settings(
            max_examples=EXAMPLES if served else UNSERVED_EXAMPLES,
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
            if data.draw(st.booleans()):
                key = self.admin
                self._aim(case, operation, data)
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
            if not served and resp.status_code < 400:
                self.failures.append(f"{where}: not served, yet answered {resp.status_code}")
            try:
                body = resp.json()
            except ValueError:
                self.failures.append(f"{where} -> {resp.status_code} is not JSON: {resp.text[:200]!r}")
                return
            check = conforms if resp.status_code < 300 else self.errors
            problems = [e.message for e in check.iter_errors(body)]
            if problems:
                self.failures.append(f"{where} -> {resp.status_code} does not conform: {problems[:3]}")

        run()


def aim_body(path: str, body: dict[str, Any], data: st.DataObject) -> None:
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
