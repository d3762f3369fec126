"""Catalogue editing in Debian's Chromium, at desktop and phone widths and in the dark colour scheme:
the file's own model refused with the reason and offered as a YAML patch, a provider (its API key
never shown again) and a model added, then called through the API at once; axe-core on each state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI
from tests.web.conftest import DESKTOP, screenshots_dir
from tests.web.helpers import create_key, make_account
from tests.web.selfservice import LOOKS, assert_accessible, log_in, look

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.mark.parametrize(("viewport", "scheme"), LOOKS)
def test_catalogue_editing_in_the_browser(
    web_server: LiveServer,
    openai_upstream: FakeOpenAI,
    browser: Any,
    viewport: dict[str, int],
    scheme: str,
    tmp_path: Path,
) -> None:
    url = web_server.url
    make_account(web_server, "op@example.com", operator=True)
    key = create_key(web_server, email="user@example.com", usd=5)
    op = look(browser, viewport, scheme)
    log_in(op, url, "op@example.com", "a good password")
    op.wait_for_url("**/app/keys")
    op.goto(f"{url}/admin/catalog")
    assert_accessible(op, "empty catalogue")

    # The file's model: refused, with the reason and the patch for the file.
    op.fill("#m-id", "mock/echo")
    op.fill("#m-upstream", "other-model")
    op.fill("#m-input", "3")
    op.click("#save-model")
    op.wait_for_selector("#model-error")
    assert "defined by the catalogue file" in op.inner_text("#model-error")
    assert "id: mock/echo" in op.inner_text("#catalog-patch")
    assert_accessible(op, "refusal and patch")

    op.fill("#p-name", "browser-provider")
    op.select_option("#p-type", "openai")
    op.fill("#p-base-url", openai_upstream.base_url)
    op.fill("#p-key", "sk-typed-in-the-browser")
    op.click("#save-provider")
    op.wait_for_selector("#catalog-saved")
    op.fill("#m-id", "browser/model")
    op.fill("#m-label", "Browser model")
    op.select_option("#m-provider", "browser-provider")
    op.fill("#m-upstream", "browser-upstream")
    op.fill("#m-input", "0.5")
    op.fill("#m-output", "1.5")
    op.click("#save-model")
    op.wait_for_selector("#catalog-saved")
    table = op.inner_text("#catalog-entries")
    assert "browser/model" in table and "API key stored (sealed)" in table
    assert "sk-typed-in-the-browser" not in op.content()
    assert_accessible(op, "catalogue with entries")
    if viewport == DESKTOP and scheme == "light":  # docs/screenshots with MODELGATE_SCREENSHOTS=1
        op.screenshot(
            path=str(screenshots_dir(tmp_path) / "admin-catalog-edited-desktop.png"), full_page=True
        )

    r = httpx.post(
        f"{url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "browser/model", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert openai_upstream.requests[-1].json["model"] == "browser-upstream"
    op.context.close()
