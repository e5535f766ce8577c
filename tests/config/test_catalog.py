import pytest

from slurmkit.config.catalog import BUILTIN, catalogue, load_models
from slurmkit.errors import ConfigError


@pytest.mark.parametrize("name, published_b", [
    ("llama2-7b", 6.74), ("llama2-13b", 13.0), ("llama2-70b", 68.98),
    ("llama3-8b", 8.03), ("llama3-70b", 70.55), ("llama3.1-8b", 8.03), ("llama3.1-70b", 70.55),
    ("mistral-7b", 7.24), ("gpt3-175b", 174.6),
])
def test_parameter_counts_match_published(name, published_b):
    assert BUILTIN[name].params() / 1e9 == pytest.approx(published_b, rel=0.003)


def test_llama2_counts_exact():
    assert BUILTIN["llama2-7b"].params() == 6_738_415_616
    assert BUILTIN["llama2-70b"].params() == 68_976_648_192


def test_tiny_gpt_for_the_local_trainer():
    m = BUILTIN["tiny-gpt"]
    assert (m.layers, m.hidden, m.heads, m.kv_heads, m.ffn_hidden, m.vocab, m.max_seq_len) == (2, 64, 4, 4, 256, 512, 256)


def test_user_models_from_yaml(write_yaml):
    path = write_yaml("models.yaml", """
        schema_version: 1
        models:
          my-1b: {layers: 22, hidden: 2048, ffn_hidden: 5632, heads: 32, kv_heads: 4, vocab: 32000, max_seq_len: 2048}
    """)
    models = catalogue(load_models(path))
    assert models["my-1b"].params() == pytest.approx(1.1e9, rel=0.05) and "llama2-7b" in models


def test_bad_user_model_reports_line(write_yaml):
    path = write_yaml("models.yaml", """
        schema_version: 1
        models:
          odd: {layers: 2, hidden: 100, ffn_hidden: 5, heads: 3, kv_heads: 3, vocab: 10, max_seq_len: 8}
    """)
    with pytest.raises(ConfigError) as err:
        load_models(path)
    assert err.value.lines() == [
        f"error: {path}:3:8: models.odd: Value error, hidden (100) must be divisible by heads (3)"]
