"""Care of a results store (``slurmkit store ...``): compact small files, vacuum files no
version needs, check every data file, and upgrade an older store (version 2: folders of
Parquet files) to the Delta tables of slurmkit.results.store.

Every operation is a Delta commit or removes only files no commit names, so it is safe while
readers run; a writer that loses a race to it redoes its commit (delta.replace_runs).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from slurmkit.errors import Location, Problem, ResultsError
from slurmkit.results import delta, store
from slurmkit.results.delta import Damaged

# Files younger than this may belong to a write still under way (written, not yet committed):
# vacuum keeps them, and the files a commit removed, for readers of the versions before it.
VACUUM_RETENTION_HOURS = 1.0


def optimize(results_dir: Path | str) -> dict[str, int]:
    """Compact each table's small data files into few (one commit each; the old files stay
    until vacuum). Returns table -> files removed."""
    results_dir = Path(results_dir)
    done = {}
    for name in store.TABLES:
        table = store.open_table(results_dir, name)
        if table is not None:
            done[name] = int(table.optimize.compact()["numFilesRemoved"])
    return done


def compact_if_needed(results_dir: Path, most_files: int) -> None:
    """Compact (and vacuum) the tables with more than ``most_files`` data files; skipped
    when another writer wins the race (the next write tries again)."""
    from deltalake.exceptions import DeltaError

    for name in store.TABLES:
        table = store.open_table(results_dir, name)
        if table is None or len(table.file_uris()) <= most_files:
            continue
        try:
            table.optimize.compact()
            _vacuum_table(results_dir / name, VACUUM_RETENTION_HOURS)
        except DeltaError:
            pass


def vacuum(results_dir: Path | str, retention_hours: float = VACUUM_RETENTION_HOURS) -> dict[str, int]:
    """Delete the files no version of the last ``retention_hours`` needs: files replaced by
    later commits, and files of writes that never committed (a killed parse). Returns table
    -> files deleted."""
    results_dir = Path(results_dir)
    deleted = {}
    for name in store.TABLES:
        if store.open_table(results_dir, name) is not None:
            deleted[name] = _vacuum_table(results_dir / name, retention_hours)
    return deleted


def _vacuum_table(path: Path, retention_hours: float) -> int:
    table = delta.load(path)
    if table is None:
        return 0
    # the data files, whatever commit removed them or none ever named them (full)
    gone = table.vacuum(retention_hours=int(retention_hours), dry_run=False, enforce_retention_duration=False,
                        full=True)
    # staged files of a write killed before its rename (object_store writes NAME#N, then renames)
    cutoff = time.time() - retention_hours * 3600
    staged = [p for folder in (path, path / "_delta_log") for p in folder.iterdir()
              if p.is_file() and ("#" in p.name or p.name.endswith(".tmp")) and p.stat().st_mtime <= cutoff]
    for p in staged:
        p.unlink(missing_ok=True)
    return len(gone) + len(staged)


@dataclass
class CheckReport:
    """What ``slurmkit store check`` found: damaged files (with the runs they held), runs whose
    steps are gone (steps_completed > 0, no step rows) and steps whose run has no row (a parse
    killed between its two commits, or a damaged runs file set aside). Re-parsing heals all."""

    damaged: list[Damaged] = field(default_factory=list)
    missing_steps: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # run_id -> its log (to re-parse it)

    def problems(self, results_dir: Path | str) -> list[Problem]:
        results_dir = Path(results_dir)
        found = []
        for item in self.damaged:
            found.append(Problem(f"damaged {item.table} data file ({item.error}); runs it held: "
                                 f"{', '.join(item.run_ids) or 'none known'}",
                                 Location(item.file), hint=self._reparse(results_dir, item.run_ids)))
        if self.missing_steps:
            found.append(Problem(f"runs whose steps are missing: {', '.join(self.missing_steps)}",
                                 Location(str(results_dir / "steps")),
                                 hint=self._reparse(results_dir, self.missing_steps)))
        if self.orphans:
            found.append(Problem(f"steps of runs the runs table lacks: {', '.join(self.orphans)}",
                                 Location(str(results_dir / "runs")),
                                 hint=self._reparse(results_dir, self.orphans)))
        return found

    def _reparse(self, results_dir: Path, run_ids: list[str]) -> str:
        logs = sorted({self.sources[r] for r in run_ids if self.sources.get(r)})
        return f"re-parse: `slurmkit parse --out {results_dir} {' '.join(logs) if logs else '<their logs>'}`"


def check(results_dir: Path | str) -> CheckReport:
    """Read every data file of both tables in full; see CheckReport."""
    import pyarrow.compute as pc

    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ResultsError(f"no results folder {results_dir}")
    report = CheckReport()
    tables = {name: store.open_table(results_dir, name) for name in store.TABLES}
    runs = _columns(tables["runs"], "runs", ["run_id", "source_file", "steps_completed"])
    steps = _columns(tables["steps"], "steps", ["run_id", "source_file"])
    run_ids = set(runs.column("run_id").to_pylist())
    step_ids = set(steps.column("run_id").unique().to_pylist())
    report.sources = dict(zip(steps.column("run_id").to_pylist(), steps.column("source_file").to_pylist()))
    report.sources |= dict(zip(runs.column("run_id").to_pylist(), runs.column("source_file").to_pylist()))
    for name, candidates in (("steps", run_ids), ("runs", step_ids - run_ids)):
        table = tables[name]
        if table is not None:
            bad = delta.damaged_files(table, name)
            delta.runs_held(table, bad, candidates)
            report.damaged += bad
    held = {r for item in report.damaged for r in item.run_ids}
    stepped = pc.greater(runs.column("steps_completed").fill_null(0), 0).to_pylist()
    report.missing_steps = sorted(r for r, s in zip(runs.column("run_id").to_pylist(), stepped)
                                  if s and r not in step_ids and r not in held)
    report.orphans = sorted(step_ids - run_ids - held)
    return report


def _columns(table: Any, name: str, columns: list[str]) -> pa.Table:
    """Some columns of every readable file of a table (empty when there is no table)."""
    if table is None:
        schema = store.RUNS_SCHEMA if name == "runs" else store.STEPS_SCHEMA
        return schema.empty_table().select(columns)
    return delta.read(table, name, columns, None)[0]


def upgrade(results_dir: Path | str) -> dict[str, int]:
    """Rewrite an older store as version-3 Delta tables in place; returns table -> rows.

    Version 2 (``runs/*.parquet`` and ``steps/*.parquet``, a run in any batch file, each file
    with ``slurmkit.schema_version`` in its metadata): each run's row is taken from the newest
    file holding it, its steps from the steps file of the same name (the pair written together),
    so a run a crash left in two files comes out once. The tables are committed steps first,
    then runs, before any old file is deleted: a kill at any moment leaves either the old store
    (the upgrade can run again) or the new one. Unreadable old files are skipped and named."""
    results_dir = Path(results_dir)
    if store.legacy_version(results_dir / "runs") is None and store.legacy_version(results_dir / "steps") is None:
        for name in store.TABLES:
            store.open_table(results_dir, name)  # a Delta table of another version is refused
        return {}
    runs, steps, skipped = _read_legacy(results_dir)
    steps_table = _fresh(results_dir / "steps", store.STEPS_SCHEMA, "steps")
    _commit_all(steps_table, steps, store.STEPS_SCHEMA)
    runs_table = _fresh(results_dir / "runs", store.RUNS_SCHEMA, "runs")
    _commit_all(runs_table, runs, store.RUNS_SCHEMA)
    for name in store.TABLES:
        for old in (results_dir / name).glob("*.parquet"):
            if not old.name.startswith("part-"):
                old.unlink()
        for old in (results_dir / name).glob(".*.tmp"):
            old.unlink()
    (results_dir / ".lock").unlink(missing_ok=True)
    if skipped:
        raise ResultsError("upgraded, but some old files could not be read", problems=[
            _skipped_problem(path, error, results_dir) for path, error in skipped])
    return {"runs": runs.num_rows, "steps": steps.num_rows}


def _skipped_problem(path: Path, error: str, results_dir: Path) -> Problem:
    return Problem(f"left out of the upgrade: {error}", Location(str(path)),
                   hint=f"re-parse its runs with `slurmkit parse --out {results_dir} <logs>`")


def _read_legacy(results_dir: Path) -> tuple[pa.Table, pa.Table, list[tuple[Path, str]]]:
    """(runs, steps, unreadable files) of a version-2 store, each run once."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    skipped: list[tuple[Path, str]] = []
    files = sorted((p for p in (results_dir / "runs").glob("*.parquet") if not p.name.startswith(".")),
                   key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    owner: dict[str, str] = {}  # run_id -> the file name whose rows are kept (newest first)
    run_parts = []
    for path in files:
        try:
            table = _conform(pq.read_table(path), store.RUNS_SCHEMA)
        except (OSError, pa.ArrowException) as exc:
            skipped.append((path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            continue
        ids = table.column("run_id").to_pylist()
        keep = [r not in owner for r in ids]
        for r, k in zip(ids, keep):
            if k:
                owner[r] = path.name
        run_parts.append(table.filter(pa.array(keep, pa.bool_())))
    step_parts = []
    for name in sorted(set(owner.values())):
        path = results_dir / "steps" / name
        if not path.is_file():
            continue
        try:
            table = _conform(pq.read_table(path), store.STEPS_SCHEMA)
        except (OSError, pa.ArrowException) as exc:
            skipped.append((path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            continue
        mine = pa.array(sorted(r for r, n in owner.items() if n == name), pa.string())
        step_parts.append(table.filter(pc.is_in(table.column("run_id"), value_set=mine)))
    runs = pa.concat_tables(run_parts) if run_parts else store.RUNS_SCHEMA.empty_table()
    steps = pa.concat_tables(step_parts) if step_parts else store.STEPS_SCHEMA.empty_table()
    return runs, steps, skipped


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """An old file's rows in today's schema: columns it lacks are null, types cast."""
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
               for f in schema]
    return pa.Table.from_arrays(columns, schema=schema.remove_metadata())


def _fresh(path: Path, schema: pa.Schema, name: str) -> Any:
    """The Delta table at ``path`` (an earlier, killed upgrade's is reused and overwritten)."""
    return delta.create(path, schema, name, store.SCHEMA_VERSION, store.TABLE_PROPERTIES[name])


def _commit_all(table: Any, rows: pa.Table, schema: pa.Schema) -> None:
    from deltalake import write_deltalake

    write_deltalake(table, rows.replace_schema_metadata(None).cast(schema.remove_metadata()), mode="overwrite")
