"""End to end in a real headless Chromium (Debian ``chromium`` driven by the ``playwright`` package).

sign up → create a key → copy it → call the API (200) → disable it in the UI (401) → enable →
the playground streams a reply → billing shows the request (origin: playground) in the chart and
the logs → the docs page of google/gemini-2.5-pro shows its schema and samples, and its Python
sample, with the model swapped for the mock one, runs against the server.

Set ``MODELGATE_SCREENSHOTS=1`` to refresh docs/screenshots/ (otherwise they go to a temp folder).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer
from tests.web.test_pages import top_up_account

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"),
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]
REPO = Path(__file__).resolve().parents[2]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


def _chat(server: LiveServer, key: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "echo", "messages": [{"role": "user", "content": "ping"}]},
        timeout=20,
    )


def test_browser_flow(web_server: LiveServer, tmp_path: Path) -> None:
    shots = REPO / "docs" / "screenshots" if os.environ.get("MODELGATE_SCREENSHOTS") else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    url = web_server.url
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport=DESKTOP)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
        page = context.new_page()
        page.set_default_timeout(15_000)

        def shot(name: str, *, phone: bool = False) -> None:
            page.screenshot(path=str(shots / f"{name}-desktop.png"), full_page=True)
            if phone:
                page.set_viewport_size(PHONE)
                page.screenshot(path=str(shots / f"{name}-phone.png"), full_page=True)
                page.set_viewport_size(DESKTOP)

        # Sign up (with one form error first).
        page.goto(f"{url}/app/signup")
        page.fill("#email", "browser@example.com")
        page.fill("#password", "short")
        page.click("button[type=submit]")
        assert "at least 8 characters" in page.inner_text("#password-error")
        shot("signup", phone=True)
        page.fill("#password", "a long enough password")
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/app/keys?welcome=1")
        top_up_account(web_server, "browser@example.com", usd=5)

        # Create a key; copy it with the button; it works.
        page.fill("#key-name", "e2e key")
        page.click("form.grid-form button[type=submit]")
        shown = page.inner_text("#new-key-value").strip()
        page.click("[data-copy='#new-key-value']")
        page.wait_for_selector("text=Copied!")
        key = page.evaluate("navigator.clipboard.readText()")
        assert key == shown and len(key) == 32
        shot("keys", phone=True)
        assert _chat(web_server, key).status_code == 200

        # Disable it in the UI: the very next request is refused. Enable again.
        row = f"tr[data-key-prefix='{key[:8]}']"
        page.click(f"{row} button.switch")
        page.wait_for_selector(f"{row} button.switch[aria-checked=false]")
        r = _chat(web_server, key)
        assert r.status_code == 401 and "disabled" in r.text
        page.click(f"{row} button.switch")
        page.wait_for_selector(f"{row} button.switch[aria-checked=true]")
        assert _chat(web_server, key).status_code == 200

        # Playground: a streamed reply with its finish reason, usage and cost.
        page.goto(f"{url}/app/playground?model=mock/echo")
        assert page.input_value("#pg-max-tokens") == "512"
        assert "unavailable" in page.inner_text("#pg-model option[value='mock/unconfigured']")
        page.fill("#pg-system", "You are terse.")
        page.fill("#pg-input", "Hello from the browser <b>not bold</b>")
        page.click("#pg-send")
        meta = page.wait_for_selector(".msg.assistant .reply-meta")
        assert meta is not None
        reply = page.inner_text(".msg.assistant .content")
        assert "Hello from the browser <b>not bold</b>" in reply  # shown as text, not markup
        assert page.locator(".msg.assistant .content b").count() == 0
        assert "finish_reason: stop" in meta.inner_text()
        credits = page.inner_text(".msg.assistant [data-field=credits]")
        assert int(credits.split(": ")[1]) > 0
        assert "USD: $" in meta.inner_text()
        page.click("#view-code")
        python_code = page.inner_text("#code-python")
        assert "requests.post(" in python_code and '"model": "mock/echo"' in python_code
        assert '"stream_options"' in python_code
        page.click("[role=tab][data-tab=curl]")
        assert "curl -N" in page.inner_text("#code-curl")
        shot("playground-code")
        page.click("#code-close")
        # A reasoning model: the effort picker appears.
        page.select_option("#pg-model", "mock/thinker")
        assert page.is_visible("#pg-effort")
        page.select_option("#pg-model", "mock/echo")
        shot("playground", phone=True)

        # Billing: the chart and the logs show the playground request.
        for _ in range(100):
            page.goto(f"{url}/app/billing?origin=playground")
            if page.locator("#logs-table td.origin").count():
                break
            time.sleep(0.05)
        assert page.inner_text("#logs-table td.origin") == "playground"
        assert page.locator("#usage-chart svg rect").count() >= 1
        assert "mock/echo" in page.inner_text("#usage-per-model")
        page.goto(f"{url}/app/billing")
        shot("billing", phone=True)

        # Docs: index, then the gemini page with its schema and samples.
        page.goto(f"{url}/docs")
        shot("docs-index", phone=True)
        page.goto(f"{url}/docs/models/google/gemini-2.5-pro")
        assert "google/gemini-2.5-pro" in page.inner_text(".hint")
        schema = page.inner_text("#request-schema")
        for field in ("model", "messages", "max_tokens", "temperature", "reasoning_effort"):
            assert field in schema
        assert page.is_visible("#reasoning-warning")
        sample = page.inner_text("#sample-python")
        assert f"{url}/v1/chat/completions" in sample and '"model":"google/gemini-2.5-pro"' in sample
        page.click("[role=tab][data-tab=javascript]")
        assert "fetch(" in page.inner_text("#sample-javascript")
        page.click("[role=tab][data-tab=python]")
        shot("docs-model", phone=True)
        browser.close()

    script = tmp_path / "sample.py"
    script.write_text(
        sample.replace("google/gemini-2.5-pro", "mock/thinker").replace("<YOUR_MODELGATE_KEY>", key)
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["model"] == "mock/thinker" and data["choices"][0]["message"]["content"]
