"""The results store: two Delta Lake tables, ``runs`` and ``steps``, under a results folder.

Layout (docs/contracts.md, "Results store")::

    RESULTS/runs/    one row per run: summary and parameters            (a Delta table)
    RESULTS/steps/   one row per (restart, step) of those runs          (a Delta table)

A write (``slurmkit parse`` writes its logs in groups of up to 16) is two commits: the steps of
its runs first, then their runs rows, each a replace-where overwrite by run id (delta.py), so
re-parsing a run replaces its rows and a commit shows all of a write or none of it. Readers
anchor on the runs table: a run is there only once its steps were committed, and read_steps
keeps the steps of committed runs only, so a reader never sees a run whose steps are missing or
doubled, whatever moment a writer was killed at (its steps alone are invisible; the rerun
replaces them). Two writers at once both land: a commit that loses the race is redone.

Both tables carry ``slurmkit.schema_version`` in their Delta configuration; readers refuse any
other version (and the Parquet folders of version 2) with "found X, required Y" and the command
that upgrades the folder (slurmkit.results.upkeep). A damaged data file never blocks the rest:
readers return every readable run and name the unreadable ones (``unreadable(frame)``).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from slurmkit.errors import Location, ResultsError
from slurmkit.results import delta
from slurmkit.results.delta import Damaged
from slurmkit.rundir import PARAMS

if TYPE_CHECKING:  # pandas and deltalake are imported by the functions that need them
    import pandas as pd
    from deltalake import DeltaTable

# 3: Delta Lake tables (2: folders of Parquet files, each with the version in its metadata).
SCHEMA_VERSION = 3
VERSION_KEY = b"slurmkit.schema_version"
TABLE_KEY = b"slurmkit.table"
FIX_COMMAND = "slurmkit parse --out {results} <logs>"
UPGRADE_COMMAND = "slurmkit store upgrade {results}"
TABLES = ("runs", "steps")

_STR, _INT, _FLOAT, _BOOL = pa.string(), pa.int64(), pa.float64(), pa.bool_()

# The run parameters' columns, typed from slurmkit.rundir.PARAMS (the one list of them).
_PARAM_COLUMN = {str: _STR, int: _INT, float: _FLOAT, bool: _BOOL}
PARAM_TYPES: dict[str, pa.DataType] = {key: _PARAM_COLUMN[p.type] for key, p in PARAMS.items()}


def _schema(name: str, fields: Iterable[tuple[str, pa.DataType]]) -> pa.Schema:
    meta = {VERSION_KEY: str(SCHEMA_VERSION).encode(), TABLE_KEY: name.encode()}
    return pa.schema([pa.field(n, t, nullable=True) for n, t in fields], metadata=meta)


STEPS_SCHEMA = _schema("steps", [
    ("run_id", _STR), ("restart", pa.int32()), ("step", _INT),
    ("time", pa.timestamp("us", tz="UTC")),  # wall-clock time of the record when the log has one (Delta: microseconds)
    ("step_time_s", _FLOAT), ("loss", _FLOAT), ("lr", _FLOAT), ("grad_norm", _FLOAT),
    ("consumed_samples", _INT), ("tokens_per_s_per_gpu", _FLOAT), ("tflops_per_gpu", _FLOAT),
    ("mem_gib", _FLOAT), ("source_file", _STR), ("source_line", _INT),
])

# `warmup_steps` is both a params key and the measurement window actually applied; the column
# holds the applied value (the params value unless `--warmup-steps` overrode it).
_RUN_HEAD = [("run_id", _STR), ("job_id", _STR), ("source_format", _STR), ("source_file", _STR)]
_RUN_TAIL = [
    ("steps_completed", _INT), ("steps_target", _INT), ("last_step", _INT), ("restarts", _INT),
    ("status", _STR), ("failure_reason", _STR), ("failure_evidence", _STR),
    ("step_time_mean_s", _FLOAT), ("step_time_median_s", _FLOAT), ("step_time_p95_s", _FLOAT),
    ("step_time_std_s", _FLOAT), ("time_to_target_s", _FLOAT),
    ("tokens_per_s_per_gpu", _FLOAT), ("tflops_per_gpu", _FLOAT), ("tflops_formula", _STR),
    ("mfu", _FLOAT), ("final_loss", _FLOAT),
    ("slurm_state", _STR), ("slurm_exit_code", _STR), ("slurm_elapsed_s", _FLOAT),
    ("slurm_nodelist", _STR),
    ("driver_version", _STR), ("nccl_version", _STR), ("cuda_version", _STR),
    ("parse_warnings", _INT),
]
RUNS_SCHEMA = _schema("runs", _RUN_HEAD + list(PARAM_TYPES.items()) + _RUN_TAIL)

RUN_STATUSES = ("completed", "incomplete", "failed")  # failure_reason: slurmkit.rundir.FAILURE_REASONS



def runs_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (dicts keyed by RUNS_SCHEMA names; missing keys are null) as a typed runs table."""
    unknown = {k for row in rows for k in row} - set(RUNS_SCHEMA.names)
    if unknown:
        raise ValueError(f"not runs columns: {sorted(unknown)}")
    return pa.Table.from_pylist([{name: None if (v := row.get(name)) is None else to_py(v)
                                  for name, to_py in _RUN_COERCE} for row in rows], schema=RUNS_SCHEMA)


