"""The price sheet: exact conversion at load, categories, tiers, per-use fees, units, holds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelgate.catalog.loader import CatalogError, parse_catalog
from modelgate.catalog.prices import PriceSheet
from modelgate.providers.base import Usage

# Claude Sonnet 4.5 as Anthropic lists it (USD per million tokens): x USD/Mtok is 2x credits a token.
SONNET = {
    "input_usd_per_mtok": 3,
    "output_usd_per_mtok": 15,
    "cached_input_usd_per_mtok": 0.30,
    "cache_write_5m_usd_per_mtok": 3.75,
    "cache_write_1h_usd_per_mtok": 6,
    "tiers": [
        {
            "above_prompt_tokens": 200_000,
            "input_usd_per_mtok": 6,
            "output_usd_per_mtok": 22.5,
            "cached_input_usd_per_mtok": 0.60,
            "cache_write_5m_usd_per_mtok": 7.5,
            "cache_write_1h_usd_per_mtok": 12,
        }
    ],
    "per_use_usd_per_1k": {"web_search": 10},
}


def sheet(**kw: object) -> PriceSheet:
    return PriceSheet.model_validate(kw)


def test_every_category_at_its_price_below_the_tier() -> None:
    s = sheet(**SONNET)
    usage = Usage(
        prompt_tokens=1_000 + 50_000 + 2_000 + 3_000,
        completion_tokens=800,
        cached_tokens=50_000,
        cache_write_5m_tokens=2_000,
        cache_write_1h_tokens=3_000,
    )
    expected = 1_000 * 6 + 50_000 * 0.6 + 2_000 * 7.5 + 3_000 * 12 + 800 * 30
    assert s.cost(usage) == expected == 111_000
    assert s.tier_of(usage.prompt_tokens) == 0


def test_whole_request_at_the_tier_its_prompt_falls_in() -> None:
    s = sheet(**SONNET)
    at_bound = Usage(prompt_tokens=200_000, completion_tokens=1_000)
    above = Usage(
        prompt_tokens=222_000, completion_tokens=1_000, cached_tokens=100_000, cache_write_5m_tokens=20_000
    )
    assert s.cost(at_bound) == 200_000 * 6 + 1_000 * 30
    assert s.tier_of(222_000) == 1
    # every token of the request at the >200k prices, output included
    assert s.cost(above) == 102_000 * 12 + 100_000 * 1.2 + 20_000 * 15 + 1_000 * 45


def test_per_use_fees_and_units() -> None:
    s = sheet(
        input_usd_per_mtok=3,
        output_usd_per_mtok=15,
        per_use_usd_per_1k={"web_search": 10},
        per_unit_usd={"image:1024x1024/high": 0.167, "second": 0.006, "request": 0.001},
        per_mchar_usd=15,
    )
    usage = Usage(prompt_tokens=60_000, completion_tokens=0, uses={"web_search": 5})
    # the case: 60,000 input tokens and 5 searches = 360,000 + 5 x 20,000 credits
    assert s.cost(usage) == 60_000 * 6 + 5 * 20_000 == 460_000
    units = Usage(uses={"image:1024x1024/high": 2, "second": 30, "request": 1, "character": 1_000})
    assert s.cost(units) == 2 * 334_000 + 30 * 12_000 + 2_000 + 1_000 * 30
    assert s.cost(Usage(uses={"unpriced_tool": 3})) == 0


def test_defaults_follow_input_and_output() -> None:
    s = sheet(input_usd_per_mtok=2, output_usd_per_mtok=8)
    r = s.levels[0]
    assert r.cache_read == r.cache_write_5m == r.cache_write_1h == r.audio_input == r.input == 4_000_000
    assert r.audio_output == r.output == 16_000_000
    # a 1h write defaults to the 5m write when only that is given
    assert (
        sheet(input_usd_per_mtok=2, output_usd_per_mtok=8, cache_write_5m_usd_per_mtok=2.5)
        .levels[0]
        .cache_write_1h
        == 5_000_000
    )


def test_a_tier_keeps_the_base_ratios_it_does_not_state() -> None:
    s = sheet(
        input_usd_per_mtok=1.25,
        output_usd_per_mtok=10,
        cached_input_usd_per_mtok=0.125,
        tiers=[{"above_prompt_tokens": 200_000, "input_usd_per_mtok": 2.5, "output_usd_per_mtok": 15}],
    )
    assert s.usd_per_mtok("cache_read", 1) == 0.25


def test_fractions_of_a_micro_credit_are_refused() -> None:
    with pytest.raises(ValidationError, match="whole number of micro-credits"):
        sheet(input_usd_per_mtok=0.0000001, output_usd_per_mtok=1)
    with pytest.raises(ValidationError, match="must be a finite number"):
        sheet(input_usd_per_mtok=-1, output_usd_per_mtok=1)
    with pytest.raises(ValidationError, match="strictly increasing"):
        sheet(
            input_usd_per_mtok=1,
            output_usd_per_mtok=1,
            tiers=[
                {"above_prompt_tokens": 5, "input_usd_per_mtok": 2},
                {"above_prompt_tokens": 5, "input_usd_per_mtok": 3},
            ],
        )
    # the written digits are converted, not the binary float: 0.1 + 0.2 style errors cannot occur
    assert sheet(input_usd_per_mtok=0.000001, output_usd_per_mtok=0.3).levels[0].input == 2


def test_the_catalogue_file_names_a_bad_price() -> None:
    text = """
