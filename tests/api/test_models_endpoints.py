import requests

from tests.spec_helpers import response_schema, validate

SPEC = response_schema("models.json", "/v1/models")


def get(live_server, path, **params):
    return requests.get(f"{live_server.url}{path}", params=params, timeout=5)


def test_list_models_without_key(live_server):
    r = get(live_server, "/v1/models")
    assert r.status_code == 200 and r.headers["etag"]
    body = r.json()
    validate(body, SPEC)
    ids = {m["id"] for m in body["data"]}
    assert {"mock/echo", "google/gemini-2.5-pro", "local/smollm2-135m-instruct"} <= ids
    item = next(m for m in body["data"] if m["id"] == "mock/echo")
    assert item["aliases"] == ["echo"] and item["type"] == "openai/chat-completions"
    assert "pricing" not in item and "capabilities" not in item
    assert get(live_server, "/models").json() == body
    again = requests.get(
        f"{live_server.url}/v1/models", headers={"If-None-Match": r.headers["etag"]}, timeout=5
    )
    assert again.status_code == 304


def test_include_sections(live_server):
    body = get(live_server, "/v1/models", include="pricing,capabilities", id="mock/echo").json()
    validate(body, SPEC)
    (item,) = body["data"]
    assert item["pricing"]["kind"] == "fixed"
    assert {"name": "token", "measure": "output", "price": 2.0, "per": 1000000} in item["pricing"]["units"]
    assert "capabilities" in item and "modalities" not in item
    full = get(live_server, "/v1/models", details="true", id="echo").json()["data"][0]
    assert {"pricing", "capabilities", "modalities"} <= set(full)
    typo = get(live_server, "/v1/models", include="pricng", id="echo").json()["data"][0]
    assert "pricing" not in typo


def test_filters_or_within_and_across(live_server):
    def ids(**params):
        return {m["id"] for m in get(live_server, "/v1/models", **params).json()["data"]}

    assert ids(id="ECHO,gemini-2.5-pro") == {"mock/echo", "google/gemini-2.5-pro"}
    r = requests.get(f"{live_server.url}/v1/models?id=echo&id=gpt-4o", timeout=5)
    assert {m["id"] for m in r.json()["data"]} == {"mock/echo", "openai/gpt-4o"}
    reasoning = ids(capabilities="reasoning")
    assert "google/gemini-2.5-pro" in reasoning and "openai/gpt-4o" not in reasoning
    assert ids(capabilities="reasoning", input_modalities="image") == {
        m for m in reasoning if m.startswith(("google/", "anthropic/"))
    }
    assert ids(capabilities="reasoning,tools") >= reasoning | {"openai/gpt-4o"}
    assert ids(id="nothing-like-this") == set()


def test_single_model_lookup(live_server):
    r = get(live_server, "/model/GOOGLE/gemini-2.5-pro", include="pricing")
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "model" and body["data"]["id"] == "google/gemini-2.5-pro"
    assert body["data"]["pricing"]["units"][0]["price"] == 1.25
    assert get(live_server, "/model/gemini-2.5-pro").json()["data"]["id"] == "google/gemini-2.5-pro"
    missing = get(live_server, "/model/acme/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert get(live_server, "/v1/model/gemini-2.5-pro").status_code == 404  # not under /v1
