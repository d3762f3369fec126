"""OpenAI's Admin API spend limits and spend alerts on modelgate's budgets (docs/admin-api.md),
driven by the openai SDK (``client.admin.organization.spend_limit``/``spend_alerts`` and their
project twins), whose types parse every answer; an amount alert raised and mailed to its recipients
by a live gateway; isolation between organisations and roles; and schemathesis over these operations
of OpenAI's document (``tests/specs/openai/admin.json``): 2xx conform, errors are ``ErrorResponse``,
no 5xx, an inference key changes nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from sqlalchemy import insert, select

from modelgate.accounts.service import create_key, get_or_create_account
from modelgate.store.db import Database
from modelgate.store.ledger import period_key
from modelgate.store.organisations import add_org_member, create_org
from modelgate.store.schema import Budget, BudgetSpend
from tests.api.admin_fuzzing import EXAMPLES, SPEC, Fuzz, validator
from tests.billing.helpers import auth, chat
from tests.conftest import MOCK_CONFIG, FakeOpenAI, LiveServer
from tests.fakes.smtp import smtp_server

USD = 2_000_000
CHANNEL = {"type": "email", "recipients": ["finance@example.com"], "subject_prefix": "[acme]"}


def _admin(server: LiveServer, key: str) -> Any:
    return openai.OpenAI(
        base_url=f"{server.url}/v1", api_key="unused", admin_api_key=key, max_retries=0
    ).admin.organization


def _org_view(server: LiveServer, key: str) -> dict[str, Any]:
    r = requests.get(f"{server.url}/v1/organisation", headers=auth(key), timeout=20)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def _seed_spend(server: LiveServer, *, project_id: int | None, credits: int) -> None:
    async def go() -> None:
        db = Database(server.settings.database_url)
        try:
            async with db.engine.begin() as conn:
                q = select(Budget.id).where(
                    Budget.project_id.is_(None) if project_id is None else Budget.project_id == project_id
                )
                budget = (await conn.execute(q)).scalar_one()
                await conn.execute(
                    insert(BudgetSpend).values(
                        budget_id=budget, period=period_key("month"), spent_credits=credits
                    )
                )
        finally:
            await db.aclose()

    asyncio.run(go())


def test_openai_sdk_sets_spend_limits_and_alerts(live_server: LiveServer) -> None:
    admin = live_server.create_key(email="spend-owner@example.com", usd=0, management=True)
    key = live_server.create_key(email="spend-owner@example.com", usd=5.0)
    org = _admin(live_server, admin)

    with pytest.raises(openai.NotFoundError):
        org.spend_limit.retrieve()
    limit = org.spend_limit.update(threshold_amount=5000, currency="USD", interval="month")
    assert (limit.object, limit.threshold_amount, limit.interval, limit.currency) == (
        "organization.spend_limit",
        5000,
        "month",
        "USD",
    )
    assert limit.enforcement.status == "inactive"
    assert org.spend_limit.retrieve().threshold_amount == 5000
    (budget,) = _org_view(live_server, admin)["budgets"]
    assert (budget["level"], budget["period"], budget["limit_usd"]) == ("organisation", "month", 50.0)

    project = org.projects.create(name="spenders")
    pid = int(project.id.removeprefix("proj_"))
    p_limit = org.projects.spend_limit.update(
        project.id, threshold_amount=1, currency="USD", interval="month"
    )
    assert p_limit.object == "project.spend_limit" and p_limit.threshold_amount == 1
    _seed_spend(live_server, project_id=pid, credits=USD // 100)  # one cent: the limit is reached
    assert org.projects.spend_limit.retrieve(project.id).enforcement.status == "enforcing"
    in_project = live_server.create_key(email="spend-owner@example.com", usd=0, project_id=pid)
    assert chat(live_server, in_project).status_code == 403  # the budget refuses
    assert org.projects.spend_limit.delete(project.id).deleted
    with pytest.raises(openai.NotFoundError):
        org.projects.spend_limit.retrieve(project.id)

    alert = org.spend_alerts.create(
        threshold_amount=2500, currency="USD", interval="month", notification_channel=CHANNEL
    )
    assert alert.object == "organization.spend_alert" and alert.id.startswith("alert_")
    assert alert.notification_channel.recipients == ["finance@example.com"]
    assert org.spend_alerts.retrieve(alert.id).threshold_amount == 2500
    changed = org.spend_alerts.update(
        alert.id,
        threshold_amount=4000,
        currency="USD",
        interval="month",
        notification_channel={"type": "email", "recipients": ["Ops@Example.com"]},
    )
    assert changed.threshold_amount == 4000 and changed.notification_channel.recipients == ["ops@example.com"]
    assert [a.id for a in org.spend_alerts.list()] == [alert.id]

    made = [
        org.projects.spend_alerts.create(
            project.id,
            threshold_amount=100 * (i + 1),
            currency="USD",
            interval="month",
            notification_channel=CHANNEL,
        )
        for i in range(3)
    ]
    assert {m.object for m in made} == {"project.spend_alert"}
    first = org.projects.spend_alerts.list(project.id, limit=2)
    assert len(first.data) == 2 and first.has_more
    assert [a.id for a in org.projects.spend_alerts.list(project.id, limit=2)] == [
        m.id for m in made
    ]  # pages
    assert [a.id for a in org.projects.spend_alerts.list(project.id, order="desc").data] == [
        m.id for m in made
    ][::-1]
    assert org.projects.spend_alerts.retrieve(made[1].id, project_id=project.id).threshold_amount == 200
    with pytest.raises(openai.NotFoundError):
        org.spend_alerts.retrieve(made[1].id)  # a project's alert is not the organisation's
    with pytest.raises(openai.NotFoundError):
        org.projects.spend_alerts.retrieve(alert.id, project_id=project.id)

    # Without a limit the organisation's alert keeps a counting budget that refuses nothing.
    assert org.spend_limit.delete().deleted
    with pytest.raises(openai.NotFoundError):
        org.spend_limit.retrieve()
    assert [a.id for a in org.spend_alerts.list()] == [alert.id]
    counting = [b for b in _org_view(live_server, admin)["budgets"] if b["level"] == "organisation"]
    assert [(b["limit_usd"], b["period"]) for b in counting] == [(None, "month")]
    assert chat(live_server, key).status_code == 200
    gone = org.spend_alerts.delete(alert.id)
    assert gone.deleted and gone.object == "organization.spend_alert.deleted" and gone.id == alert.id
    assert not [b for b in _org_view(live_server, admin)["budgets"] if b["level"] == "organisation"]
    for m in made:
        assert org.projects.spend_alerts.delete(m.id, project_id=project.id).deleted
    assert org.projects.spend_alerts.list(project.id).data == []

    # Spend alerts count monthly spend: a daily budget takes none.
    daily = org.projects.create(name="daily")
    r = requests.put(
        f"{live_server.url}/v1/budgets",
        headers=auth(admin),
        json={"project_id": int(daily.id.removeprefix("proj_")), "period": "day", "limit_usd": 5},
        timeout=20,
    )
    assert r.status_code == 200, r.text
    assert org.projects.spend_limit.retrieve(daily.id).interval == "day"
    with pytest.raises(openai.BadRequestError):
        org.projects.spend_alerts.create(
            daily.id, threshold_amount=100, currency="USD", interval="month", notification_channel=CHANNEL
        )
    with pytest.raises(openai.BadRequestError):
        org.spend_alerts.create(
            threshold_amount=100,
            currency="USD",
            interval="month",
            notification_channel={"type": "email", "recipients": ["not an address"]},
        )


def test_an_amount_alert_is_raised_once_and_mailed_to_its_recipients(
    make_live_server: Any, openai_upstream: FakeOpenAI
) -> None:
    with smtp_server() as (box, port):
        server = make_live_server(
            MOCK_CONFIG.format(base_url=openai_upstream.base_url),
            spend_alert_interval=0.05,
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
        )
        admin = server.create_key(email="amount@example.com", usd=0, management=True)
        key = server.create_key(email="amount@example.com", usd=5.0)
        org = _admin(server, admin)
        org.spend_alerts.create(
            threshold_amount=1, currency="USD", interval="month", notification_channel=CHANNEL
        )
        _seed_spend(server, project_id=None, credits=USD // 100 - 1)
        assert chat(server, key).status_code == 200  # crosses one cent
        mail = box.wait_for("finance@example.com", "[acme] The organisation has spent $0.01")
        assert mail is not None
        assert chat(server, key).status_code == 200
        alerts = _org_view(server, admin)["recent_alerts"]
        assert [(a["level"], a["threshold_usd"], a["threshold_percent"]) for a in alerts] == [
            ("organisation", 0.01, None)
        ]
        assert len(box.to("finance@example.com")) == 1 and not box.to("amount@example.com")


def test_one_organisation_cannot_see_or_change_anothers_limits_and_alerts(live_server: LiveServer) -> None:
    async def setup() -> dict[str, str]:
        db = Database(live_server.settings.database_url)
        try:
            async with db.engine.begin() as conn:
                olga = await get_or_create_account(conn, email="olga@acme.example")
                ann = await get_or_create_account(conn, email="ann@acme.example")
                org = await create_org(conn, name="Acme", owner_id=olga)
                await add_org_member(conn, org_id=org, account_id=ann, role="member")
                keys = {
                    "olga": (await create_key(conn, account_id=org, member_id=olga, management=True)).key,
                    "ann": (await create_key(conn, account_id=org, member_id=ann, management=True)).key,
                    "olga-inference": (await create_key(conn, account_id=org, member_id=olga)).key,
                }
            return keys
        finally:
            await db.aclose()

    acme = asyncio.run(setup())
    other_admin = live_server.create_key(email="rival@example.com", usd=0, management=True)
    mine, theirs = _admin(live_server, acme["olga"]), _admin(live_server, other_admin)
    alert = mine.spend_alerts.create(
        threshold_amount=100, currency="USD", interval="month", notification_channel=CHANNEL
    )
    project = mine.projects.create(name="secret")
    p_alert = mine.projects.spend_alerts.create(
        project.id, threshold_amount=100, currency="USD", interval="month", notification_channel=CHANNEL
    )
    mine.spend_limit.update(threshold_amount=900, currency="USD", interval="month")

    with pytest.raises(openai.NotFoundError):
        theirs.spend_alerts.retrieve(alert.id)
    with pytest.raises(openai.NotFoundError):
        theirs.spend_alerts.update(
            alert.id, threshold_amount=1, currency="USD", interval="month", notification_channel=CHANNEL
        )
    with pytest.raises(openai.NotFoundError):
        theirs.spend_alerts.delete(alert.id)
    assert theirs.spend_alerts.list().data == []
    with pytest.raises(openai.NotFoundError):
        theirs.spend_limit.retrieve()
    for call in (
        lambda: theirs.projects.spend_alerts.list(project.id),
        lambda: theirs.projects.spend_alerts.retrieve(p_alert.id, project_id=project.id),
        lambda: theirs.projects.spend_limit.retrieve(project.id),
        lambda: theirs.projects.spend_limit.update(
            project.id, threshold_amount=1, currency="USD", interval="month"
        ),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    # A plain member reads but does not change; an inference key administers nothing.
    ann = _admin(live_server, acme["ann"])
    assert ann.spend_limit.retrieve().threshold_amount == 900
    with pytest.raises(openai.PermissionDeniedError):
        ann.spend_limit.update(threshold_amount=1, currency="USD", interval="month")
    with pytest.raises(openai.PermissionDeniedError):
        ann.spend_alerts.delete(alert.id)
    with pytest.raises(openai.PermissionDeniedError):
        _admin(live_server, acme["olga-inference"]).spend_alerts.list()
    assert mine.spend_alerts.retrieve(alert.id).threshold_amount == 100
    assert mine.spend_limit.retrieve().threshold_amount == 900


def test_schemathesis_drives_openais_spend_operations(live_server: LiveServer) -> None:
    email = "fuzz-spend@example.com"
    admin = live_server.create_key(email=email, usd=0, management=True)
    inference = live_server.create_key(email=email, usd=5.0)
    doc = json.loads(SPEC.read_text(encoding="utf-8"))
    errors = validator(doc, {"$ref": "#/components/schemas/ErrorResponse"})
    base = f"{live_server.url}/v1"
    org = _admin(live_server, admin)
    project = org.projects.create(name="fuzzed")
    alerts = [
        org.spend_alerts.create(
            threshold_amount=5, currency="USD", interval="month", notification_channel=CHANNEL
        ).id,
        org.projects.spend_alerts.create(
            project.id, threshold_amount=5, currency="USD", interval="month", notification_channel=CHANNEL
        ).id,
    ]
    org.spend_limit.update(threshold_amount=10_000, currency="USD", interval="month")
    org.projects.spend_limit.update(project.id, threshold_amount=10_000, currency="USD", interval="month")
    real = {"project_id": [project.id], "alert_id": alerts}
    fuzz = Fuzz(base=base, admin=admin, inference=inference, real=real, errors=errors, aim=_aim)
    operations = 0
    for result in schemathesis.openapi.from_dict(doc).get_all_operations():
        operation = result.ok()
        if "/spend_limit" not in operation.path and "/spend_alerts" not in operation.path:
            continue
        operations += 1
        ok_schema = operation.definition.raw["responses"]["200"]["content"]["application/json"]["schema"]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz.drive(operation, mode, validator(doc, ok_schema))
    fuzz.session.close()
    assert operations == 16 and fuzz.calls >= EXAMPLES * operations
    assert not fuzz.failures, "\n".join(fuzz.failures[:20])
    unanswered = [op for op, seen in fuzz.answered.items() if not any(s < 300 for s in seen)]
    # Deletions may land only on ids already deleted by an earlier example.
    assert len(fuzz.answered) == 16 and len(unanswered) <= 2, unanswered


def _aim(case: Any, operation: Any, data: st.DataObject) -> None:
    """Half of the examples: a body modelgate carries out (an amount it takes, real addresses)."""
    if case.method != "POST" or not isinstance(case.body, dict):
        return
    case.body.update(currency="USD", interval="month")
    case.body["threshold_amount"] = data.draw(st.integers(min_value=1, max_value=100_000))
    if "/spend_alerts" in operation.path:
        case.body["notification_channel"] = {
            "type": "email",
            "recipients": data.draw(
                st.lists(st.sampled_from(["a@example.com", "b@example.com"]), max_size=2)
            ),
        }


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
