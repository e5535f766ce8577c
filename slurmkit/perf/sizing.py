"""Sizing: the fewest nodes that finish a token budget (or the planned steps) within a target time.

A job is scaled by data parallelism only: TP, PP, CP, micro-batch and global batch stay (so the
training recipe and its convergence stay), and a node count is allowed when the global batch
still divides into whole micro-batches per data-parallel rank. Node counts are tried in
increasing order up to ``max_nodes``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slurmkit.perf.estimate import estimate

MAX_NODES = 4096


@dataclass(frozen=True)
class Sizing:
    nodes: int | None  # None: not reachable within max_nodes by data parallelism
    hours: float | None
    cost: float | None
    tokens: float


def scaled(p: dict[str, Any], nodes: int) -> dict[str, Any] | None:
    """``p`` on ``nodes`` nodes (data parallelism adjusted), or None when the layout cannot."""
    gpn = int(p.get("gpus_per_node") or 1)
    model_parallel = int(p["tp"]) * int(p["pp"]) * int(p["cp"])
    gpus = nodes * gpn
    if gpus % model_parallel:
        return None
    dp = gpus // model_parallel
    if p["gbs"] % (p["mbs"] * dp):
        return None
    return {**p, "nodes": nodes, "gpus": gpus, "dp": dp}


def nodes_needed(p: dict[str, Any], site: dict[str, Any] | None, target_hours: float,
                 tokens: float | None = None, max_nodes: int = MAX_NODES) -> Sizing:
    """The fewest nodes whose modelled time for ``tokens`` (default: the planned steps' tokens)
    is at most ``target_hours``."""
    per_step = float(p["gbs"]) * p["seq_len"]
    budget = tokens if tokens is not None else per_step * int(p.get("steps") or 0)
    for nodes in range(1, max_nodes + 1):
        q = scaled(p, nodes)
        if q is None:
            continue
        e = estimate(q, site)
        hours = budget / per_step * e.step_time_s / 3600
        if hours <= target_hours:
            price = (site or {}).get("cost_per_node_hour", p.get("cost_per_node_hour"))
            return Sizing(nodes, hours, None if price is None else float(price) * nodes * hours, budget)
    return Sizing(None, None, None, budget)