def _to_int(value: Any) -> int | None:
    """None and NaN stay null in integer columns."""
    return None if isinstance(value, float) and value != value else int(value)


def _coercer(dtype: pa.DataType) -> Any:
    """The function that brings a JSON-ish scalar to a column's Python type."""
    if pa.types.is_integer(dtype):
        return _to_int
    if pa.types.is_floating(dtype):
        return float
    if pa.types.is_boolean(dtype):
        return bool
    return str if pa.types.is_string(dtype) else (lambda value: value)


# one coercer per runs column, chosen once (runs_table is called once per parsed log)
_RUN_COERCE = [(f.name, _coercer(f.type)) for f in RUNS_SCHEMA]




def conform_steps(steps: pa.Table, run_id: str, source_file: str | None = None) -> pa.Table:
    """Cast a steps table to STEPS_SCHEMA: missing columns become null; run_id (and
    source_file, when the table has none) are filled in."""
    n = steps.num_rows
    fill = {"run_id": run_id, "source_file": source_file}
    columns = {}
    for field in STEPS_SCHEMA:
        if field.name in fill and (field.name == "run_id" or field.name not in steps.column_names):
            value = fill[field.name]
            columns[field.name] = pa.nulls(n, _STR) if value is None else pa.repeat(pa.scalar(value, _STR), n)
        elif field.name in steps.column_names:
            column = steps.column(field.name)
            columns[field.name] = column if column.type == field.type else column.cast(field.type)
        else:
            columns[field.name] = pa.nulls(n, type=field.type)
    return pa.table(columns, schema=STEPS_SCHEMA)



STEPS_BATCH_ROWS = 65536  # steps are converted and written in batches: bounded memory
COMPACT_FILES = 64        # a table with more data files than this is compacted after a write
# statistics only on the key columns readers filter on (Delta's default: the first 32 columns)
TABLE_PROPERTIES = {"runs": {"delta.dataSkippingStatsColumns": "run_id"},
                    "steps": {"delta.dataSkippingStatsColumns": "run_id,restart,step"}}


def write_run(results_dir: Path | str, run: dict[str, Any], steps: pa.Table) -> None:
    """Write (or replace) one run's rows: write_runs of one run."""
    write_runs(results_dir, [(run, steps)])


