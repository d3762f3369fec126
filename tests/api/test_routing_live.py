import requests

from tests.fakes.openai_server import Scripted


def post(live_server, key, **body):
    return requests.post(
        f"{live_server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"messages": [{"role": "user", "content": "hi"}], **body},
        timeout=10,
    )


def test_fallback_is_visible_and_request_errors_do_not_fall_back(live_server, openai_upstream):
    key = live_server.create_key()
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "down"}}))
    r = post(live_server, key, model="mock/chain")
    assert r.status_code == 200
    assert r.headers["x-modelgate-provider"] == "mock2"
    assert [q["model"] for q in openai_upstream.requests] == ["first-model", "second-model"]

    openai_upstream.reset()
    openai_upstream.script(Scripted(status=400, body={"error": {"message": "bad"}}))
    r = post(live_server, key, model="mock/chain")
    assert r.status_code == 400 and len(openai_upstream.requests) == 1

    openai_upstream.reset()
    openai_upstream.script(Scripted(status=500, body={"error": {"message": "down"}}))
    r = post(live_server, key, model="mock/chain", provider="MOCK")
    assert r.status_code == 502 and len(openai_upstream.requests) == 1

    r = post(live_server, key, model="mock/chain", provider="elsewhere")
    assert r.status_code == 400 and "auto, mock, mock2" in r.json()["error"]["message"]
