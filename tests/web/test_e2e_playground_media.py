"""The playground's image and speech modes in a real browser: an image drawn by the fake upstream
shown from its bytes, speech from the embedded synthesiser (eSpeak NG) playable and downloadable,
each billed to the account as a playground request (origin: playground), and an upstream's 400 shown
in words."""

from __future__ import annotations

import base64
import shutil
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.fakes.openai_server import FakeOpenAI, fake_image
from tests.media.conftest import images_config
from tests.web.helpers import eventually, make_account
from tests.web.test_e2e_playground import _logged_in_page, _rows

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def media_web(make_live_server: Any, openai_upstream: FakeOpenAI) -> LiveServer:
    server: LiveServer = make_live_server(images_config(openai_upstream))
    return server


def test_image_and_speech_modes(media_web: LiveServer, browser: Any) -> None:
    email = "media-pg@example.com"
    make_account(media_web, email, usd=5)
    page = _logged_in_page(browser, media_web, email)
    page.goto(f"{media_web.url}/app/playground")
    assert page.is_visible("#pg-form") and not page.is_visible("#pg-media")

    page.click("[data-mode=image]")
    assert page.is_visible("#pg-media") and not page.is_visible("#pg-form")
    assert page.get_attribute("[data-mode=image]", "aria-pressed") == "true"
    page.select_option("#pgm-model", "fake/image")
    assert page.eval_on_selector_all("#pgm-size option", "os => os.map(o => o.value)") == [
        "1024x1024",
        "1792x1024",
    ]
    page.fill("#pgm-input", "a red fox")
    page.click("#pgm-go")
    img = page.wait_for_selector("#pgm-result img")
    assert img is not None
    src = img.get_attribute("src") or ""
    assert base64.b64decode(src.split(",", 1)[1]) == fake_image("a red fox", 0)
    assert page.inner_text("#pgm-cost") == "80,000 credits"
    row = eventually(lambda: next(iter(_rows(media_web, email)), None), what="the image request's log row")
    assert row["origin"] == "playground" and row["credits"] == 80_000 and row["model"] == "fake/image"

    page.select_option("#pgm-size", "1792x1024")  # priced only at hd: the door's 400, shown in words
    page.click("#pgm-go")
    error = page.wait_for_selector("#pgm-error:not([hidden])")
    assert error is not None and "1792x1024" in error.inner_text()
    # Refreshed after each request (this one came after the image's charge had settled).
    eventually(lambda: page.inner_text("#pg-balance") == "$4.96", what="the balance refreshed")

    if shutil.which("espeak-ng") is not None:
        page.click("[data-mode=speech]")
        page.select_option("#pgm-model", "local/espeak-ng")
        assert page.eval_on_selector_all("#pgm-format option", "os => os.map(o => o.value)") == ["wav"]
        page.fill("#pgm-input", "Hello from the playground")
        page.click("#pgm-go")
        page.wait_for_selector("#pgm-result audio")
        link = page.inner_text("#pgm-result a")
        assert link.startswith("Download speech.wav (") and page.inner_text("#pgm-cost").endswith("credits")
        playable = page.eval_on_selector("#pgm-result audio", "a => a.canPlayType('audio/wav')")
        assert playable in ("maybe", "probably")
        eventually(lambda: len(_rows(media_web, email)) == 3, what="the speech request's log row")

    page.click("[data-mode=chat]")
    assert page.is_visible("#pg-form") and not page.is_visible("#pg-media")
    page.context.close()
