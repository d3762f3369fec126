"""The playground page and its session-authenticated chat endpoint.

Decision: playground calls are made with a per-account *internal playground key* — a normal
``api_keys`` row (scope ``model:chat``, no spending limit) recorded in ``web_playground_keys``,
hidden from the Keys page, whose raw value is discarded at creation. ``POST /app/playground/chat``
checks the session and the ``X-CSRF-Token`` header, loads that key's identity and hands it to
``doors.asgi.serve_door(..., ident=..., origin="playground")``: the same door as the public API
(billing the logged-in account, limits, logging with ``origin: playground``), with no bearer token
ever reaching the browser.

Image and speech modes: ``POST /app/playground/images`` and ``/app/playground/speech`` serve the
public ``ImagesDoor`` and ``SpeechDoor`` the same way. The internal key is created with the scopes
of every mode (``PLAYGROUND_SCOPES``); one created before the media modes (scope ``model:chat``)
is granted them for these two endpoints only, since it is the playground's own key and is never
shown or usable elsewhere.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from modelgate.accounts.service import create_key
from modelgate.catalog.kinds import KINDS
from modelgate.catalog.models import IMAGE_UNIT, ModelSpec
from modelgate.catalog.registry import Catalog
from modelgate.doors.asgi import serve_door
from modelgate.doors.audio.speech import SpeechDoor
from modelgate.doors.base import Door, DoorRequest
from modelgate.doors.chat.door import ChatDoor
from modelgate.doors.images.door import ImagesDoor
from modelgate.gateway.admission import DEFAULT_MAX_TOKENS
from modelgate.httpkit.deps import app_state
from modelgate.store import keys as key_rows
from modelgate.store.accounts import balance as account_balance
from modelgate.store.db import Conn
from modelgate.store.keys import KeyIdentity
from modelgate.web.docs import live_figures
from modelgate.web.openapi import reasoning_efforts
from modelgate.web.render import render, unavailable_for_viewer
from modelgate.web.sessions import CsrfUser, CurrentUser

router = APIRouter(include_in_schema=False)

PLAYGROUND_KEY_NAME = "Playground (internal)"
PLAYGROUND_SCOPES = ("model:chat", "model:image", "model:speech")
OPENAI_VOICES = ["alloy", "echo", "fable", "onyx", "nova", "shimmer"]
EFFORT_ORDER = ("none", "minimal", "low", "medium", "high", "xhigh")


async def playground_identity(conn: Conn, *, account_id: int) -> KeyIdentity:
    """The account's internal playground key, created on first use."""
    ident = await key_rows.playground_identity(conn, account_id=account_id)
    if ident is None:
        new = await create_key(
            conn, account_id=account_id, name=PLAYGROUND_KEY_NAME, scopes=list(PLAYGROUND_SCOPES)
        )
        await key_rows.set_playground_key(conn, account_id=account_id, key_id=new.key_id)
        ident = await key_rows.playground_identity(conn, account_id=account_id)
        assert ident is not None
    return ident


def speed_label(figures: dict[str, dict[str, float]] | None) -> str:
    """The picker's live figures (p50 of ``GET /models/metrics``), empty when there are none."""
    if not figures:
        return ""
    parts = []
    if "ttft_ms" in figures:
        parts.append(f"TTFT {figures['ttft_ms']['p50']:,.0f} ms")
    if "tps" in figures:
        parts.append(f"{figures['tps']['p50']:,.0f} tok/s")
    if not parts:
        parts.append(f"{figures['duration_ms']['p50']:,.0f} ms")
    return "p50 " + " · ".join(parts)


async def _model_options(request: Request) -> list[dict[str, Any]]:
    catalog = app_state(request).catalog
    chat_models = [m for m in catalog.models if m.type == "chat"]
    live = await live_figures(request, {m.id for m in chat_models})
    out = []
    for m in chat_models:
        out.append(
            {
                "id": m.id,
                "name": m.info.get("name", m.id),
                "unavailable": unavailable_for_viewer(request, catalog.unavailable_reason(m)),
                "reasoning": "reasoning" in m.capabilities,
                "efforts": reasoning_efforts(m) if "reasoning" in m.capabilities else [],
                "json": "structured_output" in m.capabilities,
                "output_max": m.output_max,
                "speed": speed_label(live.get(m.id)),
            }
        )
    return out


def media_option(catalog: Catalog, m: ModelSpec) -> dict[str, Any]:
    """An image or speech model as the playground's media mode offers it."""
    option: dict[str, Any] = {
        "id": m.id,
        "name": m.info.get("name", m.id),
        "mode": KINDS[m.type].playground,
        "unavailable": catalog.unavailable_reason(m),
    }
    if m.images is not None:
        units = sorted(m.image_units())
        option["sizes"] = list(dict.fromkeys(u.removeprefix(IMAGE_UNIT).split("/")[0] for u in units))
        option["size"] = m.images.default_size
    if m.speech is not None:
        option["voices"] = m.speech.voices or OPENAI_VOICES
        option["formats"] = list(m.speech.formats)
    return option


@router.get("/app/playground")
async def playground_page(request: Request, user: CurrentUser, model: str = "") -> Response:
    options = await _model_options(request)
    async with app_state(request).db.engine.connect() as conn:
        balance = await account_balance(conn, account_id=user.account_id) or 0
    found = app_state(request).catalog.find(model[:200]) if model else None
    available = [o["id"] for o in options if not o["unavailable"]]
    selected = found.id if found else next(iter(available), "")
    second = next((m for m in available if m != selected), selected)
    efforts = [e for e in EFFORT_ORDER if any(e in o["efforts"] for o in options)]
    catalog = app_state(request).catalog
    media = [
        media_option(catalog, m) for m in catalog.models if KINDS[m.type].playground in ("image", "speech")
    ]
    return render(
        request,
        "playground.html",
        {
            "models": options,
            "media": media,
            "media_modes": sorted({o["mode"] for o in media}),
            "selected": selected,
            "second": second,
            "requested": found.id if found else None,
            "efforts": efforts,
            "default_max_tokens": DEFAULT_MAX_TOKENS,
            "api_base": str(request.base_url).rstrip("/"),
            "balance": balance,
            "page": "playground",
        },
    )


async def _serve(request: Request, user: CsrfUser, door: Door, *, media: bool = False) -> Response:
    async with app_state(request).db.engine.begin() as conn:
        ident = await playground_identity(conn, account_id=user.account_id)
    if media:
        ident = dataclasses.replace(ident, scopes=PLAYGROUND_SCOPES)
    app_state(request).keys.touch(ident.key_id)  # "Last used" of the internal key, like any key's
    req = DoorRequest(path=request.url.path, headers=dict(request.headers), body=await request.body())
    resp = await serve_door(app_state(request), door, req, ident=ident, origin="playground")
    if resp.frames is not None:
        return StreamingResponse(resp.frames, status_code=resp.status, headers=resp.headers)
    return Response(resp.body, status_code=resp.status, headers=resp.headers)


@router.post("/app/playground/chat")
async def playground_chat(request: Request, user: CsrfUser) -> Response:
    return await _serve(request, user, ChatDoor())


@router.post("/app/playground/images")
async def playground_images(request: Request, user: CsrfUser) -> Response:
    return await _serve(request, user, ImagesDoor(), media=True)


@router.post("/app/playground/speech")
async def playground_speech(request: Request, user: CsrfUser) -> Response:
    return await _serve(request, user, SpeechDoor(), media=True)
