"""OpenAI's Admin API: usage in time buckets (``/v1/organization/usage/{kind}``; costs are
api/admin_costs.py's; docs/admin-api.md).

Usage is read from the request log (successful requests; grouped in SQL, store/usage.py), costs from
the ledger's model-usage charges: both exact, the organisation's own rows only. Buckets start at
``start_time`` and follow each other every ``bucket_width``; a page holds ``limit`` of them and
``next_page`` names the next one. Kinds modelgate has no such thing for (moderations, vector
stores, code interpreter sessions) answer the same buckets, empty.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from modelgate.api import admin_common as common
from modelgate.api.service_query import int_param, json_response, single
from modelgate.errors import InvalidRequestError
from modelgate.httpkit.contract import operation, query
from modelgate.httpkit.deps import CurrentKey, StateDep, text_parameters
from modelgate.store import usage as usage_store
from modelgate.store.keys import KeyIdentity

router = APIRouter(tags=["admin"], dependencies=[Depends(text_parameters)])
WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}  # (default, max) buckets per page
LATEST = 2**33  # start/end times beyond the year 2242 name no bucket modelgate could fill
_ID = re.compile(r"^(proj|user|key)_([0-9]{1,10})$")
COST_GROUPS = usage_store.COST_GROUPS


@dataclass(frozen=True, slots=True)
class Kind:
    """One usage kind: the doors whose rows it counts (None: modelgate has no such usage), the
    per-use name it counts, the ``group_by`` values it takes and how a group's rows add up."""

    obj: str
    doors: tuple[str, ...] | None
    groups: tuple[str, ...]
    figures: Callable[[list[dict[str, Any]]], dict[str, Any]]
    use: str | None = None
    filters: tuple[str, ...] = ("project_ids", "user_ids", "api_key_ids", "models")


def _total(rows: list[dict[str, Any]], name: str) -> int:
    return sum(int(r[name] or 0) for r in rows)


def _uses(rows: list[dict[str, Any]], match: Callable[[str], bool]) -> int:
    """The per-use counts of rows (grouped by their ``uses`` JSON) whose name matches, times the
    requests with that ``uses``."""
    total = 0
    for r in rows:
        counts = orjson.loads(r["uses"]) if r.get("uses") else {}
        total += sum(int(v) for k, v in counts.items() if match(k)) * int(r["requests"])
    return total


def _completions(rows: list[dict[str, Any]]) -> dict[str, Any]:
    inputs, cached = _total(rows, "input"), _total(rows, "cached")
    return {
        "input_tokens": inputs,
        "output_tokens": _total(rows, "output"),
        "input_cached_tokens": cached,
        "input_uncached_tokens": max(inputs - cached, 0),
        "input_cache_write_tokens": _total(rows, "cache_write"),
        "input_audio_tokens": _total(rows, "audio"),
        "num_model_requests": _total(rows, "requests"),
    }


def _requests(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"num_model_requests": _total(rows, "requests")}


USER_GROUPS = ("project_id", "user_id", "api_key_id", "model")
KINDS: dict[str, Kind] = {
    "completions": Kind(
        "organization.usage.completions.result",
        ("chat", "messages", "responses"),
        (*USER_GROUPS, "batch", "service_tier"),
        _completions,
    ),
    "embeddings": Kind(
        "organization.usage.embeddings.result",
        ("embeddings",),
        USER_GROUPS,
        lambda rows: {"input_tokens": _total(rows, "input"), **_requests(rows)},
    ),
    "moderations": Kind(
        "organization.usage.moderations.result",
        None,
        USER_GROUPS,
        lambda rows: {"input_tokens": 0, "num_model_requests": 0},
    ),
    "images": Kind(
        "organization.usage.images.result",
        ("images", "image_edits"),
        (*USER_GROUPS, "size", "source"),
        lambda rows: {"images": _uses(rows, lambda k: k.startswith("image:")), **_requests(rows)},
        filters=("project_ids", "user_ids", "api_key_ids", "models", "sources", "sizes"),
    ),
    "audio_speeches": Kind(
        "organization.usage.audio_speeches.result",
        ("speech",),
        USER_GROUPS,
        lambda rows: {"characters": _uses(rows, lambda k: k == "character"), **_requests(rows)},
    ),
    "audio_transcriptions": Kind(
        "organization.usage.audio_transcriptions.result",
        ("transcriptions", "translations"),
        USER_GROUPS,
        lambda rows: {"seconds": _uses(rows, lambda k: k == "second"), **_requests(rows)},
    ),
    "vector_stores": Kind(
        "organization.usage.vector_stores.result",
        None,
        ("project_id",),
        lambda rows: {"usage_bytes": 0},
        filters=("project_ids",),
    ),
    "code_interpreter_sessions": Kind(
        "organization.usage.code_interpreter_sessions.result",
        None,
        ("project_id",),
        lambda rows: {"num_sessions": 0},
        filters=("project_ids",),
    ),
    "file_search_calls": Kind(
        "organization.usage.file_searches.result",
        (),
        ("project_id", "user_id", "api_key_id", "vector_store_id"),
        lambda rows: {"num_requests": _uses(rows, lambda k: k == "file_search")},
        use="file_search",
        filters=("project_ids", "user_ids", "api_key_ids", "vector_store_ids"),
    ),
    "web_search_calls": Kind(
        "organization.usage.web_searches.result",
        (),
        (*USER_GROUPS, "context_level"),
        lambda rows: {"num_requests": _uses(rows, lambda k: k == "web_search"), **_requests(rows)},
        use="web_search",
        filters=("project_ids", "user_ids", "api_key_ids", "models", "context_levels"),
    ),
}
IMAGE_SOURCES = {"images": "image.generation", "image_edits": "image.edit"}


