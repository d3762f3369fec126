"""Two organisations with known request-log and ledger rows at known times, for the Admin API's
usage, costs and audit tests (tests/api/test_admin_usage.py, test_admin_audit.py). Every row is
written as modelgate writes it (the table models of store/schema.py); expected figures are computed
from the same list the rows were made from."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from modelgate.accounts.service import create_key, get_or_create_account
from modelgate.store import organisations as orgs
from modelgate.store.db import Database
from modelgate.store.schema import LedgerEntry, RequestLog

DAY = 86400
T0 = (int(time.time()) // DAY - 5) * DAY  # midnight UTC five days ago


@dataclass(frozen=True)
class Row:
    """One request: ``at`` seconds after T0, by key ``key`` (a name in ``Org.keys``)."""

    at: int
    key: str
    model: str = "mock/echo"
    door: str = "chat"
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    cache_write: int = 0
    audio: int = 0
    uses: dict[str, int] | None = None
    status: str = "success"
    credits: int = 0


@dataclass
class Org:
    id: int
    admin: str
    projects: dict[str, int] = field(default_factory=dict)  # name -> id
    members: dict[str, int] = field(default_factory=dict)  # name -> account id
    keys: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # name -> (key id, project, member)
    rows: list[Row] = field(default_factory=list)


ROWS_A = [
    Row(10, "k1", prompt=100, completion=20, cached=40, cache_write=5, credits=300),
    Row(70, "k1", prompt=7, completion=3, credits=40),
    Row(3600 + 5, "k2", model="mock/chain", door="messages", prompt=50, completion=50, audio=9, credits=500),
    Row(3600 + 9, "k2", door="responses", prompt=1, completion=1, status="error"),
    Row(DAY + 30, "k1", door="embeddings", model="emb", prompt=64, credits=64),
    Row(DAY + 40, "k2", door="embeddings", model="emb", prompt=16, credits=16),
    Row(2 * DAY + 1, "k1", door="images", model="img", uses={"image:1024x1024/high": 2}, credits=2000),
    Row(2 * DAY + 2, "k2", door="image_edits", model="img", uses={"image:512x512/low": 1}, credits=700),
    Row(2 * DAY + 3, "k1", door="speech", model="tts", uses={"character": 120}, credits=120),
    Row(2 * DAY + 4, "k2", door="transcriptions", model="stt", uses={"second": 33}, credits=330),
    Row(2 * DAY + 5, "k2", door="translations", model="stt", uses={"second": 7}, credits=70),
    Row(3 * DAY + 60, "k1", door="responses", prompt=10, completion=5, uses={"web_search": 3}, credits=3010),
    Row(3 * DAY + 61, "k2", door="messages", prompt=10, completion=5, uses={"web_search": 1}, credits=1010),
    Row(4 * DAY + 3599, "k2", prompt=1000, completion=1, cached=999, credits=9),
]
ROWS_B = [Row(15, "b1", prompt=5000, completion=5000, credits=99999)]


async def _seed(url: str) -> tuple[Org, Org]:
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            a = await get_or_create_account(conn, email="owner-a@example.com")
            a_admin = (await create_key(conn, account_id=a, management=True)).key
            org_a = Org(a, a_admin)
            org_a.projects["default"] = await orgs.default_project(conn, org_id=a) or 0
            org_a.projects["p2"] = await orgs.create_project(conn, org_id=a, name="second", owner_id=a)
            dev = await get_or_create_account(conn, email="dev-a@example.com")
            await orgs.add_org_member(conn, org_id=a, account_id=dev, role="member")
            await orgs.add_project_member(
                conn, project_id=org_a.projects["p2"], account_id=dev, role="member"
            )
            org_a.members = {"owner": a, "dev": dev}
            for name, project, member in (("k1", "default", "owner"), ("k2", "p2", "dev")):
                new = await create_key(
                    conn, account_id=a, project_id=org_a.projects[project], member_id=org_a.members[member]
                )
                org_a.keys[name] = (new.key_id, org_a.projects[project], org_a.members[member])
            b = await get_or_create_account(conn, email="owner-b@example.com")
            org_b = Org(b, (await create_key(conn, account_id=b, management=True)).key)
            org_b.projects["default"] = await orgs.default_project(conn, org_id=b) or 0
            key_b = await create_key(conn, account_id=b)
            org_b.keys["b1"] = (key_b.key_id, org_b.projects["default"], b)
            for org, rows in ((org_a, ROWS_A), (org_b, ROWS_B)):
                org.rows = rows
                for i, r in enumerate(rows):
                    key_id = org.keys[r.key][0]
                    when = datetime.fromtimestamp(T0 + r.at, UTC)
                    rid = f"seed-{org.id}-{i}"
                    await conn.execute(
                        insert(RequestLog).values(
                            inference_id=rid,
                            account_id=org.id,
                            key_id=key_id,
                            model=r.model,
                            status=r.status,
                            http_status=200 if r.status == "success" else 500,
                            door=r.door,
                            prompt_tokens=r.prompt,
                            completion_tokens=r.completion,
                            cached_tokens=r.cached,
                            cache_write_5m_tokens=r.cache_write,
                            audio_tokens=r.audio,
                            uses=json.dumps(r.uses) if r.uses else None,
                            credits=r.credits,
                            created_at=when,
                        )
                    )
                    if r.credits:
                        await conn.execute(
                            insert(LedgerEntry).values(
                                account_id=org.id,
                                key_id=key_id,
                                kind="charge",
                                credits=-r.credits,
                                reference_id=rid,
                                model=r.model,
                                created_at=when,
                            )
                        )
        return org_a, org_b
    finally:
        await db.aclose()


def seed(database_url: str) -> tuple[Org, Org]:
    return asyncio.run(_seed(database_url))


def key_ref(org: Org, name: str) -> str:
    return f"key_{org.keys[name][0]}"


def expected(org: Org, pick: Any, figures: Any, *, width: int, group: Any = lambda r: ()) -> dict[Any, Any]:
    """``{(bucket start, group): figures(rows)}`` over the successful rows ``pick`` keeps."""
    groups: dict[Any, list[Row]] = {}
    for r in org.rows:
        if r.status == "success" and pick(r):
            start = T0 + (r.at // width) * width
            groups.setdefault((start, group(r)), []).append(r)
    return {k: figures(v) for k, v in groups.items()}
