"""The model catalogue: architectures, with parameter counts computed from them.

Built-in models cover the reference design (Llama 2), its successors and GPT-3; users add
their own in a YAML file (``schema_version: 1``, ``models: {name: {...}}``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ValidationError, model_validator

from slurmkit.config.schema import Model, Name, Positive, SchemaVersion, Text
from slurmkit.config.yamlsource import load_yaml, validation_problems
from slurmkit.errors import ConfigError


class ModelArch(Model):
    """A decoder-only transformer. ``mlp`` swiglu has 3 FFN matrices (Llama), gelu 2 (GPT)."""

    layers: Positive
    hidden: Positive
    ffn_hidden: Positive
    heads: Positive
    kv_heads: Positive
    vocab: Positive
    max_seq_len: Positive
    mlp: Literal["swiglu", "gelu"] = "swiglu"
    bias: bool = False  # linear-layer biases (GPT-3 has them, Llama does not)
    tied_embeddings: bool = False
    learned_positions: bool = False  # learned position embeddings (GPT) instead of RoPE
    family: Text = "llama"  # selects launcher defaults (tokenizer, norm); free text

    @model_validator(mode="after")
    def _heads_fit(self) -> ModelArch:
        if self.hidden % self.heads:
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        if self.heads % self.kv_heads:
            raise ValueError(f"heads ({self.heads}) must be divisible by kv_heads ({self.kv_heads})")
        return self

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def layer_params(self) -> int:
        """Parameters of one transformer layer (attention, MLP, two norms)."""
        h, kv = self.hidden, self.kv_heads * self.head_dim
        attention = h * h + 2 * h * kv + h * h  # q, k, v, output projection
        mlp = (3 if self.mlp == "swiglu" else 2) * h * self.ffn_hidden
        norms = 2 * h if self.mlp == "swiglu" else 4 * h  # RMSNorm weight; LayerNorm weight+bias
        biases = (h + 2 * kv + h + self.ffn_hidden + h) if self.bias else 0
        return attention + mlp + norms + biases

    def embedding_params(self) -> int:
        """Input embedding, output layer (unless tied), position table, final norm."""
        token = self.vocab * self.hidden
        output = 0 if self.tied_embeddings else token
        positions = self.max_seq_len * self.hidden if self.learned_positions else 0
        final_norm = self.hidden if self.mlp == "swiglu" else 2 * self.hidden
        return token + output + positions + final_norm

    def params(self) -> int:
        return self.layers * self.layer_params() + self.embedding_params()


def _llama(layers: int, hidden: int, ffn: int, heads: int, kv: int, vocab: int, seq: int,
           family: str = "llama") -> ModelArch:
    return ModelArch(layers=layers, hidden=hidden, ffn_hidden=ffn, heads=heads, kv_heads=kv,
                     vocab=vocab, max_seq_len=seq, family=family)


# Architectures from the published configs (HF config.json / NeMo launcher configs).
BUILTIN: dict[str, ModelArch] = {
    "llama2-7b": _llama(32, 4096, 11008, 32, 32, 32000, 4096),
    "llama2-13b": _llama(40, 5120, 13824, 40, 40, 32000, 4096),
    "llama2-70b": _llama(80, 8192, 28672, 64, 8, 32000, 4096),
    "llama3-8b": _llama(32, 4096, 14336, 32, 8, 128256, 8192),
    "llama3-70b": _llama(80, 8192, 28672, 64, 8, 128256, 8192),
    "llama3.1-8b": _llama(32, 4096, 14336, 32, 8, 128256, 131072),
    "llama3.1-70b": _llama(80, 8192, 28672, 64, 8, 128256, 131072),
    "mistral-7b": _llama(32, 4096, 14336, 32, 8, 32000, 32768, family="mistral"),
    "gpt3-175b": ModelArch(layers=96, hidden=12288, ffn_hidden=49152, heads=96, kv_heads=96,
                           vocab=50257, max_seq_len=2048, mlp="gelu", bias=True,
                           tied_embeddings=True, learned_positions=True, family="gpt"),
    # The example trainer's model: small enough for the local CPU-only cluster.
    "tiny-gpt": ModelArch(layers=2, hidden=64, ffn_hidden=256, heads=4, kv_heads=4, vocab=512,
                          max_seq_len=256, mlp="gelu", bias=True, family="gpt"),
}


class ModelFile(Model):
    schema_version: SchemaVersion
    models: dict[Name, ModelArch]  # a name is part of run ids


def load_models(path: Path | str, display: str | None = None) -> dict[str, ModelArch]:
    """Read a user model file; names may shadow built-ins (the user's file wins)."""
    doc = load_yaml(path, display=display)
    try:
        return dict(ModelFile.model_validate(doc.data).models)
    except ValidationError as exc:
        raise ConfigError("invalid model file", problems=validation_problems(exc, doc)) from None


def catalogue(extra: dict[str, ModelArch] | None = None) -> dict[str, ModelArch]:
    return {**BUILTIN, **(extra or {})}
