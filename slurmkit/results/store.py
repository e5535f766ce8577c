"""The results store: two schema-versioned Parquet datasets, ``steps`` and ``runs``.

Layout (docs/contracts.md, "Results store")::

    RESULTS/runs/<batch>.parquet    one row per run of the batch: summary and parameters
    RESULTS/steps/<batch>.parquet   one row per (restart, step) of those runs, each run's rows
                                    in row groups of their own (run_id statistics let readers skip)

A batch is the runs of one write (``slurmkit parse`` writes up to 16 logs at once); its name
means one run set (batch_file_name: a lone run keeps run_file_name). Files are written to
hidden temporaries, then renamed in under an exclusive lock on ``RESULTS/.lock``, which also
rewrites every older batch that held one of the runs without it: re-parsing a run replaces its
rows, a reader never sees half a file, and two processes writing to one folder at once lose
nothing. A crash between the rename and that rewrite can leave a run in two files; parsing it
again heals that. Hidden (``.``) files are temporaries and are ignored by readers (pyarrow
datasets, DuckDB globs on *.parquet).

Every file's Parquet metadata carries ``slurmkit.schema_version``; readers refuse any other
version with "found X, required Y" and the command that rebuilds the folder.
"""
from __future__ import annotations

import bisect
import fcntl
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from slurmkit.errors import Location, ResultsError
from slurmkit.rundir import PARAMS

if TYPE_CHECKING:  # pandas is imported only by the readers (writers stay light and fast)
    import pandas as pd

# 2: the runs table gained the parameters container_image, software, recompute, parallel, lr and
# checkpoint_interval; files written before them are refused with the re-parse command.
SCHEMA_VERSION = 2
VERSION_KEY = b"slurmkit.schema_version"
TABLE_KEY = b"slurmkit.table"
FIX_COMMAND = "slurmkit parse --out {results} <logs>"

_STR, _INT, _FLOAT, _BOOL = pa.string(), pa.int64(), pa.float64(), pa.bool_()

# The run parameters' columns, typed from slurmkit.rundir.PARAMS (the one list of them).
_PARAM_COLUMN = {str: _STR, int: _INT, float: _FLOAT, bool: _BOOL}
PARAM_TYPES: dict[str, pa.DataType] = {key: _PARAM_COLUMN[p.type] for key, p in PARAMS.items()}


def _schema(name: str, fields: Iterable[tuple[str, pa.DataType]]) -> pa.Schema:
    meta = {VERSION_KEY: str(SCHEMA_VERSION).encode(), TABLE_KEY: name.encode()}
    return pa.schema([pa.field(n, t, nullable=True) for n, t in fields], metadata=meta)


