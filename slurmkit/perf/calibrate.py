"""Fitting the compute efficiency to published results (slurmkit.perf.calibration holds the result).

For one published shape, the efficiency is the one at which the modelled step time equals the
published one (found by bisection: the step time falls as the efficiency rises); a GPU family's
efficiency is the geometric mean over its calibration shapes.
"""
from __future__ import annotations

import math
from typing import Any

from slurmkit.perf.step import step_time


def shape_efficiency(p: dict[str, Any], site: dict[str, Any] | None, published_step_s: float) -> float:
    """The efficiency at which the model gives ``published_step_s`` for ``p`` on ``site``."""
    low, high = 0.01, 1.5
    for _ in range(60):
        mid = (low + high) / 2
        if step_time(p, site, efficiency=mid).total_s > published_step_s:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def fit_efficiency(shapes: list[tuple[dict[str, Any], dict[str, Any] | None, float]]) -> float:
    """The geometric mean of the shapes' efficiencies: (params, site, published step time) each."""
    logs = [math.log(shape_efficiency(p, s, t)) for p, s, t in shapes]
    return math.exp(sum(logs) / len(logs))
