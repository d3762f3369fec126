from pathlib import Path

import pytest

from modelgate.catalog.loader import CatalogError, load_catalog_files, parse_catalog
from modelgate.catalog.registry import Catalog


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


def test_builtin_catalogue_loads_and_unconfigured_providers_are_named():
    providers, models = load_catalog_files(None, env={})
    catalog = Catalog(providers=providers, models=models)
    ids = {m.id for m in models}
    assert {"google/gemini-2.5-pro", "local/smollm2-135m-instruct", "openai/gpt-4o"} <= ids
    pro = catalog.find("GEMINI-2.5-PRO")
    assert pro is not None and pro.id == "google/gemini-2.5-pro"
    assert catalog.unavailable_reason(pro) == "provider google is not configured: set GOOGLE_API_KEY"
    assert catalog.unavailable_reason(catalog.find("smollm2")) is None


def test_env_interpolation_and_override(tmp_path):
    cfg = write(
        tmp_path,
        """
providers:
  mock:
    type: openai
    base_url: http://127.0.0.1:9100/v1
    api_key: ${MOCK_KEY}
models:
  - id: mock/echo
    aliases: [echo]
    info: {name: Mock, developer: Lab, contextLength: 8192, outputMax: 4096}
    pricing: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
    routes:
      - {provider: mock, model: mock-model}
  - id: google/gemini-2.5-pro
    info: {name: Pro via proxy, developer: Google}
    pricing: {input_usd_per_mtok: 1.0, output_usd_per_mtok: 2.0}
    routes:
      - {provider: mock, model: gemini}
""",
    )
    providers, models = load_catalog_files(cfg, env={"MOCK_KEY": "sk-123"})
    assert providers["mock"].api_key == "sk-123" and providers["mock"].configured
    by_id = {m.id: m for m in models}
    assert by_id["google/gemini-2.5-pro"].info["name"] == "Pro via proxy"  # same id overrides
    assert "openai/gpt-4o" in by_id  # built-ins kept
    providers, _ = load_catalog_files(cfg, env={})
    assert providers["mock"].missing_env == ["MOCK_KEY"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("providers: [1, 2]", "providers: must be a mapping"),
        ("providers:\n  x: {type: openai, base_url: http://h, colour: red}\n", "providers.x.colour"),
        (
            "models:\n  - id: a/b\n    info: {name: A, developer: B}\n    pricing: {input_usd_per_mtok: 1, "
            "output_usd_per_mtok: 1}\n    routes: [{provider: ghost, model: m}]\n",
            "unknown provider 'ghost'",
        ),
        (
            "models:\n  - id: a/b\n    info: {name: A}\n"
            "    pricing: {input_usd_per_mtok: 1, output_usd_per_mtok: 1}\n"
            "    routes: [{provider: local, model: m}]\n",
            "models[0].info",
        ),
        (
            "models:\n  - id: a/b\n    info: {name: A, developer: B}\n    pricing: {input_usd_per_mtok: -1, "
            "output_usd_per_mtok: 1}\n    routes: [{provider: local, model: m}]\n",
            "pricing.input_usd_per_mtok",
        ),
        ("modles: []\n", "unknown top-level key(s): modles"),
        ("providers: {x: {type: openai\n", "invalid YAML"),
    ],
)
def test_invalid_config_names_file_and_key(tmp_path, text, needle):
    cfg = write(tmp_path, text)
    with pytest.raises(CatalogError) as exc:
        load_catalog_files(cfg, env={})
    assert str(cfg) in str(exc.value)
    assert needle in str(exc.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CatalogError, match="cannot read the config file"):
        load_catalog_files(tmp_path / "nope.yaml", env={})


def test_alias_collision_rejected():
    text = """
models:
  - id: a/one
    aliases: [same]
    info: {name: A, developer: B}
    pricing: {input_usd_per_mtok: 1, output_usd_per_mtok: 1}
    routes: [{provider: p, model: m}]
  - id: a/two
    aliases: [SAME]
    info: {name: A, developer: B}
    pricing: {input_usd_per_mtok: 1, output_usd_per_mtok: 1}
    routes: [{provider: p, model: m}]
providers:
  p: {type: openai, base_url: http://x}
"""
    parsed = parse_catalog(text, source="t", env={})
    from modelgate.catalog.loader import _check_consistency

    with pytest.raises(CatalogError, match="used by both"):
        _check_consistency(parsed.providers, parsed.models, "t")


def test_pricing_credits_are_exact():
    _, models = load_catalog_files(None, env={})
    pro = next(m for m in models if m.id == "google/gemini-2.5-pro")
    # 24 prompt tokens at $1.25/M + 1000 completion at $10/M = 10030 micro-USD = 20060 credits
    assert pro.pricing.credits(prompt_tokens=24, completion_tokens=1000) == 20060
    # cached tokens are billed at the cached rate ($0.125/M), never twice: 25 credits
    assert pro.pricing.credits(prompt_tokens=100, completion_tokens=0, cached_tokens=100) == 25


EMB = (
    "models:\n  - id: a/emb\n    type: {type}\n    info: {{name: A, developer: B}}\n"
    "    pricing: {{input_usd_per_mtok: 0.1}}\n{extra}    routes: [{{provider: local, model: m}}]\n"
)


def test_embedding_models_defaults_and_kind_checks():
    text = EMB.format(type="embedding", extra="    embedding: {dimensions: 8, min_dimensions: 2}\n")
    (model,) = parse_catalog(text, source="t", env={}).models
    assert model.endpoint_type == "openai/embeddings" and model.capabilities == ["embeddings"]
    assert model.modalities.output == ["embedding"] and model.pricing.output_usd_per_mtok == 0
    assert model.embedding is not None and model.embedding.configurable
    assert model.embedding.max_inputs == 2048 and model.embedding.max_input_tokens == 8192
    # 1,000 input tokens at $0.10/M = 100 micro-USD = 200 credits
    assert model.pricing.credits(prompt_tokens=1000, completion_tokens=0) == 200


@pytest.mark.parametrize(
    ("type_", "extra", "needle"),
    [
        ("embedding", "", "embedding: required for a model of type embedding"),
        ("chat", "    embedding: {dimensions: 8}\n", "only allowed on a model of type embedding"),
        ("embedding", "    embedding: {dimensions: 8, min_dimensions: 9}\n", "min_dimensions must not"),
        ("embedding", "    embedding: {dimensions: 0}\n", "embedding.dimensions"),
        ("embedding", "    embedding: {dimensions: 8, max_inputs: 0}\n", "embedding.max_inputs"),
        ("embedding", "    embedding: {dimensions: 8, colour: red}\n", "embedding.colour"),
        ("rerank", "", "models[0].type"),
    ],
)
def test_invalid_embedding_models(tmp_path, type_, extra, needle):
    text = EMB.format(type=type_, extra=extra)
    if type_ == "chat":
        text = text.replace("{input_usd_per_mtok: 0.1}", "{input_usd_per_mtok: 0.1, output_usd_per_mtok: 1}")
    with pytest.raises(CatalogError) as exc:
        load_catalog_files(write(tmp_path, text), env={})
    assert needle in str(exc.value)
