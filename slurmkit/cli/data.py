"""Data commands: prepare-data.

Only click and the standard library at module level; library code is imported inside the
command so `slurmkit --help` stays fast.
"""
from __future__ import annotations

from pathlib import Path

import click

DATASETS = ("dolly", "alpaca")


@click.command("prepare-data")
@click.argument("dataset", type=click.Choice(DATASETS))
@click.argument("input_file", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder to write training.jsonl and validation.jsonl to "
                   "(the jobs read <datasets mount>/DATASET).")
@click.option("--validation-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.05, show_default=True, help="Share of the records held out for validation.")
@click.option("--seed", type=int, default=1234, show_default=True,
              help="Seed of the split: the same input and seed give the same files.")
def prepare_data(dataset: str, input_file: Path, out_dir: Path, validation_fraction: float, seed: int) -> None:
    """Turn databricks-dolly-15k (JSONL) or Stanford Alpaca's alpaca_data.json (a JSON array)
    into the JSONL files NeMo's fine-tuning script reads, split into training and validation."""
    from slurmkit.atomic import check_output_path
    from slurmkit.plan.finetune_data import prepare, write_prepared

    check_output_path(out_dir, folder=True, option="--out")
    prepared = prepare(dataset, input_file, validation_fraction, seed)
    training, validation = write_prepared(prepared, out_dir)
    click.echo(f"wrote {training} ({_records(len(prepared.training))}) and {validation} "
               f"({_records(len(prepared.validation))}) from {_records(prepared.records)} of {input_file}; "
               f"dropped {prepared.dropped_empty:,} with an empty response")


def _records(count: int) -> str:
    return f"{count:,} record" + ("" if count == 1 else "s")
