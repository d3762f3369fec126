"""The chat door's structured output on a Claude route: ``client.chat.completions.parse`` works."""

from __future__ import annotations

import openai
from pydantic import BaseModel

from tests.conftest import LiveServer
from tests.fakes import Reply
from tests.fakes.anthropic_server import AnthropicFake


class Weather(BaseModel):
    city: str
    temp_c: float


def test_parse_with_a_pydantic_model(door_server: LiveServer, anthropic_up: AnthropicFake) -> None:
    anthropic_up.add(
        Reply(
            body={
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "t1",
                        "name": "json_response",
                        "input": {"city": "Oslo", "temp_c": -3.5},
                    }
                ],
                "stop_reason": "tool_use",
                "stop_sequence": None,
                "usage": {"input_tokens": 40, "output_tokens": 15},
            }
        )
    )
    client = openai.OpenAI(base_url=f"{door_server.url}/v1", api_key=door_server.create_key(), max_retries=0)
    done = client.chat.completions.parse(
        model="claude-test",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        response_format=Weather,
    )
    assert done.choices[0].message.parsed == Weather(city="Oslo", temp_c=-3.5)
    assert done.choices[0].finish_reason == "stop"
    sent = anthropic_up.last.json
    assert sent["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert sent["tools"][0]["input_schema"]["properties"]["city"] == {"title": "City", "type": "string"}
