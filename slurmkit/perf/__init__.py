"""The performance model: step time, throughput, memory, checkpoint and cost of a training job,
predicted from first principles before it runs (docs/estimate.md names every assumption).

Standard library only and pure: every function takes the plan's flat parameters (the keys of
slurmkit.rundir.PARAMS) and the site as a plain dict (``Site.to_dict()``, as in plan.json), so
the control half (generate, validate), the data half (report: predicted vs measured) and the
demo's synthetic logs use one model. Every figure it returns is derived, never measured.
"""
from __future__ import annotations

from slurmkit.perf.estimate import Estimate, adapter_variant, estimate, estimate_many
from slurmkit.perf.flops import flops_per_token
from slurmkit.perf.memory import MemoryEstimate, memory_estimate
from slurmkit.perf.sizing import Sizing, nodes_needed
from slurmkit.perf.step import StepTime, step_time

__all__ = ["Estimate", "MemoryEstimate", "Sizing", "StepTime", "adapter_variant", "estimate", "estimate_many",
           "flops_per_token", "memory_estimate", "nodes_needed", "step_time"]
