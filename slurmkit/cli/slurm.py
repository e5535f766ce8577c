"""`slurmkit submit | status | cancel | collect`: thin shells over submit, track and collect.

Only click and the standard library at module level; library code is imported in each command.
`collect` is the one place that joins the halves: after gathering accounting it runs the parser
(slurmkit.results.parse.parse_paths) on the collected logs, with the run directory for parameters.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from slurmkit.cli.listing import format_option, print_rows

if TYPE_CHECKING:  # imported inside the commands at run time (start-up time)
    from slurmkit.slurm.client import SlurmCli
    from slurmkit.slurm.track import StatusReport

RUN_DIR = click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))


def _client() -> SlurmCli:
    from slurmkit.slurm.client import SlurmCli
    return SlurmCli()


@click.command()
@RUN_DIR
@click.option("--dry-run", is_flag=True, help="Print the sbatch commands; submit nothing.")
@click.option("--only", "only", multiple=True, metavar="RUN_ID", help="Submit only these runs (repeatable).")
@click.option("--test-only", is_flag=True, help="Ask the controller whether each job is feasible; submit nothing.")
@click.option("--chain", is_flag=True, help="Run the jobs one after another (--dependency=afterany).")
@click.option("--resubmit", type=click.Choice(["failed"]), help="Also resubmit runs whose job failed.")
def submit(run_dir: Path, dry_run: bool, only: tuple[str, ...], test_only: bool, chain: bool,
           resubmit: str | None) -> None:
    """Submit RUN_DIR's scripts with sbatch; runs already submitted are skipped."""
    from slurmkit.errors import Problem, SlurmError
    from slurmkit.slurm.submit import submit_plan

    report = submit_plan(run_dir, _client(), only=only, dry_run=dry_run, test_only=test_only,
                         chain=chain, resubmit_failed=resubmit == "failed")
    for line in report.commands:
        click.echo(line)
    for run_id, message in report.feasibility.items():
        click.echo(f"{run_id}: feasible: {message}")
    if test_only:  # sbatch --test-only names a job number and start time no real job will have
        click.echo("note: --test-only submitted nothing; its job numbers and start times are sbatch's "
                   "estimates, and the real submission gets its own job ids", err=True)
    for record in report.submitted:
        click.echo(f"{record.run_id}: submitted job {record.job_id}")
    if report.skipped:
        click.echo(f"{len(report.skipped)} already submitted (skipped)")
    problems = [f"{run_id}: infeasible: {msg}" for run_id, msg in report.infeasible.items()]
    problems += [f"{r.run_id}: {r.error}" for r in report.failed]
    if report.not_attempted:
        problems.append(f"controller unreachable; not submitted: {', '.join(report.not_attempted)} "
                        "(rerun `slurmkit submit` later)")
    if problems:
        raise SlurmError(problems[0], problems=[Problem(p) for p in problems])


def _state_colour(state: str) -> str | None:
    from slurmkit.rundir import ACTIVE_STATES, FAILED_STATES, SUBMIT_FAILED

    if state == "COMPLETED":
        return "green"
    if state in FAILED_STATES or state == SUBMIT_FAILED:
        return "red"
    return "yellow" if state in ACTIVE_STATES else None


