"""Shared by the self-service browser tests: a live server that mails through a real SMTP server
(aiosmtpd, ``tests/fakes/smtp.py``), the three looks each flow is run in (desktop, phone, dark),
and the axe-core check of a page (``test_a11y``'s helper)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelgate.app import build_app
from modelgate.settings import Settings
from tests.conftest import MOCK_CONFIG, LiveServer, _create_schema, _ServerThread
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.smtp import Mailbox, smtp_server
from tests.web.conftest import DESKTOP, PHONE, new_page
from tests.web.helpers import AXE, axe_violations

LOOKS = [
    pytest.param(DESKTOP, "light", id="desktop"),
    pytest.param(PHONE, "light", id="phone"),
    pytest.param(DESKTOP, "dark", id="dark"),
]


@dataclass
class MailServer:
    server: LiveServer
    mailbox: Mailbox

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def mail_web(database_url: str, openai_upstream: FakeOpenAI, tmp_path: Path) -> Iterator[MailServer]:
    config = tmp_path / "modelgate.yaml"
    config.write_text(MOCK_CONFIG.format(base_url=openai_upstream.base_url))
    with smtp_server() as (box, smtp_port):
        settings = Settings(
            database_url=database_url,
            config=config,
            bootstrap=False,
            log_flush_interval=0.05,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_security="none",
            mail_from="Gateway <gateway@example.com>",
        )
        app = build_app(settings)
        asyncio.run(_create_schema(database_url))
        thread = _ServerThread(app)
        thread.start()
        url = f"http://127.0.0.1:{thread.server.config.port}"
        yield MailServer(LiveServer(url=url, settings=settings, app=app), box)
        thread.stop()


def look(browser: Any, viewport: dict[str, int], scheme: str) -> Any:
    """A page in a fresh browser context (its own cookies) with that width and colour scheme."""
    return new_page(browser, viewport=viewport, color_scheme=scheme, bypass_csp=True)


def assert_accessible(page: Any, where: str) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    if not AXE.exists():
        return  # test_a11y skips the same way without `make axe`
    found = axe_violations(page)
    assert not found, f"{where}: {found}"


def log_in(page: Any, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/app/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("main button[type=submit]")


def log_out(page: Any) -> None:
    page.click("form[action='/app/logout'] button")
    page.wait_for_url("**/app/login")
