"""`slurmkit parse`: training logs -> the Parquet results store (thin shell over slurmkit.results.parse)."""
from __future__ import annotations

import sys

import click

FORMAT_NAMES = ("auto", "nemo", "nemo2", "megatron", "torchtitan", "hf", "mllog", "trainer")


def _summary_line(s: dict) -> str:
    target = s.get("steps_target")
    progress = f"last step {s['last_step']}" + (f"/{target}" if target else "") if s.get("last_step") is not None else "no steps"
    parts = [f"{s['run_id']}: {s.get('source_format') or 'no records'}", f"{s['steps_completed']} step rows",
             progress, s["status"] + (f" ({s['failure_reason']})" if s.get("failure_reason") else "")]
    if s.get("step_time_mean_s") is not None:
        parts.append(f"step {s['step_time_mean_s']:.3f} s")
    if s.get("tflops_per_gpu") is not None:
        parts.append(f"{s['tflops_per_gpu']:.1f} TFLOPS/GPU")
    return ", ".join(parts)


@click.command("parse")
@click.argument("paths", nargs=-1)
@click.option("--out", "out_dir", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Results folder (Parquet datasets runs/ and steps/).")
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), default="auto", show_default=True,
              help="Log format; auto detects it per file.")
@click.option("--warmup-steps", type=click.IntRange(min=0), default=None,
              help="Steps excluded from step-time statistics [default: plan's warmup_steps, else 10].")
@click.option("--run-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Run directory whose plan.json, manifest.jsonl and accounting join logs to parameters.")
def parse(paths: tuple[str, ...], out_dir: str, fmt: str, warmup_steps: int | None,
          run_dir: str | None) -> None:
    """Parse training logs (files, folders, globs) into the results store.

    With --run-dir and no PATH, parses the run directory's logs/ folder.
    """
    from pathlib import Path

    from slurmkit.results.parse import expand_paths, parse_paths
    from slurmkit.results.parsers.logfile import no_pandas
    from slurmkit.rundir import LOGS_DIR

    if paths:
        files = expand_paths(paths)
    elif run_dir:
        files = expand_paths([Path(run_dir) / LOGS_DIR])
    else:
        raise click.UsageError("give log files, folders or globs (or --run-dir DIR)")
    lines: list[str] = []

    def report(summary: dict) -> None:
        for warning in summary["warnings"]:
            lines.append(f"warning: {warning}")
        if summary["understood"]:
            lines.append(_summary_line(summary))

    # parsing only writes Parquet: this process need not pay for pyarrow's pandas import
    with no_pandas():
        if len(files) > 5:
            with click.progressbar(length=len(files), label="parsing", file=sys.stderr) as bar:
                def tick(summary: dict) -> None:
                    report(summary)
                    bar.update(1)
                try:
                    parse_paths(files, out_dir, fmt, warmup_steps, run_dir, on_done=tick)
                finally:
                    _flush(lines)
            return
        try:
            parse_paths(files, out_dir, fmt, warmup_steps, run_dir, on_done=report)
        finally:
            _flush(lines)


def _flush(lines: list[str]) -> None:
    for line in lines:
        click.echo(line, err=line.startswith("warning:"))