STEPS_SCHEMA = _schema("steps", [
    ("run_id", _STR), ("restart", pa.int32()), ("step", _INT),
    ("time", pa.timestamp("ms", tz="UTC")),  # wall-clock time of the record when the log has one
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



def run_file_name(run_id: str) -> str:
    """The file name of a run in both folders: the run_id when it is filename-safe, else a
    sanitised prefix plus a hash (so distinct run_ids never collide)."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,180}", run_id):
        return f"{run_id}.parquet"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._")[:120] or "run"
    digest = hashlib.sha256(run_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{safe}-{digest}.parquet"


def batch_file_name(run_ids: Iterable[str]) -> str:
    """The file name of a set of runs in both folders: run_file_name for one run, else a hash
    of the sorted run_ids, so a name always means the same run set."""
    ids = sorted(set(run_ids))
    if len(ids) == 1:
        return run_file_name(ids[0])
    joined = "\0".join(ids).encode("utf-8", "surrogatepass")
    return f"batch-{hashlib.sha256(joined).hexdigest()[:24]}.parquet"


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


STEPS_BATCH_ROWS = 65536  # steps are converted and written in batches: bounded memory


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


# dictionaries only for the strings repeated on every row; statistics only for the key columns a
# reader filters on: a third less time to write a small run, and smaller
_STEPS_OPTIONS: dict[str, Any] = dict(compression="snappy", use_dictionary=["run_id", "source_file"],
                                      write_statistics=["run_id", "restart", "step"])
# a few rows: compression and dictionaries cost time and save nothing
_RUNS_OPTIONS: dict[str, Any] = dict(compression="none", use_dictionary=False, write_statistics=["run_id"])

# file name -> the run_ids it holds, learnt once per process: valid because a name always
# means the same run set (batch_file_name), whichever process wrote or rewrote the file
_RUN_SETS: dict[str, frozenset[str]] = {}


def write_run(results_dir: Path | str, run: dict[str, Any], steps: pa.Table) -> None:
    """Write (or replace) one run's rows: write_runs of one run (files named run_file_name)."""
    write_runs(results_dir, [(run, steps)])


def write_runs(results_dir: Path | str, items: list[tuple[dict[str, Any], pa.Table]]) -> None:
    """Write (or replace) a batch of runs: one steps file (each run's steps in row groups of
    their own, whose run_id statistics let readers skip) and one runs file, both named
    batch_file_name(run_ids). A run given twice keeps its last rows; ``steps`` may lack
    run_id/source_file (taken from the run) and any optional column.

    The files are built as hidden temporaries; then, under the folder's lock, they are renamed
    in (steps first, so a runs row never points at steps that are not there yet) and every
    older file holding one of these runs is rewritten without it, so nothing is duplicated and
    concurrent writers lose nothing."""
    runs: dict[str, tuple[dict[str, Any], pa.Table]] = {}
    for run, steps in items:
        if not run.get("run_id"):
            raise ValueError("run has no run_id")
        runs.pop(str(run["run_id"]), None)
        runs[str(run["run_id"])] = (run, steps)
    if not runs:
        return
    results_dir = Path(results_dir)
    name = batch_file_name(runs)
    rows = sum(steps.num_rows for _, steps in runs.values())
    temps: dict[str, Path] = {}
    try:
        temps["steps"] = _write_temp(results_dir / "steps" / name, STEPS_SCHEMA, _steps_batches(runs),
                                     in_memory=rows <= STEPS_BATCH_ROWS, **_STEPS_OPTIONS)
        temps["runs"] = _write_temp(results_dir / "runs" / name, RUNS_SCHEMA,
                                    [runs_table([run for run, _ in runs.values()])], in_memory=True,
                                    **_RUNS_OPTIONS)
        with _locked(results_dir):
            older = _files_holding(results_dir, runs.keys())
            older.pop(name, None)  # replaced by the rename itself
            for folder in ("steps", "runs"):
                os.replace(temps.pop(folder), results_dir / folder / name)
            _RUN_SETS[name] = frozenset(runs)
            for old_name, held in sorted(older.items()):
                _drop_runs(results_dir, old_name, held, runs.keys())
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)


def _steps_batches(runs: dict[str, tuple[dict[str, Any], pa.Table]]) -> Iterator[pa.Table]:
    """Each run's steps, conformed, in slices of at most STEPS_BATCH_ROWS (one row group each):
    bounded memory, and no row group mixes runs. A lone run keeps its row group when empty."""
    for run_id, (run, steps) in runs.items():
        if steps.num_rows or len(runs) == 1:
            for start in range(0, max(steps.num_rows, 1), STEPS_BATCH_ROWS):
                yield conform_steps(steps.slice(start, STEPS_BATCH_ROWS), run_id, run.get("source_file"))


@contextmanager
def _locked(results_dir: Path) -> Iterator[None]:
    """An exclusive lock on RESULTS/.lock, released when the descriptor closes."""
    results_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(results_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def _shared_lock(results_dir: Path) -> Iterator[None]:
    """A shared lock on RESULTS/.lock while a reader lists and reads the files, so a writer's
    renames and rewrites (under the exclusive lock) never show half done: no run missing or
    seen twice, no listed file gone. None when there is no lock file (no writer ever ran) or
    it cannot be opened (a read-only copy)."""
    try:
        fd = os.open(results_dir / ".lock", os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _files_holding(results_dir: Path, run_ids: Iterable[str]) -> dict[str, frozenset[str]]:
    """Name -> run set of the files (in either folder) that hold any of ``run_ids``. Called
    under the lock, so every listed file is complete."""
    wanted = set(run_ids)
    found: dict[str, frozenset[str]] = {}
    seen: set[str] = set()
    for folder in ("runs", "steps"):  # a name in both is learnt from its small runs file
        try:
            names = os.listdir(results_dir / folder)
        except FileNotFoundError:
            continue
        for name in names:
            if name.startswith(".") or not name.endswith(".parquet") or name in seen:
                continue
            seen.add(name)
            held = _RUN_SETS.get(name) or _named_run(name)
            if held is None:
                held = _read_run_ids(results_dir / folder / name)
                if folder == "runs":  # a steps file alone (a crash's leftover) may lack step-less runs
                    _RUN_SETS[name] = held
            if not held.isdisjoint(wanted):
                found[name] = held
    return found


_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,180}\.parquet")
_HASHED_NAME = re.compile(r".*-[0-9a-f]{12}\.parquet|batch-[0-9a-f]{24}\.parquet")


def _named_run(name: str) -> frozenset[str] | None:
    """The run of a file whose name can only be run_file_name(its stem), so a folder of
    single-run files is not read to learn what it holds; None for batch and hashed names."""
    if _SAFE_NAME.fullmatch(name) and not _HASHED_NAME.fullmatch(name):
        return frozenset([name[:-len(".parquet")]])
    return None


def _read_run_ids(path: Path) -> frozenset[str]:
    try:
        with pq.ParquetFile(path) as parquet:
            column = parquet.read(columns=["run_id"]).column(0)
    except (OSError, KeyError, pa.ArrowException) as exc:
        raise ResultsError(f"cannot read {path.name}: {exc}", location=Location(str(path)),
                           hint="remove it, or parse into an empty folder") from exc
    return frozenset(pc.unique(column).to_pylist())


def _drop_runs(results_dir: Path, name: str, held: frozenset[str], replaced: Iterable[str]) -> None:
    """Rewrite file ``name`` of both folders without the ``replaced`` runs, under the name of
    the runs left (steps first), then delete it; only delete it when no run is left."""
    kept = held - set(replaced)
    new_name = batch_file_name(kept) if kept else None
    gone = pa.array(sorted(held - kept), _STR)
    for folder, schema, options in (("steps", STEPS_SCHEMA, _STEPS_OPTIONS), ("runs", RUNS_SCHEMA, _RUNS_OPTIONS)):
        path = results_dir / folder / name
        if new_name and path.is_file():
            _write_atomic(results_dir / folder / new_name, schema, _rows_without(path, gone), **options)
    for folder in ("runs", "steps"):
        (results_dir / folder / name).unlink(missing_ok=True)
    if new_name:
        _RUN_SETS[new_name] = kept


def _rows_without(path: Path, run_ids: pa.Array) -> Iterator[pa.Table]:
    """A file's row groups without the rows of ``run_ids``; a group that keeps rows stays one."""
    with pq.ParquetFile(path) as parquet:
        for index in range(parquet.num_row_groups):
            group = parquet.read_row_group(index)
            kept = group.filter(pc.invert(pc.is_in(group.column("run_id"), value_set=run_ids)))
            if kept.num_rows:
                yield kept


def _write_atomic(path: Path, schema: pa.Schema, tables: Iterable[pa.Table], in_memory: bool = False,
                  **options: Any) -> None:
    os.replace(_write_temp(path, schema, tables, in_memory, **options), path)


def _write_temp(path: Path, schema: pa.Schema, tables: Iterable[pa.Table], in_memory: bool = False,
                **options: Any) -> Path:
    """Tables (one row group each) to a hidden temporary file beside ``path``; returns its path.

    A batch's files are mostly small, so per-file costs are most of the time of writing them:
    ``in_memory`` (for one batch of rows) builds the file in an Arrow buffer and writes it with
    one system call, without the Python file object Arrow otherwise writes through; larger
    files stream to the temporary file's open descriptor (no second open)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with open(fd, "wb") as fh:
            buffer = pa.BufferOutputStream() if in_memory else None
            with pq.ParquetWriter(fh if buffer is None else buffer, schema, **options) as writer:
                for table in tables:
                    writer.write_table(table)
            if buffer is not None:
                fh.write(buffer.getvalue())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def read_runs(results_dir: Path | str) -> pd.DataFrame:
    """Every run of a results folder, one row each, columns in RUNS_SCHEMA order."""
    return _read_dataset(Path(results_dir), "runs", RUNS_SCHEMA, None, None)


def read_steps(results_dir: Path | str, run_ids: Iterable[str] | None = None,
               columns: list[str] | None = None) -> pd.DataFrame:
    """Step rows of all runs (or of ``run_ids``), optionally only some ``columns``."""
    return _read_dataset(Path(results_dir), "steps", STEPS_SCHEMA, run_ids, columns)


def read_runs_table(results_dir: Path | str) -> pa.Table:
    """read_runs as a pyarrow Table (no pandas conversion)."""
    return _read_tables(Path(results_dir), "runs", RUNS_SCHEMA, None, None)


def _read_dataset(results_dir: Path, table: str, schema: pa.Schema,
                  run_ids: Iterable[str] | None, columns: list[str] | None) -> pd.DataFrame:
    import pandas as pd

    arrow = _read_tables(results_dir, table, schema, run_ids, columns)
    # Nullable pandas dtypes so a missing integer stays <NA> rather than turning into a float.
    nullable = {pa.int64(): pd.Int64Dtype(), pa.int32(): pd.Int32Dtype(), pa.bool_(): pd.BooleanDtype()}
    return arrow.to_pandas(types_mapper=nullable.get)


def _read_tables(results_dir: Path, table: str, schema: pa.Schema,
                 run_ids: Iterable[str] | None, columns: list[str] | None) -> pa.Table:
    folder = results_dir / table
    if not folder.is_dir():
        if not results_dir.is_dir():
            raise ResultsError(f"no results folder {results_dir}",
                               hint=f"create it with `{FIX_COMMAND.format(results=results_dir)}`")
        return schema.empty_table().select(columns or schema.names)
    if columns is not None:
        bad = [c for c in columns if c not in schema.names]
        if bad:
            raise ValueError(f"not {table} columns: {bad}")
    wanted = None if run_ids is None else sorted({str(r) for r in run_ids})
    with _shared_lock(results_dir):
        parts = [_read_checked(path, results_dir, columns, wanted) for path in _table_files(folder)] if wanted != [] else []
    if not parts:
        return schema.empty_table().select(columns or schema.names)
    return pa.concat_tables(parts).replace_schema_metadata(schema.metadata)


def _table_files(folder: Path) -> list[Path]:
    """Every file of a dataset folder: a run may sit in any batch, whatever its name."""
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def _read_checked(path: Path, results_dir: Path, columns: list[str] | None,
                  run_ids: list[str] | None) -> pa.Table:
    """One file (only the rows of the sorted ``run_ids`` when given), after checking its
    schema version; the footer is read once for both."""
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ResultsError(f"cannot read {path.name}: {exc}", location=Location(str(path)),
                           hint=f"re-create it with `{FIX_COMMAND.format(results=results_dir)}`") from exc
    with parquet:
        meta = parquet.schema_arrow.metadata or {}
        found = meta.get(VERSION_KEY, b"none").decode(errors="replace")
        if found != str(SCHEMA_VERSION):
            raise ResultsError(
                f"results schema version: found {found}, required {SCHEMA_VERSION}",
                location=Location(str(path)),
                hint=f"re-parse the logs with `{FIX_COMMAND.format(results=results_dir)}`")
        if run_ids is None:
            return parquet.read(columns=columns)
        groups = _groups_holding(parquet.metadata, parquet.schema_arrow.get_field_index("run_id"), run_ids)
        read = None if columns is None else list(dict.fromkeys([*columns, "run_id"]))
        part = parquet.read_row_groups(groups, columns=read) if groups else \
            parquet.schema_arrow.empty_table().select(read or parquet.schema_arrow.names)
        part = part.filter(pc.is_in(part.column("run_id"), value_set=pa.array(run_ids, _STR)))
        return part if columns is None else part.select(columns)


def _groups_holding(meta: pq.FileMetaData, column: int, run_ids: list[str]) -> list[int]:
    """Row groups whose run_id statistics (min/max) admit one of the sorted ``run_ids``; a
    group without statistics is kept."""
    groups = []
    for index in range(meta.num_row_groups):
        stats = meta.row_group(index).column(column).statistics
        if stats is not None and stats.has_min_max:
            first = bisect.bisect_left(run_ids, stats.min)
            if first == len(run_ids) or run_ids[first] > stats.max:
                continue
        groups.append(index)
    return groups
