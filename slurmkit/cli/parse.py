"""`slurmkit parse`: training logs -> the Parquet results store (thin shell over slurmkit.results.parse)."""
from __future__ import annotations

import sys
from pathlib import Path

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
@click.option("--out", "out_dir", default="results", show_default=True, type=click.Path(),
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

    With --run-dir and no PATH, parses the run directory's logs/ folder. Logs that lie in a run
    directory's logs/ folder are joined to its plan, manifest and accounting without --run-dir.
    """
    from slurmkit.atomic import check_output_path
    from slurmkit.cli.term import paint_prefix, progress
    from slurmkit.results.parse import expand_paths, parse_paths
    from slurmkit.results.parsers.logfile import no_pandas
    from slurmkit.rundir import LOGS_DIR

    if paths:
        files = expand_paths(paths)
        run_dir = run_dir or _enclosing_run_dir(files)
    elif run_dir:
        files = expand_paths([Path(run_dir) / LOGS_DIR])
    else:
        raise click.UsageError("give log files, folders or globs (or --run-dir DIR)")
    check_output_path(out_dir, folder=True, option="--out")
    lines: list[str] = []

    def report(summary: dict) -> None:
        for warning in summary["warnings"]:
            lines.append(f"warning: {warning}")
        if summary["understood"]:
            lines.append(_summary_line(summary))

    try:
        # parsing only writes Parquet: this process need not pay for pyarrow's pandas import
        with no_pandas(), progress(len(files), "parsing") as bar:
            def tick(summary: dict) -> None:
                report(summary)
                bar.update(1)
            parse_paths(files, out_dir, fmt, warmup_steps, run_dir, on_done=tick)
    finally:
        for line in lines:  # after the bar, which holds the terminal's last line meanwhile
            warning = line.startswith("warning:")
            click.echo(paint_prefix(line, sys.stderr) if warning else line, err=warning)


def _enclosing_run_dir(files: list[Path]) -> str | None:
    """The run directory the logs lie in (``DIR/logs/`` beside ``DIR/plan.json``), so its plan,
    manifest and accounting (collect's sacct) join them as --run-dir would: re-parsing collected
    logs keeps each run's Slurm state, exit code and elapsed time. Logs of several run
    directories are refused (one --run-dir per call)."""
    from slurmkit.errors import ResultsError
    from slurmkit.rundir import run_dir_of

    found = sorted({d for f in files if (d := run_dir_of(f)) is not None})
    if len(found) > 1:
        raise ResultsError(f"the logs lie in {len(found)} run directories: {', '.join(map(str, found))}",
                           hint="parse one at a time: `slurmkit parse --run-dir DIR --out RESULTS`")
    if not found:
        return None
    click.echo(f"run directory: {found[0]} (its plan, manifest and accounting join the logs)", err=True)
    return str(found[0])
