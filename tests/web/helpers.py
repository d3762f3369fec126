"""Helpers of the web tests: HTTP clients that sign up and log in like a browser, and direct
database set-up (accounts with passwords, operators) run in a worker thread, so that they also work
while the sync Playwright API keeps an event loop running in the test thread."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from modelgate.accounts.service import create_account, top_up
from modelgate.store.db import Database
from modelgate.store.schema import Account
from tests.conftest import LiveServer
from tests.web.conftest import CSRF_FIELD

T = TypeVar("T")


def client(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)


def csrf(page: httpx.Response) -> str:
    found = CSRF_FIELD.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


def log_in(c: httpx.Client, email: str, password: str) -> httpx.Response:
    token = csrf(c.get("/app/login"))
    return c.post("/app/login", data={"email": email, "password": password, "csrf_token": token})


def with_db(server: LiveServer, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run ``work(conn)`` in one transaction on the server's database."""

    async def run() -> T:
        db = Database(server.settings.database_url)
        try:
            async with db.engine.begin() as conn:
                return await work(conn)
        finally:
            await db.aclose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def make_account(
    server: LiveServer,
    email: str,
    password: str = "a good password",
    *,
    operator: bool = False,
    usd: float = 0,
) -> int:
    async def work(conn: AsyncConnection) -> int:
        account_id = await create_account(conn, email=email, password=password, is_admin=operator)
        if usd:
            await top_up(conn, account_id=account_id, usd=usd)
        return account_id

    return with_db(server, work)


def balance(server: LiveServer, email: str) -> int:
    async def work(conn: AsyncConnection) -> int:
        return int(
            (await conn.execute(select(Account.balance_credits).where(Account.email == email))).scalar_one()
        )

    return with_db(server, work)


def set_operator(server: LiveServer, email: str) -> None:
    async def work(conn: AsyncConnection) -> Any:
        return await conn.execute(update(Account).where(Account.email == email).values(is_admin=True))

    with_db(server, work)


@contextmanager
def logged_in(server: LiveServer, email: str, password: str = "a good password") -> Iterator[httpx.Client]:
    with client(server) as c:
        r = log_in(c, email, password)
        assert r.status_code == 303, r.text
        yield c


def create_key(server: LiveServer, **kw: Any) -> str:
    """``server.create_key`` from a worker thread (safe inside the sync Playwright API)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(server.create_key, **kw).result()


def eventually(check: Callable[[], T], *, timeout: float = 60.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns a truthy value (log rows are written in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (the page's context
    needs ``bypass_csp=True``: axe is the test's own script)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations",
        AXE_TAGS,
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def browser_log_in(page: Any, url: str, email: str, password: str = "a good password") -> None:
    page.goto(f"{url}/app/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("main button[type=submit]")
    page.wait_for_url("**/app/keys")


def overflow_x(page: Any) -> int:
    """How many pixels the page is wider than its window (0: nothing sticks out sideways)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))
