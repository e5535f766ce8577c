"""Derived run metrics from a steps table and the run's parameters.

- Step time statistics over the measurement window: steps after the first ``warmup_steps``
  (from the command line, else params ``warmup_steps``, else 10), every restart included.
- ``time_to_target_s``: the target steps at the measured mean step time (the steady-state time
  the run needs; MLPerf logs give the measured time to train instead).
- tokens/s/GPU = GBS * sequence length / mean step time / GPUs when those are known, else the
  mean of the values the log printed.
- TFLOPS/GPU from Megatron's FLOPs-per-token formula (2024 version, no causal discount, as used
  by NeMo 24.x and dgxc-benchmarking; research/reference-results.md section 6) when the model
  architecture is known; else 6 * parameters; else the mean of the logged values. The formula
  used is recorded in ``tflops_formula``. MFU = TFLOPS/GPU / the GPU's peak when known.
"""
from __future__ import annotations

from typing import Any, cast

import numpy as np
import pyarrow as pa

DEFAULT_WARMUP_STEPS = 10


def choose_warmup(cli_value: int | None, params: dict[str, Any]) -> int:
    """--warmup-steps, else the plan's warmup_steps, else DEFAULT_WARMUP_STEPS."""
    if cli_value is not None:
        return max(0, int(cli_value))
    planned = params.get("warmup_steps")
    return int(planned) if isinstance(planned, int) and planned >= 0 else DEFAULT_WARMUP_STEPS


def _column(steps: pa.Table, name: str) -> np.ndarray:
    return steps.column(name).to_numpy(zero_copy_only=False).astype(float)


def step_time_stats(steps: pa.Table, warmup_steps: int) -> dict[str, float | None]:
    """mean/median/p95/std of step_time_s over steps > warmup_steps (nulls when none)."""
    keys = ("step_time_mean_s", "step_time_median_s", "step_time_p95_s", "step_time_std_s")
    if steps.num_rows == 0:
        return dict.fromkeys(keys)
    times = _column(steps, "step_time_s")
    window = (_column(steps, "step") > warmup_steps) & np.isfinite(times)
    sample = times[window]
    if sample.size == 0:
        return dict.fromkeys(keys)
    std = float(np.std(sample, ddof=1)) if sample.size > 1 else None
    return dict(zip(keys, (float(np.mean(sample)), float(np.median(sample)),
                           float(np.percentile(sample, 95)), std)))


def flops_per_token(params: dict[str, Any]) -> tuple[float | None, str | None]:
    """Training FLOPs per token (forward + backward) and the formula's name."""
    dims = [params.get(k) for k in ("model_layers", "model_hidden", "model_heads", "seq_len", "model_vocab")]
    if all(isinstance(x, int) and x > 0 for x in dims):
        L, h, a, s, V = cast("list[int]", dims)
        g = params.get("model_kv_heads") or a
        ffn = params.get("model_ffn_hidden") or 4 * h
        swiglu = ffn != 4 * h  # Llama-style gated MLPs use ffn ~ 8/3 h; GPT uses exactly 4 h
        mlp = 12 * L * h * ffn * (1.5 if swiglu else 1.0)
        attention = 12 * L * h * h * (1 + g / a + s / h)
        name = "megatron-2024-swiglu" if swiglu else "megatron-2024-gelu"
        return float(attention + mlp + 6 * V * h), name
    n = params.get("model_params")
    if isinstance(n, (int, float)) and n > 0:
        return 6.0 * n, "6N"
    return None, None


def _window_mean(steps: pa.Table, name: str, warmup_steps: int) -> float | None:
    if steps.num_rows == 0:
        return None
    values = _column(steps, name)
    ok = (_column(steps, "step") > warmup_steps) & np.isfinite(values)
    if not ok.any():
        ok = np.isfinite(values)
    return float(np.mean(values[ok])) if ok.any() else None


def derive(steps: pa.Table, params: dict[str, Any], warmup_steps: int,
           steps_target: int | None) -> dict[str, Any]:
    """The runs-table metrics of one run (see module docstring); unknowns are None."""
    out: dict[str, Any] = {"warmup_steps": warmup_steps, **step_time_stats(steps, warmup_steps)}
    mean = out["step_time_mean_s"]
    out["time_to_target_s"] = steps_target * mean if steps_target and mean else None
    gbs, seq, gpus = params.get("gbs"), params.get("seq_len"), params.get("gpus")
    if gbs and seq and gpus and mean:
        tokens = gbs * seq / mean / gpus
    else:
        tokens = _window_mean(steps, "tokens_per_s_per_gpu", warmup_steps)
    out["tokens_per_s_per_gpu"] = tokens
    fpt, formula = flops_per_token(params)
    if fpt and tokens:
        out["tflops_per_gpu"], out["tflops_formula"] = fpt * tokens / 1e12, formula
    else:
        logged = _window_mean(steps, "tflops_per_gpu", warmup_steps)
        out["tflops_per_gpu"], out["tflops_formula"] = logged, ("logged" if logged else None)
    peak = params.get("gpu_peak_tflops")
    out["mfu"] = out["tflops_per_gpu"] / peak if peak and out["tflops_per_gpu"] else None
    return out


def final_loss(steps: pa.Table) -> float | None:
    """The last logged loss (NaN included: it is the signal)."""
    losses = steps.column("loss").drop_null()
    return losses[-1].as_py() if len(losses) else None


def first_non_finite(steps: pa.Table) -> tuple[int, str, int | None] | None:
    """(step, column, source line) of the first NaN/inf loss or grad norm, or None."""
    for name in ("loss", "grad_norm"):
        values = _column(steps, name) if steps.num_rows else np.array([])
        present = np.asarray(steps.column(name).is_valid()) if steps.num_rows else values
        bad = np.flatnonzero(present & ~np.isfinite(values)) if values.size else np.array([], int)
        if len(bad):
            i = int(bad[0])
            return (int(steps.column("step")[i].as_py()), name,
                    steps.column("source_line")[i].as_py())
    return None
