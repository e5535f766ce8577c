"""Latency of slurmkit against the local Slurm cluster (run inside its head namespace):

    scripts/local-slurm exec .venv/bin/python bench/bench_slurm.py [--jobs 100] [--repeat 10]

Prints: submit-to-completion latency of a trivial job (sbatch, then polling squeue), sbatch
throughput for a sweep, and `refresh` (status: one squeue + one sacct call) latency for that sweep.
Cluster set-up/start times are measured by `time scripts/local-slurm setup|up` (see docs/slurm.md).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from slurmkit.rundir import plan_text, script_path, write_plan_file
from slurmkit.slurm.client import SlurmCli
from slurmkit.slurm.submit import submit_plan
from slurmkit.slurm.track import refresh


def write_sweep(run_dir: Path, count: int, body: str) -> None:
    """A run directory of ``count`` one-line jobs, in the layout of docs/contracts.md."""
    (run_dir / "scripts").mkdir(parents=True)
    (run_dir / "logs").mkdir()
    jobs = []
    for i in range(count):
        run_id = f"bench-{i:04d}"
        (run_dir / f"scripts/{run_id}.sbatch").write_text(
            f"#!/bin/bash\n#SBATCH --job-name={run_id}\n#SBATCH --output=logs/{run_id}_%j.out\n{body}\n")
        jobs.append((run_id, script_path(run_id), "{}"))
    write_plan_file(run_dir, plan_text("bench", "bench", {}, jobs))


def completion_latency_s(client: SlurmCli, run_dir: Path) -> float:
    start = time.perf_counter()
    job_id = client.submit("scripts/bench-0000.sbatch", run_dir).job_id
    while client.queue([job_id]).get(job_id).state != "COMPLETED":
        time.sleep(0.02)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    client = SlurmCli()
    with tempfile.TemporaryDirectory(prefix="bench-slurm-", dir="/tmp") as tmp:
        trivial = Path(tmp) / "trivial"
        write_sweep(trivial, 1, "true")
        lat = [completion_latency_s(client, trivial) for _ in range(args.repeat)]
        print(f"trivial job submit-to-COMPLETED: median {statistics.median(lat):.3f} s, "
              f"min {min(lat):.3f} s, max {max(lat):.3f} s ({args.repeat} jobs)")

        sweep = Path(tmp) / "sweep"
        write_sweep(sweep, args.jobs, "true")
        start = time.perf_counter()
        report = submit_plan(sweep, client)
        submit_s = time.perf_counter() - start
        print(f"submit {len(report.submitted)} jobs: {submit_s:.2f} s ({submit_s / args.jobs * 1000:.1f} ms per sbatch)")
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            status = refresh(sweep, client)
            times.append(time.perf_counter() - start)
        print(f"status of {args.jobs} jobs (1 squeue + 1 sacct): median {statistics.median(times) * 1000:.0f} ms, "
              f"max {max(times) * 1000:.0f} ms; states {status.counts()}")
        subprocess.run(["scancel", "--name=" + ",".join(sorted(status.records))], check=False)


if __name__ == "__main__":
    main()
