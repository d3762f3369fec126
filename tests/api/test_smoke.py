import requests


def test_chat_roundtrip(live_server, openai_upstream):
    key = live_server.create_key()
    r = requests.post(
        f"{live_server.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "echo", "messages": [{"role": "user", "content": "hello there"}]},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["message"]["content"] == "hello there"
    assert openai_upstream.requests[-1]["max_tokens"] == 512
    print(body, dict(r.headers))
