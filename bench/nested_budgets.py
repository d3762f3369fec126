"""Put an account's keys under budgets at every level (organisation, project, member within the
project, and the key's own limit), each far above what a bench spends, so that every hold checks
all four: ``python bench/nested_budgets.py DATABASE_URL EMAIL [all|key]`` (``key``: the key's own
limit only, what a key could be under before organisations). Used by ``bench/ab.py``
(``AB_BUDGETS=B``: the B build's key) to price nested budgets on the hot path."""

from __future__ import annotations

import asyncio
import sys

HUGE = 10**15  # credits: never reached


async def main(url: str, email: str, levels: str = "all") -> None:
    from modelgate.accounts.manage import update_key
    from modelgate.accounts.service import get_or_create_account
    from modelgate.store.budgets import set_budget
    from modelgate.store.db import Database
    from modelgate.store.key_rows import list_keys
    from modelgate.store.organisations import default_project

    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            org = await get_or_create_account(conn, email=email)
            if levels == "all":
                project = await default_project(conn, org_id=org)
                await set_budget(conn, org_id=org, period="month", limit_credits=HUGE)
                await set_budget(conn, org_id=org, project_id=project, period="day", limit_credits=HUGE)
                await set_budget(
                    conn, org_id=org, project_id=project, member_id=org, period="week", limit_credits=HUGE
                )
            for key in await list_keys(conn, account_id=org):
                await update_key(conn, key_id=key.id, limit=("day", HUGE))
    finally:
        await db.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], *(sys.argv[3:4] or ["all"])))
