"""Operator console, part two: models and providers (configured or not, circuit breakers, recent
success rate and latency), request lookup by id across accounts, and the run-time settings.

Breaker states are this process's (each worker keeps its own breakers, one per route); the success rates and
latencies come from the request logs of the last 24 hours, so they cover every worker.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from modelgate.httpkit.deps import app_state, pending_writes_flushed
from modelgate.money import usd_text
from modelgate.store.audit import audit
from modelgate.store.site_settings import (
    BODY_LOGGING,
    BODY_RETENTION,
    CREDITS_HELP,
    MAX_BODY_RETENTION_DAYS,
    MAX_HELP_LENGTH,
    MAX_SIGNUP_CREDITS_USD,
    SIGNUP_CREDITS,
    load_site_settings,
    save_site_setting,
)
from modelgate.store.totp import two_factor_required
from modelgate.store.usage_console import recent_stats
from modelgate.web.admin import Operator, OperatorCsrf, actor
from modelgate.web.render import render
from modelgate.web.requests import body_logging, found_with_bodies

router = APIRouter(include_in_schema=False, dependencies=[Depends(pending_writes_flushed)])

WINDOW = timedelta(hours=24)
MAX_REQUEST_ID = 128


def _breaker_state(request: Request, provider: str) -> str:
    router_ = getattr(app_state(request).core, "router", None)
    state = getattr(router_, "breaker_state", None)
    return str(state(provider)) if callable(state) else "unknown"


def _open_routes(request: Request, provider: str) -> dict[str, str]:
    router_ = getattr(app_state(request).core, "router", None)
    routes = getattr(router_, "open_routes", None)
    return dict(routes(provider)) if callable(routes) else {}


async def _recent_stats(request: Request, by: str) -> dict[str, dict[str, Any]]:
    async with app_state(request).db.engine.connect() as conn:
        rows = await recent_stats(conn, by=by, since=datetime.now(UTC) - WINDOW)
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        requests = int(r.requests)
        out[str(r.name)] = {
            "requests": requests,
            "success_pct": round(100 * int(r.ok or 0) / requests, 1) if requests else None,
            "latency_ms": round(float(r.latency)) if r.latency is not None else None,
            # the overdraft rule (docs/pricing.md): credits charged beyond holds, and how many requests
            "overage_credits": int(r.overage or 0),
            "overage_requests": int(r.over or 0),
        }
    return out


@router.get("/admin/models")
async def models_page(request: Request, user: Operator) -> Response:
    state = app_state(request)
    catalog = state.catalog
    by_provider = await _recent_stats(request, "provider")
    by_model = await _recent_stats(request, "model")
    providers = [
        {
            "name": name,
            "type": conf.type,
            "configured": conf.configured,
            "missing_env": conf.missing_env,
            "breaker": _breaker_state(request, name) if conf.configured else "—",
            "open_routes": _open_routes(request, name) if conf.configured else {},
            "stats": by_provider.get(name),
            "models": [m.id for m in catalog.models if any(r.provider == name for r in m.routes)],
        }
        for name, conf in sorted(catalog.providers.items())
    ]
    models = [
        {
            "id": m.id,
            "name": m.info.get("name", m.id),
            "routes": [r.provider for r in m.routes],
            "unavailable": catalog.unavailable_reason(m),
            "stats": by_model.get(m.id),
        }
        for m in catalog.models
    ]
    return render(
        request,
        "admin/models.html",
        {"providers": providers, "models": models, "page": "admin", "section": "models"},
    )


@router.get("/admin/requests")
async def request_lookup(request: Request, user: Operator) -> Response:
    wanted = request.query_params.get("id", "").strip()
    rows: list[dict[str, Any]] = []
    error = ""
    if wanted:
        if len(wanted) > MAX_REQUEST_ID or any(ord(c) < 32 for c in wanted):
            error = f"A request id is at most {MAX_REQUEST_ID} printable characters."
        else:
            rows = await found_with_bodies(request, wanted, account_id=None)
    return render(
        request,
        "admin/requests.html",
        {
            "wanted": wanted,
            "rows": rows,
            "error": error,
            "page": "admin",
            "section": "requests",
            "body_logging": body_logging(request),
        },
    )


async def _settings_page(
    request: Request, *, errors: dict[str, str] | None = None, values: dict[str, str] | None = None
) -> Response:
    state = app_state(request)
    async with state.db.engine.connect() as conn:
        site = await load_site_settings(conn, state.settings)
        require_two_factor = await two_factor_required(conn)
    return render(
        request,
        "admin/settings.html",
        {
            "site": site,
            "require_two_factor": require_two_factor,
            "mail_configured": bool(state.settings.smtp_host),
            "env_credits": state.settings.signup_credits_usd,
            "errors": errors or {},
            "values": values or {},
            "saved": request.query_params.get("saved") == "1",
            "max_help": MAX_HELP_LENGTH,
            "body_max_bytes": state.settings.body_max_bytes,
            "page": "admin",
            "section": "settings",
        },
        status_code=400 if errors else 200,
    )


@router.get("/admin/settings")
async def settings_page(request: Request, user: Operator) -> Response:
    return await _settings_page(request)


@router.post("/admin/settings")
async def settings_save(request: Request, user: OperatorCsrf) -> Response:
    form = await request.form()
    credits_raw = str(form.get("signup_credits_usd") or "").strip()
    help_text = str(form.get("credits_help") or "").strip().replace("\x00", "").replace("\r\n", "\n")
    reset = form.get("reset") == "1"
    errors: dict[str, str] = {}
    credits: float | None = None
    if not reset:
        try:
            credits = float(credits_raw)
            if not math.isfinite(credits) or not 0 <= credits <= MAX_SIGNUP_CREDITS_USD:
                raise ValueError
        except ValueError:
            errors["signup_credits_usd"] = (
                f"Enter an amount in USD from 0 to {MAX_SIGNUP_CREDITS_USD:,.0f} (0: no sign-up credits)."
            )
        if len(help_text) > MAX_HELP_LENGTH:
            errors["credits_help"] = f"Use at most {MAX_HELP_LENGTH:,} characters."
    if errors:
        values = {"signup_credits_usd": credits_raw, "credits_help": help_text}
        return await _settings_page(request, errors=errors, values=values)
    state = app_state(request)
    async with state.db.engine.begin() as conn:
        before = await load_site_settings(conn, state.settings)
        await save_site_setting(conn, key=SIGNUP_CREDITS, value=None if reset else f"{credits:g}")
        await save_site_setting(conn, key=CREDITS_HELP, value=None if reset or not help_text else help_text)
        after = await load_site_settings(conn, state.settings)
        changes = []
        if before.signup_credits_usd != after.signup_credits_usd:
            was, now = usd_text(before.signup_credits_usd), usd_text(after.signup_credits_usd)
            changes.append(f"sign-up credits {was} → {now}")
        if before.credits_help != after.credits_help:
            changes.append("text on how to get credits changed")
        if reset:
            changes.append("reset to the defaults")
        if changes:
            await audit(conn, actor=actor(user), action="settings.update", detail="; ".join(changes))
    return RedirectResponse("/admin/settings?saved=1", status_code=303)


@router.post("/admin/settings/bodies")
async def body_logging_save(request: Request, user: OperatorCsrf) -> Response:
    """Body logging on or off, and its retention: saved in the site settings, applied here at once
    and by every other instance at its next poll (``gateway/bodies.py``)."""
    form = await request.form()
    on = form.get("body_logging") == "1"
    days_raw = str(form.get("body_retention_days") or "").strip()
    try:
        days = float(days_raw)
        if not math.isfinite(days) or not 0 < days <= MAX_BODY_RETENTION_DAYS:
            raise ValueError
    except ValueError:
        error = f"Enter a number of days from more than 0 to {MAX_BODY_RETENTION_DAYS:,.0f}."
        values = {"body_logging": "1" if on else "", "body_retention_days": days_raw}
        return await _settings_page(request, errors={"body_retention_days": error}, values=values)
    state = app_state(request)
    async with state.db.engine.begin() as conn:
        before = await load_site_settings(conn, state.settings)
        await save_site_setting(conn, key=BODY_LOGGING, value="1" if on else "0")
        await save_site_setting(conn, key=BODY_RETENTION, value=f"{days:g}")
        after = await load_site_settings(conn, state.settings)
        changes = []
        if before.body_logging != after.body_logging:
            changes.append(f"body logging {'on' if after.body_logging else 'off'}")
        if before.body_retention_days != after.body_retention_days:
            was, now = before.body_retention_days, after.body_retention_days
            changes.append(f"body retention {was:g} → {now:g} days")
        if changes:
            await audit(conn, actor=actor(user), action="settings.update", detail="; ".join(changes))
    bodies = getattr(state.core, "bodies", None)
    if bodies is not None:
        bodies.apply(after)
    return RedirectResponse("/admin/settings?saved=1#body-logging", status_code=303)
