"""Benchmark: estimating a 10,000-point sweep (issue 14: under 1 s beyond start-up).

Builds 10,000 distinct parameter sets from a shipped experiment's planned points (nodes, batch,
layout and adapters varied) once, then times slurmkit.perf.estimate over all of them.
Run: .venv/bin/python bench/bench_estimate.py
"""
from __future__ import annotations

import itertools
import time

from slurmkit.perf import estimate_many
from slurmkit.plan.make import make_plan


def points(n: int = 10_000) -> list[tuple[dict, dict]]:
    plan = make_plan("llama2-70b-pretrain")
    base = [(j.params, plan.sites[j.params["site"]]) for j in plan.jobs]
    out = []
    for (p, site), gbs, adapters, mbs, seq in itertools.product(base, (64, 128, 256, 512, 1024), (2, 4, 8),
                                                             (1, 2), range(1024, 40000, 256)):
        out.append(({**p, "gbs": gbs, "adapters_per_node": adapters, "mbs": mbs, "seq_len": seq}, site))
        if len(out) == n:
            return out
    return out


def main() -> None:
    jobs = points()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        estimate_many(jobs)
        best = min(best, time.perf_counter() - start)
    print(f"estimate: {len(jobs)} points in {best * 1000:.0f} ms (best of 5; {best / len(jobs) * 1e6:.1f} us/point)")


if __name__ == "__main__":
    main()