def many(request: Request, name: str) -> list[str]:
    """A repeated query parameter, as OpenAI's document (``name=a&name=b``) or its SDK
    (``name[]=a&name[]=b``) sends it."""
    values = request.query_params.getlist(name) + request.query_params.getlist(name + "[]")
    if len(values) > 200 or any(len(v) > 200 for v in values):
        raise InvalidRequestError(f"at most 200 {name} of at most 200 characters", param=name)
    return values


def ids(request: Request, name: str, kind: str) -> tuple[int, ...]:
    """``proj_3``-like ids of a filter (a malformed one is a 400; an unknown one matches nothing)."""
    out = []
    for raw in many(request, name):
        m = _ID.match(raw)
        if m is None or m.group(1) != kind:
            raise InvalidRequestError(f"{name} takes ids like {kind}_12", param=name)
        out.append(min(int(m.group(2)), common.MAX_ROW_ID))
    return tuple(out)


def group_by(request: Request, allowed: tuple[str, ...]) -> list[str]:
    groups = list(dict.fromkeys(many(request, "group_by")))
    bad = [g for g in groups if g not in allowed]
    if bad:
        raise InvalidRequestError(f"group_by takes {', '.join(allowed)}", param="group_by")
    return groups


@dataclass(frozen=True, slots=True)
class Window:
    """The buckets of one page: ``count`` buckets of ``width`` seconds from ``first``, the rows
    before ``end``; ``next_page`` when buckets remain."""

    first: int
    width: int
    count: int
    end: int
    next_page: str | None

    @property
    def since(self) -> datetime:
        return datetime.fromtimestamp(self.first, UTC)

    @property
    def until(self) -> datetime:
        return datetime.fromtimestamp(min(self.end, self.first + self.count * self.width), UTC)

    def buckets(self, results: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        out = []
        for i in range(self.count):
            start = self.first + i * self.width
            out.append(
                {
                    "object": "bucket",
                    "start_time": start,
                    "end_time": start + self.width,
                    "results": results.get(i, []),
                }
            )
        return out


def window(request: Request, *, widths: tuple[str, ...], limits: tuple[int, int] | None = None) -> Window:
    start = int_param(request, "start_time", default=-1, low=0, high=LATEST)
    if single(request, "start_time") is None:
        raise InvalidRequestError("start_time is required (Unix seconds)", param="start_time")
    end = int_param(request, "end_time", default=min(int(time.time()), LATEST), low=0, high=LATEST)
    width_name = single(request, "bucket_width") or "1d"
    if width_name not in widths:
        raise InvalidRequestError(f"bucket_width must be one of {', '.join(widths)}", param="bucket_width")
    width = WIDTHS[width_name]
    default, most = limits or LIMITS[width_name]
    limit = int_param(request, "limit", default=default, low=1, high=most)
    first = start
    page = single(request, "page")
    if page is not None:
        if not page.isdigit() or len(page) > 12 or (int(page) - start) % width or int(page) < start:
            raise InvalidRequestError("page must be a next_page of this query", param="page")
        first = int(page)
    remaining = max(0, -(-(end - first) // width))
    count = min(limit, remaining)
    following = first + count * width
    return Window(first, width, count, end, str(following) if remaining > count else None)


def scope(ident: KeyIdentity, project_ids: tuple[int, ...]) -> tuple[int, ...]:
    """The projects a confined caller (a project member's key) may read: its own only."""
    if ident.scope_project is None:
        return project_ids
    if project_ids and ident.scope_project not in project_ids:
        return (0,)  # no project has id 0: nothing matches
    return (ident.scope_project,)


def _group_fields(kind: Kind, groups: list[str], row: dict[str, Any] | None) -> dict[str, Any]:
    """A result's group fields: the grouped ones' values (OpenAI's ids), the others null."""
    shown = [g for g in kind.groups if g in USER_GROUPS or g in groups]
    out: dict[str, Any] = {}
    for g in shown:
        value = row.get(g) if row is not None and g in groups else None
        if value is None and g in groups:
            value = {"batch": False, "service_tier": "default"}.get(g)
        elif g == "project_id" and value is not None:
            value = f"proj_{value}"
        elif g == "user_id" and value is not None:
            value = f"user_{value}"
        elif g == "api_key_id" and value is not None:
            value = common.key_ref(value)
        out[g] = value
    return out


def _image_labels(row: dict[str, Any]) -> list[dict[str, Any]]:
    """An images row split by the sizes its ``uses`` name (``image:1024x1024/high``), with its source."""
    counts = orjson.loads(row["uses"]) if row.get("uses") else {}
    source = IMAGE_SOURCES.get(str(row.get("door")), "image.generation")
    sizes = sorted({k.removeprefix("image:").split("/", 1)[0] for k in counts if k.startswith("image:")})
    split = []
    for i, size in enumerate(sizes or [None]):
        kept = {k: v for k, v in counts.items() if size is None or k.startswith(f"image:{size}/")}
        # the requests are counted once, on the first size
        split.append(
            {
                **row,
                "uses": orjson.dumps(kept),
                "size": size,
                "source": source,
                "requests": row["requests"] if i == 0 else 0,
            }
        )
    return split


async def _usage(request: Request, ident: KeyIdentity, state: Any, name: str) -> Response:
    common.admin_caller(ident)
    kind = KINDS[name]
    win = window(request, widths=("1m", "1h", "1d"))
    groups = group_by(request, kind.groups)
    projects = scope(ident, ids(request, "project_ids", "proj"))
    members = ids(request, "user_ids", "user") if "user_ids" in kind.filters else ()
    keys = ids(request, "api_key_ids", "key") if "api_key_ids" in kind.filters else ()
    models = tuple(many(request, "models")) if "models" in kind.filters else ()
    sources, sizes = many(request, "sources"), many(request, "sizes")
    for other in ("vector_store_ids", "context_levels"):
        many(request, other)  # bounded, then ignored: modelgate has neither (docs/admin-api.md)
    batch = single(request, "batch")
    if batch not in (None, "true", "false"):
        raise InvalidRequestError("batch must be true or false", param="batch")
    results: dict[int, list[dict[str, Any]]] = {}
    if kind.doors is not None and win.count and batch != "true":
        f = usage_store.LogFilter(
            account_id=ident.account_id,
            since=win.since,
            until=win.until,
            project_ids=projects,
            member_ids=members,
            key_ids=keys,
            models=models,
            doors=kind.doors,
            use=kind.use,
        )
        sql_groups = [g for g in groups if g in usage_store.USAGE_GROUPS]
        if name == "images":
            sql_groups += ["door", "uses"]
        elif kind.use is not None or name.startswith("audio_"):
            sql_groups += ["uses"]
        async with state.db.engine.connect() as conn:
            rows = await usage_store.usage_buckets(
                conn, f, start=win.first, width=win.width, group_by=sql_groups
            )
        if name == "images":
            rows = [r for row in rows for r in _image_labels(row)]
            rows = [
                r
                for r in rows
                if (not sources or r["source"] in sources) and (not sizes or r["size"] in sizes)
            ]
        merged: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for r in rows:
            merged.setdefault((r["bucket"], *(r.get(g) for g in groups)), []).append(r)
        for (bucket, *_), part in sorted(merged.items(), key=lambda kv: repr(kv[0])):
            figures = kind.figures(part)
            results.setdefault(int(bucket), []).append(
                {"object": kind.obj, **figures, **_group_fields(kind, groups, part[0])}
            )
    return page(win, results)


def page(win: Window, results: dict[int, list[dict[str, Any]]]) -> Response:
    data = win.buckets(results)
    return json_response(
        {"object": "page", "data": data, "has_more": win.next_page is not None, "next_page": win.next_page}
    )


def params(kind: Kind | None) -> list[dict[str, Any]]:
    widths = ["1d"] if kind is None else ["1m", "1h", "1d"]
    groups = list(COST_GROUPS) if kind is None else list(kind.groups)
    filters = ("project_ids", "api_key_ids") if kind is None else kind.filters
    params = [
        query("start_time", {"type": "integer", "minimum": 0, "maximum": LATEST}, required=True),
        query("end_time", {"type": "integer", "minimum": 0, "maximum": LATEST}),
        query("bucket_width", {"type": "string", "enum": widths, "default": "1d"}),
        query("group_by", {"type": "string", "enum": groups}, many=True),
        query("limit", {"type": "integer", "minimum": 1}),
        query("page", {"type": "string", "maxLength": 12}, description="next_page of the previous page"),
    ]
    params += [query(f, {"type": "string", "maxLength": 200}, many=True) for f in filters]
    if kind is not None and "batch" in kind.groups:
        params.append(query("batch", {"type": "boolean"}))
    return params


def _route(name: str) -> None:
    async def handler(request: Request, ident: CurrentKey, state: StateDep) -> Response:
        return await _usage(request, ident, state, name)

    handler.__name__ = f"usage_{name}"
    router.add_api_route(
        f"/v1/organization/usage/{name}",
        handler,
        methods=["GET"],
        openapi_extra=operation(params=params(KINDS[name])),
    )


for _name in KINDS:
    _route(_name)