def _status_table(report: StatusReport) -> str:
    from slurmkit.cli.term import paint

    rows = [("RUN_ID", "JOB_ID", "STATE", "EXIT", "NODES")]
    rows += [(r.run_id, r.job_id or "-", r.state, r.exit_code or "-", r.nodelist or "-")
             for r in report.records.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    # padded first, coloured after: escape codes take no columns
    lines = ["  ".join(paint(c.ljust(w), _state_colour(c) if i == 2 and n else None)
                       for i, (c, w) in enumerate(zip(row, widths))).rstrip()
             for n, row in enumerate(rows)]
    summary = ", ".join(f"{n} {state}" for state, n in report.counts().items()) or "no jobs"
    source = "squeue + sacct" if report.accounting else \
        "accounting unavailable: squeue and scontrol only; purged jobs show UNKNOWN"
    return "\n".join(lines + [f"{len(report.records)} runs: {summary} ({source})"])


@click.command()
@RUN_DIR
@click.option("--watch", is_flag=True, help="Refresh until every job has finished.")
@click.option("--interval", "interval_s", default=10.0, show_default=True, help="Seconds between refreshes with --watch.")
@format_option()
def status(run_dir: Path, watch: bool, interval_s: float, fmt: str) -> None:
    """Show the state of every job of RUN_DIR (one squeue and one sacct call).

    With --watch on a terminal the table is redrawn in place; into a pipe or file a table is
    printed again only when it changed."""
    from dataclasses import asdict

    from slurmkit.cli.term import Screen
    from slurmkit.slurm.track import refresh

    client = _client()
    screen = Screen()
    while True:
        report = refresh(run_dir, client)
        if not report.records and fmt == "table":
            click.echo(f"nothing submitted from {run_dir} yet (slurmkit submit {run_dir})")
            return
        if fmt == "json":
            click.echo(json.dumps({"accounting": report.accounting,
                                   "jobs": [asdict(r) for r in report.records.values()]}))
        elif fmt == "csv":
            print_rows(("run_id", "job_id", "state", "exit_code", "nodelist"),
                       [(r.run_id, r.job_id, r.state, r.exit_code, r.nodelist) for r in report.records.values()], fmt)
        else:
            screen.show(_status_table(report))
        if not watch or report.done:
            return
        time.sleep(interval_s)


@click.command()
@RUN_DIR
@click.argument("run_ids", nargs=-1)
def cancel(run_dir: Path, run_ids: tuple[str, ...]) -> None:
    """Cancel RUN_DIR's unfinished jobs (or only RUN_IDS)."""
    from slurmkit.slurm.track import cancel as cancel_jobs

    cancelled = cancel_jobs(run_dir, _client(), run_ids)
    for record in cancelled:
        click.echo(f"{record.run_id}: cancelled job {record.job_id}")
    if not cancelled:
        click.echo("nothing to cancel")


@click.command()
@RUN_DIR
@click.option("--results", type=click.Path(path_type=Path),
              help="Results folder for the parser (default: RUN_DIR/results).")
@click.option("--no-parse", is_flag=True, help="Only gather accounting and logs.")
def collect(run_dir: Path, results: Path | None, no_parse: bool) -> None:
    """Gather RUN_DIR's accounting and logs, then parse the logs into Parquet."""
    from slurmkit.atomic import check_output_path
    from slurmkit.slurm.collect import collect as collect_run

    if results is not None:
        check_output_path(results, folder=True, option="--results")
    report = collect_run(run_dir, _client())
    if report.accounting_file is None:
        click.echo(f"nothing submitted from {run_dir} yet (slurmkit submit {run_dir})")
        return
    if report.accounting_file:
        click.echo(f"accounting: {report.accounting_file}")
    if not report.accounting:
        click.echo("accounting unavailable: stored `scontrol show job` instead")
    click.echo(f"logs: {len(report.logs)} found, {len(report.missing_logs)} missing")
    for run_id in report.unfinished:
        click.echo(f"{run_id}: still running; collect again when it ends")
    if report.pending_accounting:
        click.echo(f"sacct has no final record yet for jobs {', '.join(report.pending_accounting)}; "
                   "collect again in a minute")
    if no_parse or not report.logs:
        return
    _parse(run_dir, report.logs, results or run_dir / "results")


def _parse(run_dir: Path, logs: list[Path], results: Path) -> None:
    """Run the data half's parser on the collected logs (the CLI is where the halves meet)."""
    from slurmkit.cli.term import progress
    from slurmkit.results.parse import parse_paths

    with progress(len(logs), "parsing") as bar:
        summaries = parse_paths(logs, results, run_dir=run_dir, on_done=lambda _: bar.update(1))
    for summary in summaries:
        loss = summary.get("final_loss")
        click.echo(f"parsed {summary['run_id']}: {summary['status']}, last step "
                   f"{summary.get('last_step')}, final loss {'-' if loss is None else f'{loss:.4f}'}")
    click.echo(f"results: {results}")
