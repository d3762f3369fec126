"""Catalogue editing on the operator console (``/admin/catalog``): add or replace a provider (its API
key stored sealed) or a model (one route, token prices), remove them; live on every instance within
``MODELGATE_CATALOG_POLL_INTERVAL`` (``gateway/catalog_overlay.py``). A name the catalogue files define is
refused with the reason, and the edit is shown as a YAML patch for the file."""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from modelgate.gateway.catalog_overlay import (
    CatalogOverlay,
    EntryError,
    as_yaml_patch,
    parse_model,
    parse_provider,
    refusal,
)
from modelgate.httpkit.deps import app_state
from modelgate.store.audit import audit
from modelgate.store.catalog_edits import delete_entry, list_entries, save_entry
from modelgate.web.admin import NotOperator, Operator, OperatorCsrf, actor
from modelgate.web.render import render

router = APIRouter(include_in_schema=False)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,199}$")
PRICE_LIMIT = Decimal(1_000_000)


def _overlay(request: Request) -> CatalogOverlay:
    found: CatalogOverlay = app_state(request).extras["catalog_overlay"]
    return found


def _text(form: Any, name: str, limit: int = 500) -> str:
    return str(form.get(name) or "").strip().replace("\x00", "")[:limit]


def _price(raw: str, label: str) -> float:
    try:
        value = Decimal(raw or "0")
    except InvalidOperation as exc:
        raise EntryError(f"{label}: a number of USD per million tokens, like 0.15") from exc
    if not value.is_finite() or value < 0 or value > PRICE_LIMIT:
        raise EntryError(f"{label}: a number of USD per million tokens, like 0.15")
    return float(value)


async def _page(request: Request, *, errors: dict[str, str] | None = None, **extra: Any) -> Response:
    overlay = _overlay(request)
    async with app_state(request).db.engine.begin() as conn:
        entries = await list_entries(conn)
    ctx = {
        "entries": [
            {
                "kind": e.kind,
                "name": e.name,
                "body": json.loads(e.body),
                "has_key": bool(e.secret),
                "updated_by": e.updated_by,
                "updated_at": e.updated_at,
            }
            for e in entries
        ],
        "types": overlay.registry.types(),
        "providers": sorted(overlay.catalog.providers),
        "problems": overlay.problems,
        "version": overlay.version,
        "source": str(app_state(request).settings.config or "the built-in catalogue"),
        "errors": errors or {},
        "values": {},
        "patch": None,
        "saved": request.query_params.get("saved", ""),
        "page": "admin",
        "section": "catalog",
    }
    ctx.update(extra)
    return render(request, "admin/catalog.html", ctx, status_code=400 if errors else 200)


@router.get("/admin/catalog")
async def catalog_page(request: Request, user: Operator) -> Response:
    return await _page(request)


async def _save(
    request: Request,
    user: Any,
    *,
    kind: str,
    name: str,
    body: dict[str, Any],
    secret: str | None,
    values: dict[str, str],
) -> Response:
    overlay = _overlay(request)
    state = app_state(request)
    reason = refusal(overlay.catalog, kind, name, str(state.settings.config or "the built-in catalogue"))
    if reason:
        return await _page(
            request, errors={kind: reason}, values=values, patch=as_yaml_patch(kind, name, body)
        )
    try:
        if kind == "provider":
            parse_provider(name, body, overlay.registry, secret=secret)
        else:
            parse_model(body, overlay.catalog)
    except EntryError as exc:
        return await _page(request, errors={kind: str(exc)}, values=values)
    async with state.db.engine.begin() as conn:
        await save_entry(conn, kind=kind, name=name, body=json.dumps(body), secret=secret, actor=user.email)
        detail = f"{kind} {name}" + (" (API key stored sealed)" if secret else "")
        await audit(conn, actor=actor(user), action=f"catalog.{kind}", detail=detail)
    await overlay.refresh(state.db.engine)  # this instance at once; the others at their next poll
    return RedirectResponse(f"/admin/catalog?saved={kind}", status_code=303)


@router.post("/admin/catalog/providers")
async def add_provider(request: Request, user: OperatorCsrf) -> Response:
    form = await request.form()
    name, kind = _text(form, "name", 200), _text(form, "type", 64)
    base_url, secret = _text(form, "base_url", 2000), _text(form, "api_key", 4000) or None
    values = {"p_name": name, "p_type": kind, "p_base_url": base_url}
    if not NAME.match(name):
        return await _page(
            request, errors={"provider": "name: letters, digits and . _ / : - only"}, values=values
        )
    body: dict[str, Any] = {"type": kind}
    if base_url:
        if not base_url.startswith(("http://", "https://")):
            return await _page(request, errors={"provider": "base URL: http:// or https://"}, values=values)
        body["base_url"] = base_url
    return await _save(request, user, kind="provider", name=name, body=body, secret=secret, values=values)


@router.post("/admin/catalog/models")
async def add_model(request: Request, user: OperatorCsrf) -> Response:
    form = await request.form()
    model_id, provider, upstream = (
        _text(form, "id", 200),
        _text(form, "provider", 200),
        _text(form, "upstream", 200),
    )
    label = _text(form, "label", 200)
    values = {
        "m_id": model_id,
        "m_provider": provider,
        "m_upstream": upstream,
        "m_label": label,
        "m_input": _text(form, "input", 32),
        "m_output": _text(form, "output", 32),
    }
    if not NAME.match(model_id) or not upstream:
        return await _page(
            request,
            errors={"model": "id and upstream model: required (letters, digits, . _ / : -)"},
            values=values,
        )
    try:
        pricing = {
            "input_usd_per_mtok": _price(values["m_input"], "input price"),
            "output_usd_per_mtok": _price(values["m_output"], "output price"),
        }
    except EntryError as exc:
        return await _page(request, errors={"model": str(exc)}, values=values)
    routes = [{"provider": provider, "model": upstream}]
    values["m_fallbacks"] = _text(form, "fallbacks", 4000)
    for line in values["m_fallbacks"].splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or len(routes) >= 8:
            problem = "fallback routes: one per line, a provider and its model (at most 7)"
            return await _page(request, errors={"model": problem}, values=values)
        routes.append({"provider": parts[0], "model": parts[1]})
    body = {
        "id": model_id,
        "info": {"name": label or model_id, "developer": provider},
        "pricing": pricing,
        "routes": routes,
    }
    return await _save(request, user, kind="model", name=model_id, body=body, secret=None, values=values)


@router.post("/admin/catalog/delete")
async def remove(request: Request, user: OperatorCsrf) -> Response:
    form = await request.form()
    kind, name = _text(form, "kind", 16), _text(form, "name", 200)
    if kind not in ("provider", "model"):
        raise NotOperator
    state = app_state(request)
    async with state.db.engine.begin() as conn:
        removed = await delete_entry(conn, kind=kind, name=name)
        if removed:
            await audit(conn, actor=actor(user), action=f"catalog.{kind}.remove", detail=f"{kind} {name}")
    await _overlay(request).refresh(state.db.engine)
    return RedirectResponse("/admin/catalog?saved=removed", status_code=303)
