"""Measured or derived: what each figure of the report, ``compare`` and their JSON is.

A *measured* figure is read from a log or from Slurm accounting (a step time, a loss, the wall
time, the last step), or is a mean, median or sum of such values. A *derived* figure is computed
from measured ones: extrapolations (the time for the target steps), ratios and changes,
throughput from the batch shape, FLOPs and MFU, scaling efficiency and costs. Tables mark each
column (or, where a column mixes both, each cell) and the report prints the legend.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MEASURED = "measured"
DERIVED = "derived"
MARKS = {MEASURED: "m", DERIVED: "d"}
DEFINITIONS = {
    MEASURED: "read from a log or from Slurm accounting, or a mean, median or sum of such values",
    DERIVED: "computed from measured values: extrapolations, ratios, throughput, FLOPs, "
             "efficiency, costs",
}
# The comparable metrics (slurmkit.report.compare.METRICS); a test keeps both lists equal.
METRIC_KINDS = {
    "time_to_target_s": DERIVED,        # target steps x mean step time after warm-up
    "step_time_mean_s": MEASURED, "step_time_median_s": MEASURED, "step_time_p95_s": MEASURED,
    "tokens_per_s_per_gpu": DERIVED,    # GBS x sequence length / step time / GPUs
    "tflops_per_gpu": DERIVED,          # FLOPs per token x tokens/s
    "mfu": DERIVED,                     # TFLOPS / the GPU's peak
    "final_loss": MEASURED,
    "cost_to_target_usd": DERIVED,      # time for the target steps x nodes x price
}
MLPERF_FORMAT = "mllog"  # MLPerf logs time the run (run_start to run_stop): measured


def legend() -> str:
    """The one-line legend printed with every marked table."""
    return "; ".join(f"{MARKS[k]} = {k}: {DEFINITIONS[k]}" for k in (MEASURED, DERIVED)) + "."


def short_legend() -> str:
    """What follows each marked table (the full legend opens the report)."""
    return f"{MARKS[MEASURED]} = {MEASURED}, {MARKS[DERIVED]} = {DERIVED} (legend at the top)."


def mark(kind: str) -> str:
    """'m', 'd' or '' (a parameter or a label: neither)."""
    return MARKS.get(kind, "")


def metric_kind(metric: str) -> str:
    return METRIC_KINDS[metric]


def run_metric_kind(metric: str, run: Mapping[str, Any]) -> str:
    """The kind of one run's (or configuration's) value of ``metric``: where slurmkit.results.metrics
    fell back on what the log printed, or the log timed the run itself, it is measured."""
    if metric == "time_to_target_s" and _text(run.get("source_format")) == MLPERF_FORMAT:
        return MEASURED
    if metric == "tflops_per_gpu" and _text(run.get("tflops_formula")) == "logged":
        return MEASURED
    if metric == "tokens_per_s_per_gpu" and not all(_present(run.get(k)) for k in ("gbs", "seq_len", "gpus")):
        return MEASURED  # no batch shape: the mean of the tokens/s the log printed
    return METRIC_KINDS[metric]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _present(value: Any) -> bool:
    """Not None, NaN or pandas' NA (whose comparisons raise on bool())."""
    if value is None:
        return False
    try:
        return not bool(value != value)
    except TypeError:
        return False
