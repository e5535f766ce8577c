"""The command line: a thin shell over the library API.

Commands are loaded lazily from their own modules, so ``slurmkit --help`` and ``slurmkit
generate`` never import pandas, pyarrow or matplotlib (they run on login nodes). Command
modules import only click at module level; library code is imported inside the command body.
This is the one place that turns a ``SlurmkitError`` into one line per problem and exit code 2.
"""
from __future__ import annotations

import importlib
import sys

import click

from slurmkit import __version__
from slurmkit.errors import SlurmkitError

# name -> (module, attribute, one-line help shown by `slurmkit --help` without importing it)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "generate": ("slurmkit.cli.config", "generate", "Validate an experiment and write plan.json and sbatch scripts."),
    "validate": ("slurmkit.cli.config", "validate", "Check experiments and site configs; report every problem."),
    "sites": ("slurmkit.cli.config", "sites", "List or show site configs."),
    "models": ("slurmkit.cli.config", "models", "List the model catalogue with parameter counts."),
    "schema": ("slurmkit.cli.config", "schema", "Print the JSON Schema of site or experiment files."),
    "estimate": ("slurmkit.cli.estimate", "estimate", "Predict step time, memory, checkpoint time and cost of a sweep (ESTIMATED)."),
    "submit": ("slurmkit.cli.slurm", "submit", "Submit a run directory's scripts with sbatch."),
    "status": ("slurmkit.cli.slurm", "status", "Show the state of every job of a run directory."),
    "cancel": ("slurmkit.cli.slurm", "cancel", "Cancel a run directory's jobs."),
    "collect": ("slurmkit.cli.slurm", "collect", "Gather logs and accounting into the run directory, then parse."),
    "parse": ("slurmkit.cli.parse", "parse", "Parse training logs into the Parquet results store."),
    "store": ("slurmkit.cli.store", "store", "Check, compact, vacuum or upgrade a results store."),
    "compare": ("slurmkit.cli.report", "compare", "Compare runs that differ in one field (site, adapters...)."),
    "report": ("slurmkit.cli.report", "report", "Write the HTML (and PDF) report of a results folder."),
    "demo": ("slurmkit.cli.report", "demo", "Run the whole pipeline offline on shipped material."),
    "prepare-data": ("slurmkit.cli.data", "prepare_data", "Turn Dolly or Alpaca into the fine-tuning jobs' JSONL files."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attr, _ = COMMANDS[cmd_name]
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="slurmkit")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """slurmkit: benchmark LLM training on Slurm clusters.

    site configs + experiment -> plan -> sbatch scripts -> submit/track -> logs -> Parquet ->
    comparisons -> HTML/PDF reports.
    """
    ctx.obj = {"debug": debug}


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user errors into one-line messages and exit code 2."""
    args = sys.argv[1:] if argv is None else argv
    try:
        cli.main(args=args, prog_name="slurmkit", standalone_mode=False)
    except SlurmkitError as exc:
        if "--debug" in args:
            raise
        from slurmkit.cli.term import paint_prefix

        for line in exc.lines():
            click.echo(paint_prefix(line, sys.stderr), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
