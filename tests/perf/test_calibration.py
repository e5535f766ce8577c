"""The performance model held to published numbers (issue 14, point 3).

The compute efficiency is fitted on the shapes slurmkit.perf.calibration.FITTED_ON names; every
other published shape of slurmkit/data/reference_results.csv is held back and must come within
HELD_BACK_BOUND of its published value, or within the wider bound KNOWN_GAPS gives it (each
explained in docs/estimate.md). The expected values are the published numbers; the table of
every shape is printed (pytest -s) and is the one in docs/estimate.md.
"""
from __future__ import annotations

import math

import pytest

from slurmkit.perf import estimate
from slurmkit.perf.calibrate import fit_efficiency
from slurmkit.perf.calibration import EFFICIENCY, FITTED_ON
from slurmkit.perf.step import PEFT_FACTOR
from tests.perf import published as P

HELD_BACK_BOUND = 0.15
# shape label prefix -> the bound it is held to instead (docs/estimate.md, "Where the goal is missed")
KNOWN_GAPS = {
    "nemo-24.07-fp8 gpt3-175b pretrain fp8 64n": 0.22,
    "nemo-24.05-fp8-ft llama2-13b lora fp8 1n": 0.18,
}
MLPERF_FIT_NODES = (1, 8)  # samples to target and the per-evaluation overhead are fitted on these
MLPERF_BOUND = 0.15
MLPERF_KNOWN_GAPS: dict[int, float] = {2: 0.28}  # docs/estimate.md: 2-node convergence spread and CP2


def predicted(shape: P.Shape, site: dict) -> float:
    e = estimate(shape.params, site)
    return {"tokens_per_s_per_gpu": e.tokens_per_s_per_gpu, "step_time_s": e.step_time_s,
            "tflops_per_gpu": e.tflops_per_gpu}[shape.metric]


def published_step_s(shape: P.Shape) -> float:
    tokens = shape.params["gbs"] * shape.params["seq_len"]
    assert shape.metric in ("tokens_per_s_per_gpu", "step_time_s")
    return tokens / shape.published / shape.params["gpus"] if shape.metric != "step_time_s" else shape.published


def fitted_keys() -> set[tuple]:
    return {k + (prec,) for (_, prec), keys in FITTED_ON.items() for k in keys}


def test_the_shipped_efficiencies_are_the_fit_of_the_declared_shapes():
    site = P.site()
    by_key = {s.key + (s.precision,): s for s in P.shapes()}
    for (family, precision), keys in FITTED_ON.items():
        shapes = [by_key[k + (precision,)] for k in keys]
        fit = fit_efficiency([(s.params, site, published_step_s(s)) for s in shapes])
        assert EFFICIENCY[(family, precision)] == pytest.approx(fit, abs=1e-4), (family, precision)


def test_every_held_back_published_shape_is_within_its_bound():
    site, fitted = P.site(), fitted_keys()
    lines, failures = [], []
    for shape in P.shapes():
        value = predicted(shape, site)
        error = value / shape.published - 1
        held_back = shape.key + (shape.precision,) not in fitted
        bound = next((b for k, b in KNOWN_GAPS.items() if shape.label.startswith(k)), HELD_BACK_BOUND)
        lines.append(f"| {shape.label} | {shape.metric} | {shape.published:g} | {value:.1f} | {error:+.1%} | "
                     f"{'held back' if held_back else 'fit'} |")
        if held_back and abs(error) > bound:
            failures.append(f"{shape.label}: {error:+.1%} (bound {bound:.0%})")
    print("\n".join(["| shape | metric | published | predicted | error | role |", "|---|---|---|---|---|---|", *lines]))
    assert len(lines) > 60  # every published shape was modelled
    assert not failures, failures


def test_the_known_gaps_are_still_gaps():
    """A gap that closed must leave KNOWN_GAPS (and docs/estimate.md), so the list stays true."""
    site = P.site()
    for shape in P.shapes():
        for prefix in KNOWN_GAPS:
            if shape.label.startswith(prefix):
                assert abs(predicted(shape, site) / shape.published - 1) > HELD_BACK_BOUND, shape.label


def mlperf_minutes(nodes: int, samples: float, eval_overhead_s: float) -> float:
    """Time to train: ``samples`` training samples at the modelled step time, plus the
    evaluations met on the way (forward only: half a LoRA sample's work each, plus a fixed
    overhead per evaluation)."""
    e = estimate(P.mlperf_params(nodes), P.site())
    per_sample_s = e.step_time_s / P.MLPERF_GBS
    ev = P.MLPERF_EVAL
    evals = max(0.0, (samples - ev["first"]) / ev["every"] + 1)
    forward_share = (1 / 3) / PEFT_FACTOR  # forward / (forward + input gradients)
    return (samples * per_sample_s + evals * (ev["samples"] * per_sample_s * forward_share + eval_overhead_s)) / 60


def fit_mlperf(published: dict[int, float]) -> tuple[float, float]:
    """(samples to target, overhead per evaluation) reproducing the published times of the fit
    nodes: for each sample count the overhead that makes the first exact, then the sample count
    (1,600 to 3,901, the training set once) that brings the second closest."""
    a, b = MLPERF_FIT_NODES

    def overhead_for(samples: float) -> float:  # time is linear in the overhead
        base, unit = mlperf_minutes(a, samples, 0.0), mlperf_minutes(a, samples, 1.0)
        return (published[a] - base) / (unit - base)

    best = min(range(1600, 3902, 4), key=lambda n: abs(mlperf_minutes(b, n, overhead_for(n)) - published[b]))
    return float(best), overhead_for(best)


def test_mlperf_node_scaling_is_within_its_bound():
    published = P.mlperf_rows()
    assert sorted(published) == [1, 2, 4, 8]
    samples, overhead = fit_mlperf(published)
    print(f"\nMLPerf fit on {MLPERF_FIT_NODES} nodes: {samples:.0f} samples to target, {overhead:.1f} s per evaluation")
    failures = []
    for nodes, minutes in sorted(published.items()):
        value = mlperf_minutes(nodes, samples, overhead)
        error = value / minutes - 1
        role = "fit" if nodes in MLPERF_FIT_NODES else "held back"
        print(f"| mlperf-v4.1-dell llama2-70b lora fp8 {nodes}n | time_to_train_min | {minutes} | {value:.2f} | {error:+.1%} | {role} |")
        if role == "held back" and abs(error) > MLPERF_KNOWN_GAPS.get(nodes, MLPERF_BOUND):
            failures.append(f"{nodes} nodes: {error:+.1%}")
    assert math.isfinite(overhead)
    assert not failures, failures
