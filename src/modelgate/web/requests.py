"""Request detail: one request-log row of the signed-in account, as a page (a log row's link) and
as JSON (the playground reads what a stopped reply cost). Other accounts' requests are not found.

Prompt and completion bodies are not part of the request logs: the page says so.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from modelgate.catalog.models import CREDITS_PER_USD
from modelgate.httpkit.deps import app_state, pending_writes_flushed
from modelgate.money import usd_text
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


def as_json(d: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "inference_id", "client_request_id", "model", "provider", "door", "origin", "stream", "state",
        "http_status", "finish_reason", "error_message", "prompt_tokens", "completion_tokens",
        "reasoning_tokens", "cached_tokens", "cache_write_tokens", "audio_tokens", "credits", "usd",
        "latency_ms", "ttft_ms", "tokens_per_second", "attempts",
    )  # fmt: skip
    out = {k: d.get(k) for k in keys}
    out["created_at"] = d["created_at"].isoformat() if d.get("created_at") else None
    return out


@router.get("/app/requests/{request_id:path}")
async def request_detail(request: Request, user: CurrentUser, request_id: str) -> Response:
    wanted = request_id.strip()
    wants_json = "application/json" in request.headers.get("accept", "")
    rows: list[dict[str, Any]] = []
    if valid_request_id(wanted):
        async with app_state(request).db.engine.connect() as conn:
            rows = await find_requests(conn, wanted, account_id=user.account_id)
    found = [detail(r) for r in rows]
    if wants_json:
        if not found:
            error = {"message": "No request with this id in your account.", "type": "not_found_error"}
            return JSONResponse({"error": error}, status_code=404, headers={"Cache-Control": "no-store"})
        return JSONResponse({"data": [as_json(d) for d in found]}, headers={"Cache-Control": "no-store"})
    return render(
        request,
        "request.html",
        {"wanted": wanted[:MAX_REQUEST_ID], "rows": found, "page": "billing"},
        status_code=200 if found else 404,
    )
