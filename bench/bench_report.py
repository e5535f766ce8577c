"""Benchmark: the report of 1,000 runs and 500,000 step rows (goal: under 20 s on 2 cores).

    .venv/bin/python bench/bench_report.py [--runs 1000] [--steps-per-run 500] [--keep DIR]

Builds a results folder with slurmkit.results.store.write_run (4 models x 5 node counts x 2 sites x
5 tp/gbs shapes x 5 repeats = 1,000 runs, 500 steps each; untimed set-up), then times, each on
its own and end to end: reading the store, building the report model (compare, findings,
charts), rendering the HTML and rendering the PDF.
"""
from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from slurmkit.results import store

MODELS = {"llama2-7b": 11000.0, "llama2-13b": 5600.0, "llama2-70b": 1050.0, "llama3-8b": 9800.0}
NODES = (1, 2, 4, 8, 16)
SITES = {"xe9680-8cx7": (8, 98.0), "xe9680-4cx7": (4, 92.0)}
SHAPES = ((1, 128), (2, 128), (4, 128), (1, 256), (2, 256))


def build_results(folder: Path, runs: int, steps_per_run: int) -> int:
    rng = np.random.default_rng(0)
    combos = itertools.product(MODELS.items(), NODES, SITES.items(), SHAPES, range(5))
    count = 0
    for ((model, tps0), nodes, (site, (adapters, cost)), (tp, gbs), repeat) in combos:
        if count == runs:
            break
        tps = tps0 * (1 - 0.02 * np.log2(nodes) * (8 / adapters)) * (1 + rng.normal(0, 0.004))
        step_s = gbs * 4096 / (tps * nodes * 8)
        failed = count % 97 == 0
        times = step_s * (1 + rng.normal(0, 0.01, steps_per_run))
        steps = pa.table({"step": np.arange(1, steps_per_run + 1), "step_time_s": times,
                          "loss": 2 + 8 * np.exp(-np.arange(steps_per_run) / 100)})
        run = dict(run_id=f"{model}-n{nodes}-{site}-tp{tp}-g{gbs}-r{repeat}", job_id=str(10_000 + count),
                   source_format="nemo2", model=model, site=site, nodes=nodes, gpus_per_node=8,
                   gpus=8 * nodes, tp=tp, pp=1, mbs=1, gbs=gbs, seq_len=4096, precision="bf16",
                   workload="pretrain", launcher="nemo", steps=steps_per_run, warmup_steps=10,
                   repeat=repeat, gpu_model="H100 SXM", gpu_peak_tflops=989.0,
                   adapters_per_node=adapters, cost_per_node_hour=cost,
                   status="failed" if failed else "completed",
                   failure_reason="nccl_timeout" if failed else None,
                   steps_completed=steps_per_run, steps_target=steps_per_run, last_step=steps_per_run,
                   step_time_mean_s=float(times[10:].mean()),
                   time_to_target_s=float(times[10:].mean()) * steps_per_run,
                   tokens_per_s_per_gpu=float(tps), tflops_per_gpu=float(tps) * 46.1e-3,
                   mfu=float(tps) * 46.1e-3 / 989.0)
        store.write_run(folder, run, steps)
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--steps-per-run", type=int, default=500)
    parser.add_argument("--keep", type=Path, default=None, help="Keep the results and reports here.")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    t0 = time.perf_counter()
    count = build_results(work / "results", args.runs, args.steps_per_run)
    print(f"set-up: {count} runs, {count * args.steps_per_run:,} step rows written in "
          f"{time.perf_counter() - t0:.1f} s (not part of the timing)")

    from slurmkit.report.html import write_html
    from slurmkit.report.model import STEP_COLUMNS, build_report_from_frames
    from slurmkit.report.pdf import write_pdf

    # The steps of `slurmkit report` (slurmkit.report.model.build_report), timed one by one.
    clock = Clock()
    runs = store.read_runs(work / "results")
    clock.lap("read runs table (slurmkit.results.store)")
    completed = runs.loc[runs["status"] == "completed", "run_id"].tolist()
    steps = store.read_steps(work / "results", run_ids=completed, columns=STEP_COLUMNS)
    clock.lap(f"read {len(steps):,} step rows (slurmkit.results.store)")
    model = build_report_from_frames(runs, steps, "Benchmark", results_label=str(work / "results"))
    clock.lap("report model (compare, findings, charts)")
    html = write_html(model, work / "report.html")
    clock.lap(f"HTML ({html.stat().st_size / 1e6:.1f} MB)")
    pdf = write_pdf(model, work / "report.pdf")
    clock.lap(f"PDF ({pdf.stat().st_size / 1e6:.1f} MB)")
    wall, cpu = clock.total()
    print(f"total: {wall:.2f} s wall, {cpu:.2f} s CPU for {len(runs)} runs (goal < 20 s)")


class Clock:
    """Wall and CPU time per step (CPU time shows the cost when other work shares the cores)."""

    def __init__(self) -> None:
        self.laps: list[tuple[float, float]] = []
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def lap(self, what: str) -> None:
        wall, cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu
        self.laps.append((wall, cpu))
        print(f"{what}: {wall:.2f} s wall, {cpu:.2f} s CPU")
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def total(self) -> tuple[float, float]:
        return sum(w for w, _ in self.laps), sum(c for _, c in self.laps)


if __name__ == "__main__":
    main()
