"""`slurmkit compare`, `slurmkit report` and `slurmkit demo` (thin shells over the library).

Library code is imported inside each command so `slurmkit --help` stays fast. `demo` is the one
place that drives both halves in one go: the control half writes the plan, the synthetic logs
stand in for the cluster, the data half parses and reports.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # imported inside the commands at run time (start-up time)
    from slurmkit.report.compare import Comparison

FORMATS = ("table", "markdown", "csv", "json")
DEMO_EXPERIMENTS = ("llama2-7b-pretrain.yaml", "llama2-70b-pretrain.yaml")
# Illustrative prices for the demo only (not quotes): configuration 1 carries four more adapters.
DEMO_COST_PER_NODE_HOUR = {"xe9680-8cx7": 98.0, "xe9680-4cx7": 92.0}


def _by_option(f: Callable[..., None]) -> Callable[..., None]:
    f = click.option("--baseline", default=None, help="Value of --by to compare against [default: the smallest].")(f)
    f = click.option("--noise-pct", type=click.FloatRange(min=0), default=1.0, show_default=True,
                     help="Changes below this (or below two standard errors of repeats) are noise.")(f)
    return click.option("--by", "by", default=None,
                        help="Field that differs between paired runs (site, adapters_per_node, ...) [default: auto].")(f)


@click.command("compare")
@click.argument("results", type=click.Path(file_okay=False))
@_by_option
@click.option("--x", "x", default="nodes", show_default=True, help="Field of the scaling axis.")
@click.option("--metric", "metrics", multiple=True,
              help="Metric column to compare (repeatable) [default: time_to_target_s, step_time_mean_s, tokens_per_s_per_gpu].")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def compare(results: str, by: str | None, baseline: str | None, noise_pct: float, x: str,
            metrics: tuple[str, ...], fmt: str) -> None:
    """Compare runs of RESULTS that differ in one field; scaling, best and cost tables."""
    from slurmkit.errors import ResultsError
    from slurmkit.report.compare import compare_runs
    from slurmkit.results import store

    runs = store.read_runs(results)
    if runs.empty:
        raise ResultsError(f"no runs in {results}", hint=f"parse logs first: `slurmkit parse --out {results} <logs>`")
    comparison = compare_runs(runs, by=by, metrics=metrics or None, baseline=baseline, x=x,
                              noise_pct=noise_pct)
    for note in comparison.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(_compare_text(comparison, fmt))


def _compare_text(comparison: Comparison, fmt: str) -> str:
    import json

    from slurmkit.report.model import comparison_tables
    from slurmkit.report.tables import to_text

    frames = {"pairs": comparison.pairs, "summary": comparison.summary, "scaling": comparison.scaling,
              "best": comparison.best, "costs": comparison.costs}
    if fmt == "csv":
        return comparison.pairs.to_csv(index=False).rstrip("\n")
    if fmt == "json":
        doc = {"by": comparison.by, "baseline": comparison.baseline, "notes": comparison.notes,
               **{k: json.loads(v.to_json(orient="records")) for k, v in frames.items()}}
        return json.dumps(doc, indent=2, default=str)
    tables = comparison_tables(comparison)
    if not tables:
        return "nothing to compare: no runs pair up, scale or share a model and node count"
    return "\n\n".join(to_text(t, fmt) for t in tables)


@click.command("report")
@click.argument("results", type=click.Path(file_okay=False))
@click.option("-o", "--out", "html_path", type=click.Path(dir_okay=False), default=None,
              help="HTML file to write [default: reports/<results folder name>.html].")
@click.option("--pdf", "pdf_path", type=click.Path(dir_okay=False), default=None, help="Also write this PDF.")
@click.option("--title", default=None, help="Report title.")
@_by_option
def report(results: str, html_path: str | None, pdf_path: str | None, title: str | None,
           by: str | None, baseline: str | None, noise_pct: float) -> None:
    """Write the HTML (and PDF) report of a results folder."""
    html_path = html_path or str(Path("reports") / f"{Path(results).resolve().name}.html")
    for line in _write_reports(results, html_path, pdf_path, title, by, baseline, noise_pct):
        click.echo(line)


def _write_reports(results: Path | str, html_path: Path | str, pdf_path: Path | str | None, title: str | None,
                   by: str | None = None, baseline: object = None, noise_pct: float = 1.0) -> list[str]:
    from slurmkit.report.html import write_html
    from slurmkit.report.model import build_report

    model = build_report(results, title, by=by, baseline=baseline, noise_pct=noise_pct)
    lines = [f"wrote {write_html(model, html_path)}"]
    if pdf_path:
        from slurmkit.report.pdf import write_pdf
        lines.append(f"wrote {write_pdf(model, pdf_path)}")
    drawn = sum(c.figure is not None for c in model.charts)
    lines.append(f"{len(model.findings)} findings, {drawn} charts, {len(model.notices)} notices")
    return lines


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="slurmkit-demo",
              show_default=True, help="Folder for the demo's run directories, results and reports.")
def demo(out_dir: str) -> None:
    """Run the whole pipeline offline on shipped material (no cluster needed).

    Generates the reference-design sweep (Llama 2 7B and 70B, 500 steps, 1-8 nodes, XE9680 with
    8 vs 4 adapters), writes a SYNTHETIC log per job (labelled as such), parses them with three
    real public logs, compares, and writes the HTML and PDF reports.
    """
    import time

    start = time.monotonic()
    out = Path(out_dir)
    run_dirs = _demo_generate(out)
    click.echo(f"generated {len(run_dirs)} run directories under {out}/runs (plan.json + sbatch scripts)")
    logs = sum(_demo_synthetic_logs(d) for d in run_dirs)
    click.echo(f"wrote {logs} SYNTHETIC logs (performance model, see slurmkit/samples/synthetic.py)")
    parsed = _demo_parse(out, run_dirs)
    click.echo(f"parsed {parsed} logs (synthetic + real public samples) into {out}/results")
    for line in _write_reports(out / "results", out / "reports" / "demo.html", out / "reports" / "demo.pdf",
                               "slurmkit demo: the reference design's comparison (synthetic data)"):
        click.echo(line)
    click.echo(f"done in {time.monotonic() - start:.0f} s; open {out / 'reports' / 'demo.html'}")


def _demo_sites(out: Path) -> list[str]:
    """Copies of the shipped XE9680 site configs with an illustrative cost per node-hour."""
    from slurmkit.atomic import write_text_atomic
    from slurmkit.resources import shipped_dir

    paths = []
    for name, cost in DEMO_COST_PER_NODE_HOUR.items():
        text = (shipped_dir("site-configs") / f"{name}.yaml").read_text(encoding="utf-8")
        lines = [f"cost_per_node_hour: {cost}   # illustrative demo price, not a quote"
                 if line.startswith("cost_per_node_hour:") else line for line in text.splitlines()]
        path = out / "site-configs" / f"{name}.yaml"
        write_text_atomic(path, "\n".join(lines) + "\n")
        paths.append(str(path))
    return paths


def _demo_generate(out: Path) -> list[Path]:
    from slurmkit.plan.make import make_plan
    from slurmkit.plan.render import write_plan
    from slurmkit.resources import shipped_dir

    sites = _demo_sites(out)
    run_dirs = []
    for name in DEMO_EXPERIMENTS:
        plan = make_plan(shipped_dir("experiments") / name, sites=sites)
        run_dir = out / "runs" / Path(name).stem
        write_plan(plan, run_dir)
        run_dirs.append(run_dir)
    return run_dirs


def _demo_synthetic_logs(run_dir: Path) -> int:
    from slurmkit.atomic import write_text_atomic
    from slurmkit.rundir import log_path, read_plan
    from slurmkit.samples.synthetic import synthetic_log

    jobs = read_plan(run_dir).jobs
    for number, job in enumerate(jobs, start=1):
        text = synthetic_log(job.run_id, job.params, number)
        write_text_atomic(run_dir / log_path(job.run_id, f"synthetic-{number}"), text)
    return len(jobs)


def _demo_parse(out: Path, run_dirs: list[Path]) -> int:
    import shutil

    from slurmkit.results.parse import parse_paths
    from slurmkit.rundir import LOGS_DIR
    from slurmkit.samples import PUBLIC_LOGS_DIR

    results = out / "results"
    if results.exists():
        shutil.rmtree(results)  # the demo's own output: rebuilt from scratch each time
    public = sorted(PUBLIC_LOGS_DIR.glob("*.log"))
    return len(parse_paths([*(d / LOGS_DIR for d in run_dirs), *public], results))
