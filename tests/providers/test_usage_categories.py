"""Every adapter maps its provider's usage fields (recorded shapes) onto the price sheet's categories."""

from __future__ import annotations

import pytest

from modelgate.errors import UpstreamProtocolError
from modelgate.providers.anthropic_response import parse_usage as anthropic_usage
from modelgate.providers.gemini_response import parse_usage as gemini_usage
from modelgate.providers.openai_compat import _usage as openai_chat_usage
from modelgate.providers.openai_responses import usage_of as responses_usage

# A Claude Code turn as the Messages API reports it (cache writes split by lifetime, a web search).
ANTHROPIC = {
    "input_tokens": 12,
    "cache_creation_input_tokens": 5_000,
    "cache_read_input_tokens": 40_000,
    "cache_creation": {"ephemeral_5m_input_tokens": 2_000, "ephemeral_1h_input_tokens": 3_000},
    "output_tokens": 500,
    "service_tier": "standard",
    "server_tool_use": {"web_search_requests": 5, "web_fetch_requests": 0},
}


def test_anthropic_cache_writes_by_lifetime_and_server_tools() -> None:
    u = anthropic_usage(ANTHROPIC)
    assert u.prompt_tokens == 12 + 5_000 + 40_000
    assert (u.cached_tokens, u.cache_write_5m_tokens, u.cache_write_1h_tokens) == (40_000, 2_000, 3_000)
    assert u.completion_tokens == 500
    assert u.uses == {"web_search": 5}


def test_anthropic_without_the_split_counts_every_write_as_5m() -> None:
    u = anthropic_usage({"input_tokens": 3, "cache_creation_input_tokens": 700, "output_tokens": 1})
    assert (u.cache_write_5m_tokens, u.cache_write_1h_tokens, u.uses) == (700, 0, None)
    # a split larger than the total (a stream's partial events merged): the split wins
    u = anthropic_usage(
        {
            "input_tokens": 3,
            "cache_creation_input_tokens": 0,
            "cache_creation": {"ephemeral_1h_input_tokens": 9},
        }
    )
    assert (u.prompt_tokens, u.cache_write_1h_tokens) == (12, 9)


def test_anthropic_bad_counts_are_protocol_errors() -> None:
    with pytest.raises(UpstreamProtocolError, match="ephemeral_1h_input_tokens"):
        anthropic_usage({"input_tokens": 1, "cache_creation": {"ephemeral_1h_input_tokens": -1}})
    with pytest.raises(UpstreamProtocolError, match="web_search_requests"):
        anthropic_usage({"input_tokens": 1, "server_tool_use": {"web_search_requests": "5"}})


def test_openai_chat_details() -> None:
    u = openai_chat_usage(
        {
            "prompt_tokens": 2_000,
            "completion_tokens": 300,
            "total_tokens": 2_300,
            "prompt_tokens_details": {"cached_tokens": 1_024, "audio_tokens": 100},
            "completion_tokens_details": {
                "reasoning_tokens": 128,
                "audio_tokens": 50,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "openai",
    )
    assert (u.prompt_tokens, u.cached_tokens, u.audio_input_tokens) == (2_000, 1_024, 100)
    assert (u.completion_tokens, u.reasoning_tokens, u.audio_output_tokens) == (300, 128, 50)
    assert u.to_wire()["prompt_tokens_details"] == {"cached_tokens": 1_024, "audio_tokens": 100}


def test_openai_responses_details() -> None:
    u = responses_usage(
        {
            "input_tokens": 9_000,
            "input_tokens_details": {"cached_tokens": 8_000},
            "output_tokens": 700,
            "output_tokens_details": {"reasoning_tokens": 512},
            "total_tokens": 9_700,
        }
    )
    assert (u.prompt_tokens, u.cached_tokens, u.completion_tokens, u.reasoning_tokens) == (
        9_000,
        8_000,
        700,
        512,
    )


def test_gemini_cached_thoughts_and_audio() -> None:
    u = gemini_usage(
        {
            "promptTokenCount": 30_000,
            "candidatesTokenCount": 400,
            "thoughtsTokenCount": 600,
            "cachedContentTokenCount": 20_000,
            "totalTokenCount": 31_000,
            "promptTokensDetails": [
                {"modality": "TEXT", "tokenCount": 28_000},
                {"modality": "AUDIO", "tokenCount": 2_000},
            ],
            "cacheTokensDetails": [
                {"modality": "TEXT", "tokenCount": 19_500},
                {"modality": "AUDIO", "tokenCount": 500},
            ],
        }
    )
    assert (u.prompt_tokens, u.cached_tokens, u.audio_input_tokens) == (30_000, 20_000, 1_500)
    assert (u.completion_tokens, u.reasoning_tokens) == (1_000, 600)
