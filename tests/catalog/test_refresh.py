"""`modelgate catalog prices`: the price table, and refreshing from a LiteLLM price map (vendored
excerpt; nothing fetched) with a diff, applied on confirmation, exact or refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelgate.catalog.loader import load_catalog_files
from modelgate.catalog.refresh import price_table
from modelgate.cli import main
from modelgate.providers.base import Usage

EXCERPT = Path(__file__).parent / "data" / "litellm_prices_excerpt.json"
README = Path(__file__).parents[2] / "README.md"


def _refresh(config: Path, *extra: str) -> int:
    return main(
        [
            "catalog",
            "prices",
            "--from",
            str(EXCERPT),
            "--config",
            str(config),
            "--as-of",
            "2026-12-01",
            *extra,
        ]
    )


def test_diff_then_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "modelgate.yaml"
    assert _refresh(config, "--yes") == 0
    out = capsys.readouterr().out
    assert 'input_usd_per_mtok: "4" -> "5"' in out  # the changed Opus price, shown before it is written
    assert 'per_use_usd_per_1k: {"web_search": "25"} -> {"web_search": "35"}' in out
    assert "2 to change, 2 unchanged" in out
    # a float artefact is refused, never rounded, and the catalogue keeps its price
    assert "refused: google/gemini-2.5-flash" in out and "0.030000000000000004" in out
    _, models = load_catalog_files(config, env={})
    by_id = {m.id: m for m in models}
    opus = by_id["anthropic/claude-opus-5.5"].pricing
    assert opus.cost(Usage(prompt_tokens=1_000_000, cache_write_1h_tokens=1_000_000)) == 20_000_000
    assert (opus.source, opus.as_of) == ("LiteLLM price map litellm_prices_excerpt.json", "2026-12-01")
    assert str(by_id["google/gemini-2.5-flash"].pricing.usd_per_mtok("cache_read")) == "0.03"
    # the tier the map states is merged with the catalogue's (the 1h write above 200k is kept)
    assert by_id["anthropic/claude-sonnet-4.5"].pricing.usd_per_mtok("cache_write_1h", 1) == 12
    # applied once, the map has nothing left to change
    assert _refresh(config, "--yes") == 0
    assert "0 to change" in capsys.readouterr().out


def test_nothing_written_without_confirmation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "modelgate.yaml"
    config.write_text(yaml.safe_dump({"models": []}))
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert _refresh(config) == 1
    assert "nothing written" in capsys.readouterr().out
    assert yaml.safe_load(config.read_text()) == {"models": []}


def test_readme_shows_the_catalogue_prices() -> None:
    _, models = load_catalog_files(None, env={})
    assert price_table(models) in README.read_text(encoding="utf-8")
