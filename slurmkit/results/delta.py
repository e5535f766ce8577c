"""The Delta Lake mechanics under the results store: open or create a table, replace rows by
run id in one commit (retried on conflicts), read tolerating damaged data files, and set
damaged files aside.

Each table is a folder with a ``_delta_log``: data files are plain Parquet and only count once
a commit (an atomic file create in the log) names them, so a writer killed at any moment leaves
at most files no version names (``slurmkit store vacuum`` removes them) and readers always see
one committed version. The store (slurmkit.results.store) decides what to write; this module
only knows tables, run ids and files.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:  # deltalake and pyarrow.dataset are imported where used (start-up time)
    import pyarrow.dataset as pads
    from deltalake import DeltaTable
    from deltalake.transaction import AddAction

VERSION_PROPERTY = "slurmkit.schema_version"
COMMIT_ATTEMPTS = 40          # optimistic concurrency: a conflicting commit is redone on a fresh snapshot
_READ_ERRORS = (OSError, pa.ArrowException)


@dataclass
class Damaged:
    """A data file of a table that cannot be read, and the runs whose rows it may hold."""

    table: str
    file: str
    error: str
    run_ids: list[str] = field(default_factory=list)


def sql_string(value: str) -> str:
    """A SQL string literal (delta-rs predicates): quotes doubled, so any run id is inert."""
    return "'" + value.replace("'", "''") + "'"


def run_predicate(run_ids: Iterable[str]) -> str:
    return f"run_id IN ({', '.join(sql_string(r) for r in sorted(set(run_ids)))})"


def load(path: Path) -> DeltaTable | None:
    """The latest version of the table at ``path``; None when no commit exists yet."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    if not (path / "_delta_log").is_dir():
        return None
    try:
        return DeltaTable(str(path))
    except TableNotFoundError:  # a log folder without a first commit (a creator killed early)
        return None


def create(path: Path, schema: pa.Schema, name: str, version: int,
           properties: dict[str, str]) -> DeltaTable:
    """Create the table (or return the one a concurrent creator just made)."""
    from deltalake import DeltaTable

    path.mkdir(parents=True, exist_ok=True)
    config = {VERSION_PROPERTY: str(version), **properties}
    for _ in range(COMMIT_ATTEMPTS):
        table = load(path)
        if table is not None:
            return table
        try:
            return DeltaTable.create(str(path), schema.remove_metadata(), mode="ignore", name=name,
                                     configuration=config, raise_if_key_not_exists=False)
        except Exception:  # version 0 written by another process between the two calls
            _pause(0)
    raise RuntimeError(f"cannot create the Delta table {path}")


def table_version(table: DeltaTable) -> str:
    return table.metadata().configuration.get(VERSION_PROPERTY) or "none"


def replace_runs(path: Path, open_table: Callable[[], DeltaTable], data: Callable[[], Any],
                 run_ids: Iterable[str], writer_properties: Any, schema: pa.Schema) -> DeltaTable:
    """Replace every row of ``run_ids`` with ``data()`` (an Arrow table or stream) in one
    commit: a replace-where overwrite, so readers see the old rows or the new, never both or
    neither. A commit that loses a race with another writer is redone on a fresh snapshot; a
    damaged data file in the way is set aside first (set_aside). Returns the table as committed."""
    from deltalake import CommitProperties, write_deltalake
    from deltalake.exceptions import CommitFailedError, DeltaError

    predicate = run_predicate(run_ids)
    for attempt in range(COMMIT_ATTEMPTS):
        table = open_table()
        try:
            write_deltalake(table, data(), mode="overwrite", predicate=predicate,
                            writer_properties=writer_properties,
                            commit_properties=CommitProperties(max_commit_retries=0))
            return table
        except CommitFailedError:
            _pause(attempt)
        except DeltaError as exc:
            if not _is_conflict(exc):
                if not set_aside(path, table, schema):
                    raise
            _pause(attempt)
    raise RuntimeError(f"{path}: no commit after {COMMIT_ATTEMPTS} attempts (other writers kept winning)")


