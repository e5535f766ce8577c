"""Achieved fraction of dense peak, per GPU family and precision, fitted on published results.

``efficiency`` is the fraction of the site's dense peak (``gpu_peak_tflops`` for the job's
precision) that the GPU sustains on the job's causal FLOPs, before the pipeline bubble and the
exposed communication the step model adds. It is fitted (slurmkit.perf.calibrate) on the
calibration shapes named in ``FITTED_ON``: each shape's efficiency is the one at which the model
reproduces the published throughput, and the family's is their geometric mean. tests/perf
re-fits from the published numbers and fails when these constants or the model drift; every other
published shape is held back and checked against the model (docs/estimate.md has the table).
"""
from __future__ import annotations

import re

# (gpu family, precision) -> efficiency; fitted values rounded to 4 digits
EFFICIENCY: dict[tuple[str, str], float] = {
    ("h100sxm", "bf16"): 0.5063,
    ("h100sxm", "fp8"): 0.3922,
}
# The published shapes each constant is fitted on (source_id, model, task, nodes), from
# slurmkit/data/reference_results.csv; the rest of the published rows are held back.
FITTED_ON: dict[tuple[str, str], tuple[tuple[str, str, str, int], ...]] = {
    ("h100sxm", "bf16"): (("nemo-2024-02-bf16", "llama2-7b", "pretrain", 1),
                          ("dgxc-24.11.1", "llama3.1-70b", "pretrain", 8)),
    ("h100sxm", "fp8"): (("nemo-24.07-fp8", "llama2-7b", "pretrain", 1),
                         ("dgxc-24.11.1", "llama3.1-70b", "pretrain", 8)),
}
# A GPU family or precision nobody published for: the H100 SXM value of the precision (then BF16),
# labelled uncalibrated, so the estimate says it rests on another GPU's number.
FALLBACK_FAMILY = "h100sxm"


def gpu_family(name: object) -> str:
    """'H100 SXM', 'NVIDIA H100 80GB HBM3' -> 'h100sxm'; 'H100 PCIe' -> 'h100pcie'; 'L40S' -> 'l40s'."""
    text = re.sub(r"[^a-z0-9]", "", str(name).lower())
    for chip in ("gb200", "b200", "h200", "h100", "a100", "l40s"):
        if chip in text:
            if "pcie" in text or "nvl" in text:
                return chip + "pcie"
            return chip + "sxm" if chip in ("h100", "h200", "a100") else chip
    return text


def efficiency(gpu_model: object, precision: object) -> tuple[float, bool]:
    """(efficiency, calibrated): the fitted value for the GPU and precision, else the fallback."""
    family, prec = gpu_family(gpu_model), str(precision or "bf16").lower()
    if (family, prec) in EFFICIENCY:
        return EFFICIENCY[(family, prec)], True
    return EFFICIENCY.get((FALLBACK_FAMILY, prec), EFFICIENCY[(FALLBACK_FAMILY, "bf16")]), False