def write_runs(results_dir: Path | str, items: list[tuple[dict[str, Any], pa.Table]]) -> None:
    """Write (or replace) a batch of runs: one commit to the steps table, then one to the runs
    table, each replacing every earlier row of these run ids. A run given twice keeps its last
    rows; ``steps`` may lack run_id/source_file (taken from the run) and any optional column.
    Past COMPACT_FILES data files, a table is compacted (upkeep.optimize)."""
    runs: dict[str, tuple[dict[str, Any], pa.Table]] = {}
    for run, steps in items:
        if not run.get("run_id"):
            raise ValueError("run has no run_id")
        runs.pop(str(run["run_id"]), None)
        runs[str(run["run_id"])] = (run, steps)
    if not runs:
        return
    results_dir = Path(results_dir)
    rows = runs_table([run for run, _ in runs.values()])  # checks the columns before any commit
    written = {name: delta.replace_runs(results_dir / name, partial(_writable, results_dir, name), data,
                                        runs.keys(), _writer_properties(), schema)
               for name, schema, data in (("steps", STEPS_SCHEMA, lambda: _steps_stream(runs)),
                                          ("runs", RUNS_SCHEMA, lambda: rows))}
    if any(len(table.file_uris()) > COMPACT_FILES for table in written.values()):
        from slurmkit.results import upkeep

        upkeep.compact_if_needed(results_dir, COMPACT_FILES)


def _steps_stream(runs: dict[str, tuple[dict[str, Any], pa.Table]]) -> pa.RecordBatchReader:
    """Each run's steps, conformed, in batches of at most STEPS_BATCH_ROWS: bounded memory."""
    schema = STEPS_SCHEMA.remove_metadata()

    def batches() -> Iterator[pa.RecordBatch]:
        for run_id, (run, steps) in runs.items():
            for start in range(0, steps.num_rows, STEPS_BATCH_ROWS):
                part = conform_steps(steps.slice(start, STEPS_BATCH_ROWS), run_id, run.get("source_file"))
                yield from part.replace_schema_metadata(None).to_batches()
    return pa.RecordBatchReader.from_batches(schema, batches())


def _writer_properties() -> Any:
    from deltalake import WriterProperties

    return WriterProperties(compression="SNAPPY")


def _writable(results_dir: Path, name: str) -> DeltaTable:
    table = open_table(results_dir, name, create=True)
    assert table is not None  # created when missing
    return table


def open_table(results_dir: Path, name: str, create: bool = False) -> DeltaTable | None:
    """Table ``name`` of a results folder, its schema version checked; None when it has none
    (created instead with ``create``). A folder of version-2 Parquet files is refused."""
    path = results_dir / name
    table = delta.load(path)
    if table is None:
        legacy = legacy_version(path)
        if legacy is not None:
            _refuse(legacy, results_dir, path)
        if not create:
            return None
        schema = STEPS_SCHEMA if name == "steps" else RUNS_SCHEMA
        table = delta.create(path, schema, name, SCHEMA_VERSION, TABLE_PROPERTIES[name])
    found = delta.table_version(table)
    if found != str(SCHEMA_VERSION):
        _refuse(found, results_dir, path)
    return table


def legacy_version(path: Path) -> str | None:
    """The schema version of a version-2 folder of Parquet files (no Delta log), else None."""
    import pyarrow.parquet as pq

    if (path / "_delta_log").is_dir() or not path.is_dir():
        return None
    files = sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))
    if not files:
        return None
    try:
        meta = pq.read_schema(files[0]).metadata or {}
    except (OSError, pa.ArrowException):
        return "2 (Parquet files)"
    return meta.get(VERSION_KEY, b"none").decode(errors="replace") + " (Parquet files)"


def _refuse(found: str, results_dir: Path, path: Path) -> None:
    raise ResultsError(f"results schema version: found {found}, required {SCHEMA_VERSION}",
                       location=Location(str(path)),
                       hint=f"upgrade the folder with `{UPGRADE_COMMAND.format(results=results_dir)}`")


def read_runs(results_dir: Path | str) -> pd.DataFrame:
    """Every readable run of a results folder, one row each, columns in RUNS_SCHEMA order;
    ``unreadable(frame)`` lists the damaged files and the runs they held."""
    table, damaged = _read_runs(Path(results_dir), None)
    return _frame(table, damaged)


def read_runs_table(results_dir: Path | str) -> pa.Table:
    """read_runs as a pyarrow Table (no pandas conversion; damaged files are left out)."""
    return _read_runs(Path(results_dir), None)[0]


