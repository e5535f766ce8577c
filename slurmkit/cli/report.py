"""`slurmkit compare`, `slurmkit report` and `slurmkit demo` (thin shells over the library).

Library code is imported inside each command so `slurmkit --help` stays fast. `demo` runs
slurmkit.demo, the one library module that drives both halves in one go.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from slurmkit.cli.listing import format_option

if TYPE_CHECKING:  # imported inside the commands at run time (start-up time)
    from slurmkit.report.compare import Comparison


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
@format_option("markdown")
def compare(results: str, by: str | None, baseline: str | None, noise_pct: float, x: str,
            metrics: tuple[str, ...], fmt: str) -> None:
    """Compare runs of RESULTS that differ in one field; scaling, best and cost tables."""
    from slurmkit.errors import ResultsError
    from slurmkit.report.compare import compare_runs
    from slurmkit.results import store

    runs = store.read_runs(results)
    if store.unreadable(runs):
        click.echo(f"warning: {store.unreadable_note(store.unreadable(runs), results)}", err=True)
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
@click.option("-o", "--out", "html_path", type=click.Path(), default=None,
              help="HTML file to write [default: reports/<results folder name>.html].")
@click.option("--pdf", "pdf_path", type=click.Path(), default=None, help="Also write this PDF.")
@click.option("--title", default=None, help="Report title.")
@_by_option
def report(results: str, html_path: str | None, pdf_path: str | None, title: str | None,
           by: str | None, baseline: str | None, noise_pct: float) -> None:
    """Write the HTML (and PDF) report of a results folder."""
    from slurmkit.atomic import check_output_path
    from slurmkit.cli.term import progress
    from slurmkit.report.write import STAGES, write_reports

    html_path = html_path or str(Path("reports") / f"{Path(results).resolve().name}.html")
    check_output_path(html_path, folder=False, option="-o/--out")  # before the work, not after it
    if pdf_path:
        check_output_path(pdf_path, folder=False, option="--pdf")
    with progress(STAGES, "report") as bar:
        lines = write_reports(results, html_path, pdf_path, title, by, baseline, noise_pct,
                              on_stage=lambda _: bar.update(1))
    for line in lines:
        click.echo(line)


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(), default="slurmkit-demo",
              show_default=True, help="Folder for the demo's run directories, results and reports.")
def demo(out_dir: str) -> None:
    """Run the whole pipeline offline on shipped material (no cluster needed).

    Generates the reference-design sweep (Llama 2 7B and 70B, 500 steps, 1-8 nodes, XE9680 with
    8 vs 4 adapters), writes a SYNTHETIC log per job (labelled as such), parses them with three
    real public logs, compares, and writes the HTML and PDF reports.
    """
    from slurmkit.atomic import check_output_path
    from slurmkit.demo import run_demo

    check_output_path(out_dir, folder=True, option="--out")
    run_demo(out_dir, echo=click.echo)
