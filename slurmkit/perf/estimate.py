"""Everything ``slurmkit estimate`` shows for one job: step time, throughput, TFLOPS and MFU,
time and cost of the planned steps, memory against capacity, checkpoint size and write time.

Checkpoints hold BF16 weights and the FP32 optimizer state (14 bytes per trained parameter,
research reference-results.md section 7; PEFT saves its adapters only) and are written in
parallel by all nodes, limited by the storage's write bandwidth when the site gives it and by the
nodes' adapters otherwise. Cost = nodes x hours x the site's price per node-hour.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slurmkit.perf.flops import FULL, flops_per_token, formula_name
from slurmkit.perf.memory import (
    CHECKPOINT_BYTES,
    DEFAULT_RESERVED_GIB,
    MemoryEstimate,
    memory_estimate,
    trainable_params,
)
from slurmkit.perf.step import StepTime, node_network_gbytes_per_s, step_time

KIND = "derived"  # every figure here is modelled, never measured


@dataclass(frozen=True)
class Estimate:
    step: StepTime
    memory: MemoryEstimate
    tokens_per_s_per_gpu: float
    tflops_per_gpu: float  # Megatron 2024 formula, as slurmkit.results.metrics reports measured runs
    mfu: float | None
    flops_formula: str
    mem_capacity_gib: float | None
    run_s: float  # the planned steps plus their checkpoints
    checkpoint_gb: float
    checkpoint_s: float
    checkpoint_bound: str  # "storage" or "adapters"
    checkpoints: int
    cost: float | None

    @property
    def step_time_s(self) -> float:
        return self.step.total_s

    @property
    def fits(self) -> bool | None:
        if self.mem_capacity_gib is None:
            return None
        return self.memory.total_gib <= self.mem_capacity_gib

    def as_dict(self) -> dict[str, Any]:
        """Flat figures for JSON/CSV output."""
        s, m = self.step, self.memory
        return {
            "kind": KIND, "step_time_s": s.total_s, "compute_s": s.compute_s, "bubble_s": s.bubble_s,
            "tp_comm_s": s.tp_s, "cp_comm_s": s.cp_s, "pp_comm_s": s.pp_s, "dp_comm_s": s.dp_s,
            "dp_exposed_s": s.dp_exposed_s, "efficiency": s.efficiency, "calibrated": s.calibrated,
            "tokens_per_s_per_gpu": self.tokens_per_s_per_gpu, "tflops_per_gpu": self.tflops_per_gpu,
            "mfu": self.mfu, "flops_formula": self.flops_formula, "mem_gib": m.total_gib,
            "mem_capacity_gib": self.mem_capacity_gib, "fits": self.fits, "run_s": self.run_s,
            "checkpoint_gb": self.checkpoint_gb, "checkpoint_s": self.checkpoint_s,
            "checkpoint_bound": self.checkpoint_bound, "checkpoints": self.checkpoints, "cost": self.cost,
        }


def estimate(p: dict[str, Any], site: dict[str, Any] | None = None) -> Estimate:
    """The estimate of one job's parameters (the keys of slurmkit.rundir.PARAMS) on a site."""
    site = site or {}
    gpu = site.get("gpu") or {}
    step = step_time(p, site)
    gpus = int(p.get("gpus") or 1)
    tokens = float(p["gbs"]) * p["seq_len"]
    tokens_per_gpu = tokens / step.total_s / gpus
    tflops = tokens_per_gpu * flops_per_token(p, FULL) / 1e12
    peak = p.get("gpu_peak_tflops")
    memory = memory_estimate(p, float(gpu.get("reserved_gib", DEFAULT_RESERVED_GIB)))
    capacity = p.get("gpu_mem_gib") or gpu.get("mem_gib")
    ckpt_gb, ckpt_s, bound = checkpoint(p, site)
    interval = p.get("checkpoint_interval")
    steps = int(p.get("steps") or 0)
    count = steps // interval if interval else 0
    run_s = steps * step.total_s + count * ckpt_s
    price = site.get("cost_per_node_hour", p.get("cost_per_node_hour"))
    cost = None if price is None else float(price) * int(p.get("nodes") or 1) * run_s / 3600
    return Estimate(step, memory, tokens_per_gpu, tflops, tflops / peak if peak else None,
                    formula_name(p, FULL), float(capacity) if capacity else None, run_s,
                    ckpt_gb, ckpt_s, bound, count, cost)


def checkpoint(p: dict[str, Any], site: dict[str, Any]) -> tuple[float, float, str]:
    """(size in GB, write time in s, what bounds it) of one full checkpoint."""
    trained = trainable_params(p)
    size_gb = trained * CHECKPOINT_BYTES / 1e9
    nodes = int(p.get("nodes") or 1)
    network = nodes * node_network_gbytes_per_s(p)
    storage = (site.get("storage") or {}).get("checkpoints") or {}
    write = storage.get("write_gbytes_per_s")
    if write and float(write) < network:
        return size_gb, size_gb / float(write), "storage"
    return size_gb, size_gb / network, "adapters"


def estimate_many(jobs: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[Estimate]:
    """The estimate of each (params, site) pair."""
    return [estimate(p, s) for p, s in jobs]


def adapter_variant(p: dict[str, Any], adapters: int) -> dict[str, Any]:
    """The same job on nodes with ``adapters`` inter-node adapters of the same rate."""
    return {**p, "adapters_per_node": adapters}