providers: {p: {type: openai, base_url: http://x, api_key: k}}
models:
  - id: m
    info: {name: M, developer: D}
    pricing: {input_usd_per_mtok: 1.0000001, output_usd_per_mtok: 1}
    routes: [{provider: p, model: m}]
"""
    with pytest.raises(CatalogError, match=r"models\[0\]\.pricing.*micro-credits"):
        parse_catalog(text, source="f.yaml", env={})


def test_a_route_overrides_the_model_sheet() -> None:
    text = """
providers:
  a: {type: openai, base_url: http://a, api_key: k}
  b: {type: openai, base_url: http://b, api_key: k}
models:
  - id: m
    info: {name: M, developer: D}
    pricing: {input_usd_per_mtok: 1, output_usd_per_mtok: 2}
    routes:
      - {provider: a, model: m}
      - {provider: b, model: m, pricing: {input_usd_per_mtok: 3, output_usd_per_mtok: 4}}
"""
    model = parse_catalog(text, source="f.yaml", env={}).models[0]
    usage = Usage(prompt_tokens=10, completion_tokens=10)
    assert model.sheet(model.routes[0]).cost(usage) == 60
    assert model.sheet(model.routes[1]).cost(usage) == 140
    assert model.sheet(None).cost(usage) == 60


def test_hold_is_the_dearest_case() -> None:
    s = sheet(**SONNET)
    plain = s.hold(prompt_tokens=10_000, output_tokens=1_000)
    assert plain == 10_000 * 6 + 1_000 * 30
    assert s.hold(prompt_tokens=10_000, output_tokens=1_000, cache_write="5m") == 10_000 * 7.5 + 1_000 * 30
    assert s.hold(prompt_tokens=10_000, output_tokens=1_000, cache_write="1h") == 10_000 * 12 + 1_000 * 30
    # a prompt that can reach the tier is held at the tier's prices
    assert s.hold(prompt_tokens=250_000, output_tokens=1_000, cache_write="1h") == 250_000 * 24 + 1_000 * 45
    assert s.hold(prompt_tokens=0, output_tokens=0, uses={"web_search": 10}) == 200_000
    # never below the real cost of any usage within those bounds
    worst = Usage(prompt_tokens=10_000, completion_tokens=1_000, cache_write_1h_tokens=10_000)
    assert s.cost(worst) <= s.hold(prompt_tokens=10_000, output_tokens=1_000, cache_write="1h")


def test_subsets_larger_than_the_prompt_are_clamped() -> None:
    s = sheet(**SONNET)
    # an upstream whose parts add up to more than its total: never a negative input charge
    usage = Usage(prompt_tokens=100, cached_tokens=80, cache_write_5m_tokens=80)
    assert s.cost(usage) == 80 * 0.6 + 20 * 7.5
