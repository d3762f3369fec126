"""Request detail: one request-log row of the signed-in account, as a page (a log row's link) and
as JSON (the playground reads what a stopped reply cost). Other accounts' requests are not found.

Prompt and completion bodies are shown when the operator's body logging stored them
(``gateway/bodies.py``); otherwise the page says whether it is off and how it is turned on.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.httpkit.deps import app_state, pending_writes_flushed
from modelgate.money import usd_text
from modelgate.store.request_bodies import find_bodies
from modelgate.store.usage import find_requests
from modelgate.web.render import STOPPED, render
from modelgate.web.sessions import CurrentUser

router = APIRouter(include_in_schema=False, dependencies=[Depends(pending_writes_flushed)])

MAX_REQUEST_ID = 128


def valid_request_id(value: str) -> bool:
    return 0 < len(value) <= MAX_REQUEST_ID and all(32 <= ord(c) != 127 for c in value)


def detail(row: dict[str, Any]) -> dict[str, Any]:
    """The figures a request-detail view shows, derived from its log row."""
    latency_ms = int(row.get("latency_ms") or 0)
    ttft_ms = row.get("ttft_ms")
    out_tokens = int(row.get("completion_tokens") or 0)
    generating_ms = latency_ms - int(ttft_ms) if ttft_ms is not None else latency_ms
    tps = round(out_tokens / (generating_ms / 1000), 1) if out_tokens and generating_ms > 0 else None
    stopped = row.get("http_status") == STOPPED
    return {
        **row,
        "state": "stopped" if stopped else ("success" if row.get("status") == "success" else "error"),
        "usd": usd_text(int(row.get("credits") or 0) / CREDITS_PER_USD),
        "tokens_per_second": tps,
        "cache_write_tokens": int(row.get("cache_write_5m_tokens") or 0)
        + int(row.get("cache_write_1h_tokens") or 0),
    }


def body_of(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    """A request's stored bodies as the page and the JSON show them (None: none stored)."""
    if stored is None:
        return None
    return {
        "request": stored.get("request"),
        "response": stored.get("response"),
        "request_truncated": bool(stored.get("request_truncated")),
        "response_truncated": bool(stored.get("response_truncated")),
    }


async def found_with_bodies(request: Request, wanted: str, *, account_id: int | None) -> list[dict[str, Any]]:
    """The log rows of ``wanted`` (``account_id``'s only, unless None: operators), each with its
    stored bodies under ``body`` (the same account condition applies to the bodies)."""
    async with app_state(request).db.engine.connect() as conn:
        rows = await find_requests(conn, wanted, account_id=account_id)
        bodies = await find_bodies(conn, [r["inference_id"] for r in rows], account_id=account_id)
    return [{**detail(r), "body": body_of(bodies.get(r["inference_id"]))} for r in rows]


def body_logging(request: Request) -> dict[str, Any]:
    """Whether body logging is on in this process, and for how many days bodies are kept."""
    bodies = getattr(app_state(request).core, "bodies", None)
    return {
        "on": bool(getattr(bodies, "enabled", False)),
        "days": float(getattr(bodies, "retention_days", 0.0)),
    }


def as_json(d: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "inference_id", "client_request_id", "model", "provider", "door", "origin", "stream", "state",
        "http_status", "finish_reason", "error_message", "prompt_tokens", "completion_tokens",
        "reasoning_tokens", "cached_tokens", "cache_write_tokens", "audio_tokens", "credits", "usd",
        "latency_ms", "ttft_ms", "tokens_per_second", "attempts",
    )  # fmt: skip
    out = {k: d.get(k) for k in keys}
    out["created_at"] = d["created_at"].isoformat() if d.get("created_at") else None
    out["body"] = d.get("body")
    return out


@router.get("/app/requests/{request_id:path}")
async def request_detail(request: Request, user: CurrentUser, request_id: str) -> Response:
    wanted = request_id.strip()
    wants_json = "application/json" in request.headers.get("accept", "")
    found: list[dict[str, Any]] = []
    if valid_request_id(wanted):
        found = await found_with_bodies(request, wanted, account_id=user.account_id)
    if wants_json:
        if not found:
            error = {"message": "No request with this id in your account.", "type": "not_found_error"}
            return JSONResponse({"error": error}, status_code=404, headers={"Cache-Control": "no-store"})
        return JSONResponse({"data": [as_json(d) for d in found]}, headers={"Cache-Control": "no-store"})
    return render(
        request,
        "request.html",
        {
            "wanted": wanted[:MAX_REQUEST_ID],
            "rows": found,
            "page": "billing",
            "body_logging": body_logging(request),
        },
        status_code=200 if found else 404,
    )
