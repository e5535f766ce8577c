"""`slurmkit store check|optimize|vacuum|upgrade`: care of a results folder (thin shell over
slurmkit.results.upkeep)."""
from __future__ import annotations

import click

_RESULTS = click.argument("results", type=click.Path(file_okay=False))


@click.group("store")
def store() -> None:
    """Check, compact, vacuum or upgrade a results store (Delta tables runs/ and steps/)."""


@store.command("check")
@_RESULTS
def check(results: str) -> None:
    """Read every data file; name damaged files, the runs they held and the logs to re-parse."""
    from slurmkit.errors import ResultsError
    from slurmkit.results import upkeep

    report = upkeep.check(results)
    problems = report.problems(results)
    if problems:
        raise ResultsError(f"{results}: {len(problems)} problem(s); the other runs read fine", problems=problems)
    click.echo(f"{results}: every data file reads")


@store.command("optimize")
@_RESULTS
def optimize(results: str) -> None:
    """Compact small data files (one commit per table; readers are not disturbed)."""
    from slurmkit.results import upkeep

    for name, removed in upkeep.optimize(results).items():
        click.echo(f"{name}: {removed} small files compacted")


@store.command("vacuum")
@_RESULTS
@click.option("--retention-hours", type=click.FloatRange(min=0), default=None,
              help="Keep files younger than this: writes under way and readers of recent versions "
                   "need them [default: 1]. 0 only when no parse runs.")
def vacuum(results: str, retention_hours: float | None) -> None:
    """Delete files no version needs: replaced by later commits, or of writes never committed."""
    from slurmkit.results import upkeep

    hours = upkeep.VACUUM_RETENTION_HOURS if retention_hours is None else retention_hours
    for name, deleted in upkeep.vacuum(results, hours).items():
        click.echo(f"{name}: {deleted} files deleted")


@store.command("upgrade")
@_RESULTS
def upgrade(results: str) -> None:
    """Rewrite an older results store (version 2: Parquet folders) as today's Delta tables."""
    from slurmkit.results import upkeep

    rows = upkeep.upgrade(results)
    if not rows:
        click.echo(f"{results}: already at the current version")
    for name, count in rows.items():
        click.echo(f"{name}: {count} rows rewritten")
