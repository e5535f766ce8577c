"""A small hand-built results set whose comparison numbers are worked out by hand in the tests.

Model m7 on sites A (4 adapters, $10/node-hour) and B (8 adapters, $15/node-hour), 1 and 2
nodes, two repeats each; plus a failed repeat, a model with no partner (m70 on A only) and a run
without parameters (a log slurmkit did not launch).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from slurmkit.results import store

SITES = {"A": dict(adapters_per_node=4, cost_per_node_hour=10.0),
         "B": dict(adapters_per_node=8, cost_per_node_hour=15.0)}
# (model, nodes, site, repeat) -> (time_to_target_s, tokens_per_s_per_gpu)
MEASURED = {
    ("m7", 1, "A", 0): (1000.0, 100.0), ("m7", 1, "A", 1): (1020.0, 100.0),
    ("m7", 1, "B", 0): (990.0, 101.0), ("m7", 1, "B", 1): (1010.0, 101.0),
    ("m7", 2, "A", 0): (600.0, 90.0), ("m7", 2, "A", 1): (600.0, 90.0),
    ("m7", 2, "B", 0): (500.0, 108.0), ("m7", 2, "B", 1): (500.0, 108.0),
    ("m70", 2, "A", 0): (4000.0, 10.0),
}


def run_row(model: str, nodes: int, site: str, repeat: int, status: str = "completed",
            time_s: float | None = None, tps: float | None = None, **extra) -> dict:
    row = dict(run_id=f"{model}-n{nodes}-{site}-r{repeat}", job_id=str(1000 + repeat),
               source_format="trainer", source_file=f"logs/{model}-{site}.out",
               experiment="exp", workload="pretrain", launcher="nemo", model=model, site=site,
               nodes=nodes, gpus_per_node=8, gpus=8 * nodes, tp=1, pp=1, dp=8 * nodes, mbs=1,
               gbs=128, seq_len=4096, precision="bf16", steps=500, warmup_steps=10,
               repeat=repeat, dataset="synthetic", gpu_model="H100 SXM", gpu_peak_tflops=989.0,
               node_model="XE9680", adapter_model="CX-7", adapter_rate_gbps=400.0,
               fabric="infiniband", storage_type="nfs", status=status, steps_target=500,
               steps_completed=500 if status == "completed" else 120,
               last_step=500 if status == "completed" else 120,
               time_to_target_s=time_s, step_time_mean_s=time_s / 500 if time_s else None,
               tokens_per_s_per_gpu=tps, tflops_per_gpu=tps * 0.05 if tps else None,
               mfu=tps * 0.05 / 989.0 if tps else None, final_loss=2.0 if tps else None,
               **SITES.get(site, {}))
    row.update(extra)
    return row


def hand_runs() -> pd.DataFrame:
    rows = [run_row(m, n, s, r, time_s=t, tps=v) for (m, n, s, r), (t, v) in MEASURED.items()]
    rows.append(run_row("m7", 2, "A", 2, status="failed", failure_reason="oom",
                        failure_evidence="torch.OutOfMemoryError: CUDA out of memory."))
    rows.append({"run_id": "someone-elses-log", "job_id": "77", "source_format": "nemo2",
                 "status": "incomplete", "steps_completed": 4, "last_step": 12})
    return pd.DataFrame(rows)


def hand_steps(runs: pd.DataFrame) -> pd.DataFrame:
    """20 steps per completed run: step time = mean x (1 ± 1%), loss falling from 10."""
    rows = []
    for run in runs[runs["status"] == "completed"].itertuples():
        for step in range(1, 21):
            wiggle = 1.01 if step % 2 else 0.99
            rows.append((run.run_id, step, run.step_time_mean_s * wiggle, 10.0 - step * 0.1))
    return pd.DataFrame(rows, columns=["run_id", "step", "step_time_s", "loss"])


def write_results(folder: Path, runs: pd.DataFrame, steps: pd.DataFrame) -> Path:
    for run in runs.to_dict("records"):
        clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in run.items()}
        mine = steps[steps["run_id"] == run["run_id"]]
        table = pa.table({"step": pa.array(mine["step"], pa.int64()),
                          "step_time_s": pa.array(mine["step_time_s"], pa.float64()),
                          "loss": pa.array(mine["loss"], pa.float64())})
        store.write_run(folder, clean, table)
    return folder


@pytest.fixture
def runs() -> pd.DataFrame:
    return hand_runs()


@pytest.fixture
def steps(runs) -> pd.DataFrame:
    return hand_steps(runs)


@pytest.fixture
def results_dir(tmp_path, runs, steps) -> Path:
    return write_results(tmp_path / "results", runs, steps)


@pytest.fixture
def make_run():
    return run_row


@pytest.fixture
def write():
    return write_results
