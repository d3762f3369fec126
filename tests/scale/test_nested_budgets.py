"""Budgets at every level, at the boundary, in parallel: one instance (SQLite and PostgreSQL) and two
PostgreSQL instances (the ``cluster`` fixture).

200 parallel requests, each charged exactly its hold (the fake upstream reports the dearest usage the
hold covers), against a team organisation whose project budget has room for exactly K holds — alone,
and with a member budget and a key limit smaller than the project's under it. Exactly as many succeed
as the tightest level admits, no level ever overspends, and what is charged (ledger) == what is logged
(request logs) == every level's recorded spend (budget and key buckets), with nothing left held.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from modelgate.accounts.service import create_key, get_or_create_account, top_up
from modelgate.store.budgets import bucket_spend, set_budget
from modelgate.store.db import Database
from modelgate.store.ledger import period_key
from modelgate.store.organisations import add_org_member, add_project_member, create_org, create_project
from modelgate.store.schema import ApiKey, Budget, Hold, KeySpend, LedgerEntry, RequestLog
from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, Scripted
from tests.scale.test_ledger_exactness import DEAREST, _body, _hold_size, _until

N = 200
HEADROOM = 2  # budgets get half a hold more than K holds: room for K, not K + 1


@dataclass
class Team:
    org_id: int
    project_budget: int
    member_budget: int | None
    keys: dict[str, tuple[int, str]]  # name -> (key id, raw key)


async def _make_team(url: str, hold: int, *, k_project: int, k_member: int | None, k_key: int | None) -> Team:
    """A team organisation (1000 USD pooled) with a project; Ann has two keys in it (``a1`` with its
    own limit of ``k_key`` holds), Bob one (``b1``). Budgets: the organisation (roomy), the project
    (``k_project`` holds) and Ann within the project (``k_member`` holds)."""
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            ann = await get_or_create_account(conn, email="ann@example.com")
            bob = await get_or_create_account(conn, email="bob@example.com")
            org = await create_org(conn, name="Acme", owner_id=ann)
            await add_org_member(conn, org_id=org, account_id=bob, role="member")
            await top_up(conn, account_id=org, usd=1000.0)
            project = await create_project(conn, org_id=org, name="search", owner_id=ann)
            await add_project_member(conn, project_id=project, account_id=bob, role="member")
            room = {"project": k_project * hold + hold // HEADROOM}
            await set_budget(conn, org_id=org, period="month", limit_credits=10 * N * hold)
            await set_budget(
                conn, org_id=org, project_id=project, period="day", limit_credits=room["project"]
            )
            member_room = None
            if k_member is not None:
                member_room = k_member * hold + hold // HEADROOM
                await set_budget(
                    conn,
                    org_id=org,
                    project_id=project,
                    member_id=ann,
                    period="none",
                    limit_credits=member_room,
                )
            keys = {}
            for name, member, limit in (
                ("a1", ann, None if k_key is None else k_key * hold + hold // HEADROOM),
                ("a2", ann, None),
                ("b1", bob, None),
            ):
                new = await create_key(
                    conn,
                    account_id=org,
                    project_id=project,
                    member_id=member,
                    name=name,
                    limit_credits=limit,
                    limit_retention="week" if limit is not None else None,
                )
                keys[name] = (new.key_id, new.key)
        return Team(org, room["project"], member_room, keys)
    finally:
        await db.aclose()


async def _fire(urls: list[str], keys: list[str], n: int) -> list[tuple[int, str | None, str]]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    body = _body()
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:

        async def one(i: int) -> tuple[int, str | None, str]:
            key = keys[i % len(keys)]
            r = await client.post(
                f"{urls[i % len(urls)]}/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
            )
            code = None if r.status_code == 200 else (r.json().get("error") or {}).get("code")
            return r.status_code, code, key

        return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _books(url: str, team: Team) -> dict[str, Any]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            charges = dict(
                (
                    await conn.execute(
                        select(LedgerEntry.reference_id, -LedgerEntry.credits).where(
                            LedgerEntry.account_id == team.org_id, LedgerEntry.kind == "charge"
                        )
                    )
                ).all()
            )
            logged = dict(
                (
                    await conn.execute(
                        select(RequestLog.inference_id, RequestLog.credits).where(
                            RequestLog.account_id == team.org_id, RequestLog.credits > 0
                        )
                    )
                ).all()
            )
            by_key = dict(
                (
                    await conn.execute(
                        select(LedgerEntry.key_id, func.sum(-LedgerEntry.credits))
                        .where(LedgerEntry.account_id == team.org_id, LedgerEntry.kind == "charge")
                        .group_by(LedgerEntry.key_id)
                    )
                ).all()
            )
            holds = (await conn.execute(select(func.count()).select_from(Hold))).scalar_one()
            budgets = (
                await conn.execute(select(Budget.id, Budget.project_id, Budget.member_id, Budget.period))
            ).all()
            spend = {}
            for bid, project, member, period in budgets:
                level = "organisation" if project is None else ("project" if member is None else "member")
                spend[level] = await bucket_spend(conn, budget_id=bid, period=period_key(period))
            key_spend = (
                await conn.execute(
                    select(KeySpend.key_id, KeySpend.spent_credits, KeySpend.held_credits).join(
                        ApiKey, ApiKey.id == KeySpend.key_id
                    )
                )
            ).all()
    finally:
        await db.aclose()
    return {
        "charges": charges,
        "logged": logged,
        "by_key": {int(k): int(v) for k, v in by_key.items()},
        "holds": int(holds),
        "spend": spend,
        "key_spend": {int(k): (int(s), int(h)) for k, s, h in key_spend},
    }


def _scenario(urls: list[str], server: LiveServer, upstream: FakeOpenAI, nested: bool) -> None:
    hold = _hold_size(server, upstream)
    upstream.script(*[Scripted(usage=DEAREST) for _ in range(N + 5)])
    url = server.settings.database_url
    k_project, k_member, k_key = (31, 19, 7) if nested else (23, None, None)
    team = asyncio.run(_make_team(url, hold, k_project=k_project, k_member=k_member, k_key=k_key))
    a1, a2, b1 = (team.keys[n] for n in ("a1", "a2", "b1"))
    results = asyncio.run(_fire(urls, [a1[1], a2[1], b1[1]], N))
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] != 200]
    # Bob's key is limited by the project only, and every success is charged its whole hold, so the
    # project fills to exactly K whatever the nested levels let Ann's keys take.
    assert len(ok) == k_project, (len(ok), refused[:3])
    assert {r[0] for r in refused} == {403}
    assert {r[1] for r in refused} <= {"budget_exceeded", "key_limit_exceeded"}, refused[:3]

    async def settled() -> bool:
        return (await _books(url, team))["holds"] == 0

    asyncio.run(_until(settled, "every hold settled"))
    books = asyncio.run(_books(url, team))
    assert books["charges"] == books["logged"]  # charged == logged, request by request
    assert sorted(books["charges"].values()) == [hold] * k_project
    total = sum(books["charges"].values())
    assert books["spend"]["organisation"] == (total, 0)
    assert books["spend"]["project"] == (total, 0) and total <= team.project_budget
    ann = books["by_key"].get(a1[0], 0) + books["by_key"].get(a2[0], 0)
    if nested:
        assert team.member_budget is not None
        assert books["spend"]["member"] == (ann, 0) and ann <= team.member_budget
        assert books["key_spend"][a1[0]] == (books["by_key"].get(a1[0], 0), 0)
        assert books["key_spend"][a1[0]][0] <= k_key * hold + hold // HEADROOM  # type: ignore[operator]
    assert sum(books["by_key"].values()) == total


@pytest.mark.parametrize("nested", [False, True], ids=["project", "nested"])
def test_one_instance_budgets_exact_at_every_level(
    live_server: LiveServer, openai_upstream: FakeOpenAI, nested: bool
) -> None:
    _scenario([live_server.url], live_server, openai_upstream, nested)


@pytest.mark.postgres
@pytest.mark.parametrize("nested", [False, True], ids=["project", "nested"])
def test_two_instances_budgets_exact_at_every_level(
    cluster: Any, openai_upstream: FakeOpenAI, nested: bool
) -> None:
    a, b = cluster(2)
    _scenario([a.url, b.url], a, openai_upstream, nested)
