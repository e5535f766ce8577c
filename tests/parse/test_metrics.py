"""Derived run metrics, checked against hand-computed values."""
from __future__ import annotations

import math

import pyarrow as pa
import pytest

from slurmkit.results import metrics

LLAMA2_7B = dict(model_layers=32, model_hidden=4096, model_heads=32, model_kv_heads=32,
                 model_ffn_hidden=11008, model_vocab=32000, seq_len=4096)


def _steps(times, start=1, loss=None):
    n = len(times)
    return pa.table({"step": list(range(start, start + n)), "step_time_s": times,
                     "loss": loss or [2.0] * n, "grad_norm": [1.0] * n,
                     "tokens_per_s_per_gpu": [None] * n, "tflops_per_gpu": [None] * n,
                     "source_line": list(range(1, n + 1))})


def test_flops_per_token_matches_reference_table():
    # research/reference-results.md 6.4: Llama2-7B 46.1 GF/token, GPT3-175B 1076.4
    assert metrics.flops_per_token(LLAMA2_7B)[0] / 1e9 == pytest.approx(46.08, abs=0.01)
    gpt3 = dict(model_layers=96, model_hidden=12288, model_heads=96, model_ffn_hidden=4 * 12288,
                model_vocab=51200, seq_len=2048)
    value, name = metrics.flops_per_token(gpt3)
    assert value / 1e9 == pytest.approx(1076.4, abs=0.1) and name == "megatron-2024-gelu"
    assert metrics.flops_per_token({"model_params": 10}) == (60.0, "6N")
    assert metrics.flops_per_token({}) == (None, None)


def test_window_excludes_warmup():
    steps = _steps([100.0] * 3 + [2.0, 4.0, 6.0])
    stats = metrics.step_time_stats(steps, warmup_steps=3)
    assert stats["step_time_mean_s"] == 4.0 and stats["step_time_median_s"] == 4.0
    assert stats["step_time_std_s"] == pytest.approx(2.0)
    assert stats["step_time_p95_s"] == pytest.approx(5.8)
    assert metrics.step_time_stats(steps, warmup_steps=10)["step_time_mean_s"] is None


def test_derive_throughput_and_mfu():
    params = dict(LLAMA2_7B, gbs=128, gpus=16, gpu_peak_tflops=989.0)
    out = metrics.derive(_steps([1.0] * 12 + [2.0] * 8), params, 12, steps_target=100)
    assert out["step_time_mean_s"] == 2.0 and out["time_to_target_s"] == 200.0
    tokens = 128 * 4096 / 2.0 / 16
    assert out["tokens_per_s_per_gpu"] == tokens
    assert out["tflops_per_gpu"] == pytest.approx(tokens * 46.0849152e9 / 1e12)
    assert out["mfu"] == pytest.approx(out["tflops_per_gpu"] / 989.0)
    assert out["tflops_formula"] == "megatron-2024-swiglu" and out["warmup_steps"] == 12


def test_unknowns_stay_null():
    out = metrics.derive(_steps([1.0] * 20), {}, 10, steps_target=None)
    assert out["tokens_per_s_per_gpu"] is None and out["tflops_per_gpu"] is None
    assert out["mfu"] is None and out["time_to_target_s"] is None


def test_warmup_choice():
    assert metrics.choose_warmup(3, {"warmup_steps": 7}) == 3
    assert metrics.choose_warmup(None, {"warmup_steps": 7}) == 7
    assert metrics.choose_warmup(None, {}) == metrics.DEFAULT_WARMUP_STEPS


def test_nan_detection_and_final_loss():
    steps = _steps([1.0] * 3, loss=[2.0, math.nan, 1.0])
    assert metrics.first_non_finite(steps) == (2, "loss", 2)
    assert metrics.final_loss(steps) == 1.0
