import pytest
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
    assert "pricing" in get(live_server, "/v1/models", details="1", id="echo").json()["data"][0]
    assert "pricing" not in get(live_server, "/v1/models", details="False", id="echo").json()["data"][0]


@pytest.mark.parametrize("value", ["null", "yes", "", "2"])
def test_details_takes_a_boolean_or_is_a_400(live_server, value):
    """Issue 18: ``details=null`` (and any other non-boolean) was read as false."""
    r = get(live_server, "/v1/models", details=value)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "details"
    r = requests.get(f"{live_server.url}/v1/models?details=true&details=false", timeout=5)
    assert r.status_code == 400


def test_filters_or_within_and_across(live_server):
    def ids(**params):
        return {m["id"] for m in get(live_server, "/v1/models", **params).json()["data"]}

    assert ids(id="ECHO,gemini-2.5-pro") == {"mock/echo", "google/gemini-2.5-pro"}
    r = requests.get(f"{live_server.url}/v1/models?id=echo&id=gpt-4o", timeout=5)
    assert {m["id"] for m in r.json()["data"]} == {"mock/echo", "openai/gpt-4o"}
    reasoning = ids(capabilities="reasoning")
    assert "google/gemini-2.5-pro" in reasoning and "openai/gpt-4o" not in reasoning
    assert ids(capabilities="reasoning", input_modalities="image") == {
        m for m in reasoning if m.startswith(("google/", "anthropic/", "openai/"))
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


def test_items_carry_openai_fields_and_embedding_type(live_server):
    body = get(live_server, "/v1/models").json()
    validate(body, SPEC)
    for item in body["data"]:
        assert item["object"] == "model" and isinstance(item["created"], int) and item["owned_by"]
    gpt = next(m for m in body["data"] if m["id"] == "openai/gpt-4o")
    assert gpt["owned_by"] == "openai" and gpt["created"] == 1722902400  # releasedAt 2024-08-06
    small = next(m for m in body["data"] if m["id"] == "openai/text-embedding-3-small")
    assert small["type"] == "openai/embeddings"
    assert small["embedding"]["dimensions"] == 1536 and small["embedding"]["min_dimensions"] == 1

    def ids(**params):
        return {m["id"] for m in get(live_server, "/v1/models", **params).json()["data"]}

    embedding = ids(type="openai/embeddings")
    assert embedding == ids(type="embedding") and "google/gemini-embedding-001" in embedding
    assert not embedding & ids(type="openai/chat-completions")
    assert "mock/echo" in ids(type="chat")


def test_retrieve_in_openai_shape(live_server):
    r = get(live_server, "/v1/models/google/gemini-2.5-pro")
    assert r.status_code == 200
    item = r.json()
    assert item["id"] == "google/gemini-2.5-pro" and item["object"] == "model"
    assert item["owned_by"] == "google" and item["created"] > 0
    assert get(live_server, "/v1/models/GEMINI-2.5-pro").json()["id"] == "google/gemini-2.5-pro"
    assert get(live_server, "/v1/models/echo", include="pricing").json()["pricing"]["kind"] == "fixed"
    missing = get(live_server, "/v1/models/acme/nothing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"


def test_openai_sdk_lists_and_retrieves(live_server):
    import openai

    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="unused")
    listed = {m.id: m for m in client.models.list()}
    assert listed["openai/gpt-4o"].owned_by == "openai" and listed["openai/gpt-4o"].object == "model"
    model = client.models.retrieve("openai/text-embedding-3-small")
    assert model.id == "openai/text-embedding-3-small" and model.created > 0
    assert client.models.retrieve("smollm2").id == "local/smollm2-135m-instruct"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope/nothing")