def read_steps(results_dir: Path | str, run_ids: Iterable[str] | None = None,
               columns: list[str] | None = None) -> pd.DataFrame:
    """Step rows of all committed runs (or of ``run_ids``), optionally only some ``columns``;
    ``unreadable(frame)`` lists damaged files and the runs whose steps they held."""
    results_dir = Path(results_dir)
    _check_columns("steps", STEPS_SCHEMA, columns)
    if run_ids is None:  # the runs table says which runs are committed (see the module docstring)
        wanted = sorted(set(_read_runs(results_dir, ["run_id"])[0].column("run_id").to_pylist()))
    else:
        wanted = sorted({str(r) for r in run_ids})
        _folder_exists(results_dir)
    table = open_table(results_dir, "steps")
    if table is None or not wanted:
        return _frame(_empty(STEPS_SCHEMA, columns), [])
    read = None if columns is None else list(dict.fromkeys([*columns, "run_id"]))
    import pyarrow.dataset as pads  # here: writers (parse) never load it, nor the pandas it loads

    part, damaged = delta.read(table, "steps", read, pads.field("run_id").isin(wanted))
    delta.runs_held(table, damaged, wanted)
    part = _typed(part, STEPS_SCHEMA)
    return _frame(part if columns is None else part.select(columns), damaged)


def unreadable(frame: pd.DataFrame) -> list[Damaged]:
    """The damaged files a read_runs/read_steps frame left out, with the runs they held."""
    return list(frame.attrs.get("unreadable", []))


def unreadable_note(damaged: list[Damaged], results_dir: Path | str, lost: Iterable[str] = ()) -> str:
    """One line for readers of a damaged store: the runs left out, the files, the remedy."""
    runs = sorted({r for item in damaged for r in item.run_ids} | set(lost))
    files = sorted({Path(item.file).name for item in damaged})
    what = f"runs left out: {', '.join(runs)}" if runs else "the runs they held are not known"
    where = f" ({len(files)} damaged data file(s): {', '.join(files)})" if files else ""
    return (f"{len(runs)} run(s) could not be read{where}; {what}. "
            f"`slurmkit store check {results_dir}` names the logs to re-parse, which heals the store.")


def _read_runs(results_dir: Path, columns: list[str] | None) -> tuple[pa.Table, list[Damaged]]:
    _folder_exists(results_dir)
    table = open_table(results_dir, "runs")
    if table is None:
        return _empty(RUNS_SCHEMA, columns), []
    part, damaged = delta.read(table, "runs", columns, None)
    if damaged:  # the runs a damaged runs file held: those whose steps are committed, minus the readable
        steps = open_table(results_dir, "steps")
        ids = delta.read(steps, "steps", ["run_id"], None)[0].column("run_id") if steps else pa.array([], pa.string())
        readable = set(part.column("run_id").to_pylist()) if "run_id" in part.column_names else set()
        delta.runs_held(table, damaged, set(ids.unique().to_pylist()) - readable)
    if "run_id" in part.column_names:  # one order whatever the files' (as the readers of version 2)
        part = part.sort_by("run_id")
    return _typed(part, RUNS_SCHEMA), damaged


def _folder_exists(results_dir: Path) -> None:
    if not results_dir.is_dir():
        raise ResultsError(f"no results folder {results_dir}",
                           hint=f"create it with `{FIX_COMMAND.format(results=results_dir)}`")


def _check_columns(name: str, schema: pa.Schema, columns: list[str] | None) -> None:
    bad = [c for c in columns or [] if c not in schema.names]
    if bad:
        raise ValueError(f"not {name} columns: {bad}")


def _empty(schema: pa.Schema, columns: list[str] | None) -> pa.Table:
    return schema.empty_table().select(columns or schema.names)


def _typed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A read table in the declared types, columns and metadata (Delta may widen a type)."""
    target = pa.schema([schema.field(n) for n in table.column_names], metadata=schema.metadata)
    return table if table.schema.equals(target, check_metadata=True) else table.cast(target)


def _frame(table: pa.Table, damaged: list[Damaged]) -> pd.DataFrame:
    import pandas as pd

    # Nullable pandas dtypes so a missing integer stays <NA> rather than turning into a float.
    nullable = {pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int32Dtype(), pa.bool_(): pd.BooleanDtype()}
    frame = table.to_pandas(types_mapper=nullable.get)
    frame.attrs["unreadable"] = damaged
    return frame