def _is_conflict(exc: Exception) -> bool:
    text = str(exc).lower()
    return "conflict" in text or "concurrent" in text or "already exists" in text


def _pause(attempt: int) -> None:
    time.sleep(random.uniform(0.005, 0.02) * min(2 ** attempt, 32))


def read(table: DeltaTable, name: str, columns: list[str] | None,
         filter_: pads.Expression | None) -> tuple[pa.Table, list[Damaged]]:
    """The rows of one version: one scan, or file by file when a file is damaged (the readable
    files' rows and the damaged files)."""
    dataset = table.to_pyarrow_dataset()
    try:
        return dataset.to_table(columns=columns, filter=filter_), []
    except _READ_ERRORS:
        pass
    parts, damaged = [], []
    for fragment in dataset.get_fragments():
        try:
            parts.append(fragment.to_table(columns=columns, filter=filter_, schema=dataset.schema))
        except _READ_ERRORS as exc:
            damaged.append(Damaged(name, _file(table, fragment.path), _first_line(exc)))
    empty = dataset.schema.empty_table()
    empty = empty if columns is None else empty.select(columns)
    return (pa.concat_tables(parts) if parts else empty), damaged


def damaged_files(table: DeltaTable, name: str) -> list[Damaged]:
    """Every data file of the version that cannot be read in full (a complete check)."""
    dataset = table.to_pyarrow_dataset()
    found = []
    for fragment in dataset.get_fragments():
        try:
            fragment.to_table(schema=dataset.schema)
        except _READ_ERRORS as exc:
            found.append(Damaged(name, _file(table, fragment.path), _first_line(exc)))
    return found


def _file(table: DeltaTable, path: str) -> str:
    """A data file's path on disk (the dataset names them relative to the table)."""
    root = table.table_uri.removeprefix("file://")
    return path if path.startswith("/") or "://" in path else str(Path(root) / path)


def run_ranges(table: DeltaTable) -> dict[str, tuple[str | None, str | None]]:
    """File name -> (min, max) run_id of its rows, from the commit statistics (readable even
    when the file is not)."""
    actions = pa.table(table.get_add_actions(flatten=True)).to_pydict()
    lows = actions.get("min.run_id") or [None] * len(actions["path"])
    highs = actions.get("max.run_id") or [None] * len(actions["path"])
    return {Path(p).name: (lo, hi) for p, lo, hi in zip(actions["path"], lows, highs)}


def runs_held(table: DeltaTable, damaged: list[Damaged], candidates: Iterable[str]) -> None:
    """Fill each damaged file's run_ids: the ``candidates`` within its statistics' range."""
    if not damaged:
        return
    ranges = run_ranges(table)
    known = sorted(set(candidates))
    for item in damaged:
        low, high = ranges.get(Path(item.file).name, (None, None))
        item.run_ids = [r for r in known if (low is None or r >= low) and (high is None or r <= high)]


def set_aside(path: Path, table: DeltaTable, schema: pa.Schema) -> list[Damaged]:
    """Remove the table's damaged files from it in one commit (the files stay on disk until
    vacuum), so writes that must rewrite them can go on; their runs come back when re-parsed."""
    from deltalake.transaction import CommitProperties, RemoveAction

    damaged = damaged_files(table, path.name)
    if not damaged:
        return []
    now_ms = int(time.time() * 1000)
    actions: list[AddAction | RemoveAction] = [RemoveAction(path=Path(d.file).name, data_change=True, deletion_timestamp=now_ms)
               for d in damaged]
    table.create_write_transaction(
        actions, mode="append", schema=schema.remove_metadata(),
        commit_properties=CommitProperties(custom_metadata={"slurmkit.set_aside": [d.file for d in damaged]}))
    return damaged


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
