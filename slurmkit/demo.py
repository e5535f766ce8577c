"""The demo: the whole pipeline offline on shipped material, no cluster needed.

The one library module that drives both halves in one go (like the CLI, nothing but the CLI
imports it): the control half writes the plans, SYNTHETIC logs stand in for the cluster (labelled
as such), the data half parses them with real public logs, compares and reports.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

EXPERIMENTS = ("llama2-7b-pretrain.yaml", "llama2-70b-pretrain.yaml")
# Illustrative prices for the demo only (not quotes): configuration 1 carries four more adapters.
COST_PER_NODE_HOUR = {"xe9680-8cx7": 98.0, "xe9680-4cx7": 92.0}
TITLE = "slurmkit demo: the reference design's comparison (synthetic data)"


def run_demo(out: Path | str, echo: Callable[[str], None] = print) -> Path:
    """Generate, write synthetic logs, parse, report under OUT; return the HTML report's path."""
    from slurmkit.report.write import write_reports

    start = time.monotonic()
    out = Path(out)
    run_dirs = generate(out)
    echo(f"generated {len(run_dirs)} run directories under {out}/runs (plan.json + sbatch scripts)")
    logs = sum(synthetic_logs(d) for d in run_dirs)
    echo(f"wrote {logs} SYNTHETIC logs (performance model, see slurmkit/samples/synthetic.py)")
    parsed = parse(out, run_dirs)
    echo(f"parsed {parsed} logs (synthetic + real public samples) into {out}/results")
    html = out / "reports" / "demo.html"
    for line in write_reports(out / "results", html, out / "reports" / "demo.pdf", TITLE):
        echo(line)
    echo(f"done in {time.monotonic() - start:.0f} s; open {html}")
    return html


def sites(out: Path) -> list[str]:
    """Copies of the shipped XE9680 site configs with an illustrative cost per node-hour."""
    from slurmkit.atomic import write_text_atomic
    from slurmkit.resources import shipped_dir

    paths = []
    for name, cost in COST_PER_NODE_HOUR.items():
        text = (shipped_dir("site-configs") / f"{name}.yaml").read_text(encoding="utf-8")
        lines = [f"cost_per_node_hour: {cost}   # illustrative demo price, not a quote\n"
                 "cost_source: illustrative demo price, not a quote"
                 if line.startswith("cost_per_node_hour:") else line for line in text.splitlines()]
        path = out / "site-configs" / f"{name}.yaml"
        write_text_atomic(path, "\n".join(lines) + "\n")
        paths.append(str(path))
    return paths


def generate(out: Path) -> list[Path]:
    """The reference sweeps' run directories (plan.json + scripts) under OUT/runs."""
    from slurmkit.plan.make import make_plan
    from slurmkit.plan.render import render_plan, write_plan
    from slurmkit.resources import shipped_dir

    site_files = sites(out)
    run_dirs = []
    for name in EXPERIMENTS:
        plan = render_plan(make_plan(shipped_dir("experiments") / name, sites=site_files))
        run_dir = out / "runs" / Path(name).stem
        write_plan(plan, run_dir)
        run_dirs.append(run_dir)
    return run_dirs


def synthetic_logs(run_dir: Path) -> int:
    """One SYNTHETIC log per planned job, where the cluster would have written it."""
    from slurmkit.atomic import write_text_atomic
    from slurmkit.rundir import SACCT_FILE, log_path, read_plan
    from slurmkit.samples.synthetic import elapsed_s, synthetic_log, synthetic_sacct

    jobs = read_plan(run_dir).jobs
    for number, job in enumerate(jobs, start=1):
        text = synthetic_log(job.run_id, job.params, number)
        write_text_atomic(run_dir / log_path(job.run_id, f"synthetic-{number}"), text)
    # SYNTHETIC accounting too, so the report shows a wall time beside the steps
    write_text_atomic(run_dir / SACCT_FILE, synthetic_sacct(
        [(f"synthetic-{n}", job.run_id, elapsed_s(job.params, job.run_id)) for n, job in enumerate(jobs, start=1)]))
    return len(jobs)


def parse(out: Path, run_dirs: list[Path]) -> int:
    """Parse the run directories' logs and the shipped public logs into a fresh OUT/results."""
    from slurmkit.results.parse import parse_paths
    from slurmkit.rundir import LOGS_DIR
    from slurmkit.samples import PUBLIC_LOGS_DIR

    results = out / "results"
    if results.exists():
        shutil.rmtree(results)  # the demo's own output: rebuilt from scratch each time
    public = sorted(PUBLIC_LOGS_DIR.glob("*.log"))
    parsed = sum(len(parse_paths([d / LOGS_DIR], results, run_dir=d)) for d in run_dirs)  # with its accounting
    return parsed + len(parse_paths(public, results))
