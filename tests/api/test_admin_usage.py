"""OpenAI's Admin API usage and costs (``/v1/organization/usage/{kind}``, ``/v1/organization/costs``,
docs/admin-api.md) over request-log and ledger rows written at known times (tests/api/admin_seed.py):
exact figures per bucket and group (1m, 1h, 1d), complete pagination with no duplicate bucket,
filters, the kinds modelgate has no such usage for, one organisation never seeing another's, every
answer parsed by the openai SDK's types and valid against OpenAI's schema; and real traffic whose
costs equal the ledger and whose usage equals the request log."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
from jsonschema import Draft202012Validator

from tests.api.admin_seed import DAY, T0, Org, Row, expected, key_ref, seed
from tests.conftest import LiveServer

SPEC = Path(__file__).resolve().parents[1] / "specs" / "openai" / "admin.json"
DOC = json.loads(SPEC.read_text(encoding="utf-8"))
PAGE = Draft202012Validator({"$ref": "#/components/schemas/UsageResponse", "components": DOC["components"]})
CHAT = ("chat", "messages", "responses")


def _get(server: LiveServer, key: str, path: str, **params: Any) -> dict[str, Any]:
    resp = requests.get(
        f"{server.url}/v1/organization/{path}",
        params=params,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert not list(PAGE.iter_errors(body)), [e.message for e in PAGE.iter_errors(body)][:3]
    return body


def _results(body: dict[str, Any], *fields: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """``{(bucket start, *group fields): result}``; buckets follow each other without gaps."""
    out = {}
    starts = [b["start_time"] for b in body["data"]]
    assert starts == sorted(set(starts))
    for b in body["data"]:
        for r in b["results"]:
            k = (b["start_time"], *(r[f] for f in fields))
            assert k not in out
            out[k] = r
    return out


def _completions(rows: list[Row]) -> dict[str, int]:
    return {
        "input_tokens": sum(r.prompt for r in rows),
        "output_tokens": sum(r.completion for r in rows),
        "input_cached_tokens": sum(r.cached for r in rows),
        "input_uncached_tokens": sum(r.prompt - r.cached for r in rows),
        "input_cache_write_tokens": sum(r.cache_write for r in rows),
        "input_audio_tokens": sum(r.audio for r in rows),
        "num_model_requests": len(rows),
    }


def _figures(result: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {n: result[n] for n in names}


@pytest.fixture
def orgs(live_server: LiveServer) -> tuple[Org, Org]:
    return seed(live_server.settings.database_url)


def test_completions_exact_per_bucket_and_group(live_server: LiveServer, orgs: tuple[Org, Org]) -> None:
    a, _ = orgs
    names = list(_completions([]))
    for width, seconds, limit in (("1d", DAY, 7), ("1h", 3600, 168)):
        body = _get(live_server, a.admin, "usage/completions", start_time=T0, bucket_width=width, limit=limit)
        got = {k: _figures(r, names) for k, r in _results(body).items()}
        want = expected(a, lambda r: r.door in CHAT, _completions, width=seconds)
        assert got == {(start,): v for (start, _), v in want.items()}
    # 1m buckets: the two requests of the first minute apart from the one a minute later.
    body = _get(
        live_server,
        a.admin,
        "usage/completions",
        start_time=T0,
        bucket_width="1m",
        limit=3,
        end_time=T0 + 180,
    )
    assert [len(b["results"]) for b in body["data"]] == [1, 1, 0]
    assert (
        body["data"][0]["results"][0]["input_tokens"] == 100
        and body["data"][1]["results"][0]["input_tokens"] == 7
    )

    grouped = _get(
        live_server,
        a.admin,
        "usage/completions",
        start_time=T0,
        limit=7,
        **{"group_by[]": ["project_id", "user_id", "api_key_id", "model"]},
    )
    got = {
        k: _figures(r, names)
        for k, r in _results(grouped, "project_id", "user_id", "api_key_id", "model").items()
    }

    def group(r: Row) -> tuple[str, ...]:
        key_id, project, member = a.keys[r.key]
        return (f"proj_{project}", f"user_{member}", f"key_{key_id}", r.model)

    want = expected(a, lambda r: r.door in CHAT, _completions, width=DAY, group=group)
    assert got == {(start, *g): v for (start, g), v in want.items()}


def test_filters_and_the_kinds_without_usage(live_server: LiveServer, orgs: tuple[Org, Org]) -> None:
    a, _ = orgs
    p2 = f"proj_{a.projects['p2']}"
    only_p2 = _get(live_server, a.admin, "usage/completions", start_time=T0, limit=7, project_ids=[p2])
    want = expected(a, lambda r: r.door in CHAT and r.key == "k2", _completions, width=DAY)
    assert {k: _figures(r, list(_completions([]))) for k, r in _results(only_p2).items()} == {
        (s,): v for (s, _), v in want.items()
    }
    by_key = _get(
        live_server, a.admin, "usage/completions", start_time=T0, limit=7, api_key_ids=[key_ref(a, "k1")]
    )
    assert sum(r["num_model_requests"] for r in _results(by_key).values()) == 3
    by_user = _get(
        live_server,
        a.admin,
        "usage/completions",
        start_time=T0,
        limit=7,
        user_ids=[f"user_{a.members['dev']}"],
    )
    assert sum(r["num_model_requests"] for r in _results(by_user).values()) == 3
    by_model = _get(live_server, a.admin, "usage/completions", start_time=T0, limit=7, models=["mock/chain"])
    assert [r["input_tokens"] for r in _results(by_model).values()] == [50]
    batch = _get(live_server, a.admin, "usage/completions", start_time=T0, limit=7, batch="true")
    assert all(b["results"] == [] for b in batch["data"]) and len(batch["data"]) == 6
    for kind in ("moderations", "vector_stores", "code_interpreter_sessions"):
        body = _get(live_server, a.admin, f"usage/{kind}", start_time=T0, limit=7)
        assert len(body["data"]) == 6 and all(b["results"] == [] for b in body["data"])


def test_media_and_per_use_kinds(live_server: LiveServer, orgs: tuple[Org, Org]) -> None:
    a, _ = orgs
    day2, day3 = T0 + 2 * DAY, T0 + 3 * DAY
    emb = _results(_get(live_server, a.admin, "usage/embeddings", start_time=T0, limit=7))
    assert {k: (r["input_tokens"], r["num_model_requests"]) for k, r in emb.items()} == {(T0 + DAY,): (80, 2)}
    images = _results(
        _get(live_server, a.admin, "usage/images", start_time=T0, limit=7, group_by=["size", "source"]),
        "size",
        "source",
    )
    assert {k: (r["images"], r["num_model_requests"]) for k, r in images.items()} == {
        (day2, "1024x1024", "image.generation"): (2, 1),
        (day2, "512x512", "image.edit"): (1, 1),
    }
    edits = _results(
        _get(live_server, a.admin, "usage/images", start_time=T0, limit=7, sources=["image.edit"])
    )
    assert [r["images"] for r in edits.values()] == [1]
    speech = _results(_get(live_server, a.admin, "usage/audio_speeches", start_time=T0, limit=7))
    assert {k: (r["characters"], r["num_model_requests"]) for k, r in speech.items()} == {(day2,): (120, 1)}
    heard = _results(_get(live_server, a.admin, "usage/audio_transcriptions", start_time=T0, limit=7))
    assert {k: (r["seconds"], r["num_model_requests"]) for k, r in heard.items()} == {(day2,): (40, 2)}
    searches = _results(
        _get(live_server, a.admin, "usage/web_search_calls", start_time=T0, limit=7, group_by=["api_key_id"]),
        "api_key_id",
    )
    assert {k: (r["num_requests"], r["num_model_requests"]) for k, r in searches.items()} == {
        (day3, key_ref(a, "k1")): (3, 1),
        (day3, key_ref(a, "k2")): (1, 1),
    }


def test_costs_equal_the_ledger(live_server: LiveServer, orgs: tuple[Org, Org]) -> None:
    a, _ = orgs

    def usd(rows: list[Row]) -> float:
        return float(Decimal(sum(r.credits for r in rows)) / 2_000_000)

    body = _get(live_server, a.admin, "costs", start_time=T0, limit=7)
    got = {k: r["amount"] for k, r in _results(body).items()}
    want = expected(a, lambda r: r.credits > 0, usd, width=DAY)
    assert got == {(s,): {"value": v, "currency": "usd"} for (s, _), v in want.items()}
    grouped = _results(
        _get(live_server, a.admin, "costs", start_time=T0, limit=7, group_by=["project_id", "line_item"]),
        "project_id",
        "line_item",
    )
    want = expected(
        a, lambda r: r.credits > 0, usd, width=DAY, group=lambda r: (f"proj_{a.keys[r.key][1]}", r.model)
    )
    assert {k: r["amount"]["value"] for k, r in grouped.items()} == {(s, *g): v for (s, g), v in want.items()}
    keyed = _get(live_server, a.admin, "costs", start_time=T0, limit=7, api_key_ids=[key_ref(a, "k2")])
    assert sum(r["amount"]["value"] for r in _results(keyed).values()) == pytest.approx(
        sum(r.credits for r in a.rows if r.key == "k2") / 2_000_000
    )


def test_pages_cover_every_bucket_once(live_server: LiveServer, orgs: tuple[Org, Org]) -> None:
    a, _ = orgs
    end = T0 + 5 * DAY
    whole = _get(
        live_server, a.admin, "usage/completions", start_time=T0, end_time=end, bucket_width="1h", limit=168
    )
    assert whole["has_more"] is False and whole["next_page"] is None
    for path in ("usage/completions", "costs"):
        params: dict[str, Any] = {"start_time": T0, "end_time": end, "limit": 2}
        if path != "costs":
            params["bucket_width"] = "1h"
        seen: list[dict[str, Any]] = []
        while True:
            body = _get(live_server, a.admin, path, **params)
            seen += body["data"]
            assert body["has_more"] == (body["next_page"] is not None)
            if not body["has_more"]:
                break
            params["page"] = body["next_page"]
        starts = [b["start_time"] for b in seen]
        assert len(starts) == len(set(starts)) and starts == sorted(starts)
        width = 3600 if path != "costs" else DAY
        assert starts == list(range(T0, end, width))
        if path != "costs":
            assert seen == whole["data"]
    bad = requests.get(
        f"{live_server.url}/v1/organization/costs",
        params={"start_time": T0, "page": "12x"},
        headers={"Authorization": f"Bearer {a.admin}"},
        timeout=30,
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "page"


def test_an_organisation_sees_only_its_own(live_server: LiveServer, orgs: tuple[Org, Org]) -> None:
    a, b = orgs
    for path in ("usage/completions", "costs"):
        mine = _get(live_server, b.admin, path, start_time=T0, limit=7)
        results = [r for bucket in mine["data"] for r in bucket["results"]]
        assert len(results) == 1  # org B's one request, none of org A's
        theirs = _get(
            live_server, b.admin, path, start_time=T0, limit=7, project_ids=[f"proj_{a.projects['p2']}"]
        )
        assert all(bucket["results"] == [] for bucket in theirs["data"])
    keyed = _get(
        live_server, b.admin, "usage/completions", start_time=T0, limit=7, api_key_ids=[key_ref(a, "k1")]
    )
    assert all(bucket["results"] == [] for bucket in keyed["data"])
    inference = live_server.create_key(email="owner-a@example.com", usd=0)
    resp = requests.get(
        f"{live_server.url}/v1/organization/costs",
        params={"start_time": T0},
        headers={"Authorization": f"Bearer {inference}"},
        timeout=30,
    )
    assert resp.status_code == 403


def test_openai_sdk_parses_every_answer(live_server: LiveServer, orgs: tuple[Org, Org]) -> None:
    a, _ = orgs
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", admin_api_key=a.admin)
    usage = client.admin.organization.usage
    costs = usage.costs(start_time=T0, limit=7, group_by=["project_id", "line_item"])
    assert sum(r.amount.value for b in costs.data for r in b.results if r.amount and r.amount.value) > 0
    done = usage.completions(start_time=T0, limit=7, group_by=["model"])
    assert {r.model for b in done.data for r in b.results} == {"mock/echo", "mock/chain"}
    for kind in (
        "embeddings",
        "moderations",
        "images",
        "audio_speeches",
        "audio_transcriptions",
        "vector_stores",
        "code_interpreter_sessions",
        "file_search_calls",
        "web_search_calls",
    ):
        page = getattr(usage, kind)(start_time=T0, limit=7)
        assert len(page.data) == 6 and page.has_more is False, kind


def test_real_traffic_costs_equal_the_ledger(live_server: LiveServer) -> None:
    admin = live_server.create_key(email="traffic@example.com", usd=0, management=True)
    key = live_server.create_key(email="traffic@example.com", usd=5.0)
    chat = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0)
    charged = 0
    prompt = 0
    for text in ("one", "two three", "four five six"):
        raw = chat.chat.completions.with_raw_response.create(
            model="echo", messages=[{"role": "user", "content": text}]
        )
        charged += int(raw.headers["x-aimlapi-credits-used"])
        parsed = raw.parse()
        assert parsed.usage is not None
        prompt += parsed.usage.prompt_tokens
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused", admin_api_key=admin)
    start = T0 + 5 * DAY
    import time

    deadline = time.monotonic() + 60
    while True:
        done = client.admin.organization.usage.completions(start_time=start, limit=1)
        results = [r for b in done.data for r in b.results]
        if (results and results[0].num_model_requests == 3) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert results[0].num_model_requests == 3 and results[0].input_tokens == prompt
    cost = client.admin.organization.usage.costs(start_time=start, limit=1)
    amounts = [r.amount.value for b in cost.data for r in b.results if r.amount]
    assert amounts == [float(Decimal(charged) / 2_000_000)]
