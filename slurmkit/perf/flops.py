"""Training FLOPs per token: the Megatron 2024 formula slurmkit.results.metrics reports, and its
causal variant.

- ``megatron-2024`` (what NeMo 24.x, dgxc-benchmarking and slurmkit's metrics count; research
  reference-results.md section 6.1): per token, 12 L h^2 (1 + g/a + s/h) for attention (the
  s/h term counts the full s x s score matrix) + 12 L h ffn (x 1.5 for a gated MLP) + 6 V h.
- ``causal``: the same with the s/h term halved, as Megatron-LM since 2025-03 and NeMo since
  25.09 count it (only half of a causal score matrix is computed by flash attention).

Published TFLOPS and MFU use the first; the step time is computed from the second (the work the
GPU does), so the two are reported side by side and never mixed.
"""
from __future__ import annotations

from typing import Any

FULL = "megatron-2024"
CAUSAL = "causal"
_DIMS = ("model_layers", "model_hidden", "model_heads", "seq_len", "model_vocab")


def flops_per_token(p: dict[str, Any], formula: str = FULL) -> float:
    """Forward + backward FLOPs of one token of full training (6N when the architecture is unknown)."""
    dims = [p.get(k) for k in _DIMS]
    if not all(isinstance(v, int) and v > 0 for v in dims):
        return 6.0 * float(p.get("model_params") or 0)
    L, h, a, s, V = (int(v) for v in dims)  # type: ignore[arg-type]
    g = p.get("model_kv_heads") or a
    ffn = p.get("model_ffn_hidden") or 4 * h
    gated = 1.5 if ffn != 4 * h else 1.0  # Llama-style SwiGLU (3 matrices) vs GPT's 2
    score = s / h if formula == FULL else s / h / 2
    return float(12 * L * h * h * (1 + g / a + score) + 12 * L * h * ffn * gated + 6 * V * h)


def attention_flops_per_token(p: dict[str, Any], formula: str = CAUSAL) -> float:
    """The part of flops_per_token spent in the score and context matmuls (the s/h term)."""
    dims = [p.get("model_layers"), p.get("model_hidden"), p.get("seq_len")]
    if not all(isinstance(v, int) and v > 0 for v in dims):
        return 0.0
    L, h, s = (int(v) for v in dims)  # type: ignore[arg-type]
    return float(12 * L * h * s) / (1 if formula == FULL else 2)


def formula_name(p: dict[str, Any], formula: str = FULL) -> str:
    """The label of what flops_per_token counted for ``p``."""
    if not all(isinstance(v, int) and v > 0 for v in (p.get(k) for k in _DIMS)):
        return "6N"
    return formula
