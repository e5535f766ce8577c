"""The results store: Delta tables runs and steps, typed from rundir.PARAMS; replace by run id,
readers anchored on committed runs, concurrent writers, schema version and upgrade, damaged
files, compaction and vacuum, and other tools (polars, DuckDB) reading the same tables."""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from slurmkit.cli import cli, main
from slurmkit.errors import ResultsError
from slurmkit.results import store, upkeep


def _steps(n: int, loss0: float = 3.0) -> pa.Table:
    return pa.table({"step": list(range(1, n + 1)), "step_time_s": [1.5] * n,
                     "loss": [loss0 - i * 0.1 for i in range(n)], "restart": [0] * n})


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.parquet"))


def test_schemas_follow_the_contract():
    steps_cols = ["run_id", "restart", "step", "time", "step_time_s", "loss"]
    assert store.STEPS_SCHEMA.names[:len(steps_cols)] == steps_cols
    for col in ("run_id", "job_id", "nodes", "tp", "status", "failure_reason", "tokens_per_s_per_gpu", "mfu"):
        assert col in store.RUNS_SCHEMA.names, col
    assert store.RUNS_SCHEMA.field("nodes").type == pa.int64()
    assert store.RUNS_SCHEMA.field("sequence_parallel").type == pa.bool_()


def test_tables_are_delta_with_the_version_in_their_configuration(tmp_path: Path):
    from deltalake import DeltaTable

    store.write_run(tmp_path, {"run_id": "a", "nodes": 2, "status": "completed"}, _steps(3))
    for name in ("runs", "steps"):
        table = DeltaTable(str(tmp_path / name))
        assert table.metadata().configuration["slurmkit.schema_version"] == str(store.SCHEMA_VERSION)
        assert table.version() == 1  # created, then one commit
    runs = store.read_runs(tmp_path)
    assert runs["nodes"].dtype == "Int64" and runs.loc[0, "nodes"] == 2 and pd.isna(runs.loc[0, "tp"])
    steps = store.read_steps(tmp_path)
    assert list(steps["step"]) == [1, 2, 3] and set(steps["run_id"]) == {"a"}
    assert steps["restart"].dtype == "Int32" and steps["time"].isna().all()


def test_rewrite_replaces_a_runs_rows_in_one_commit_per_table(tmp_path: Path):
    from deltalake import DeltaTable

    store.write_run(tmp_path, {"run_id": "a"}, _steps(5))
    store.write_run(tmp_path, {"run_id": "a"}, _steps(2))
    store.write_run(tmp_path, {"run_id": "b"}, _steps(1))
    assert list(store.read_runs(tmp_path)["run_id"]) == ["a", "b"]
    assert len(store.read_steps(tmp_path, run_ids=["a"])) == 2
    assert list(store.read_steps(tmp_path, columns=["step"]).columns) == ["step"]
    history = DeltaTable(str(tmp_path / "steps")).history()
    assert [h["operation"] for h in history[:3]] == ["WRITE"] * 3
    assert history[1]["operationParameters"]["predicate"] in ("run_id IN ('a')", "run_id = 'a'")


def test_a_batch_holds_its_runs_once_and_keeps_the_last_of_a_repeated_run(tmp_path: Path):
    store.write_runs(tmp_path, [({"run_id": "b", "nodes": 2}, _steps(3)), ({"run_id": "a"}, _steps(2)),
                                ({"run_id": "b", "nodes": 4}, _steps(1)), ({"run_id": "c"}, _steps(0))])
    runs = store.read_runs(tmp_path).set_index("run_id")
    assert list(runs.index) == ["a", "b", "c"] and runs.loc["b", "nodes"] == 4
    assert store.read_steps(tmp_path).groupby("run_id").size().to_dict() == {"a": 2, "b": 1}
    # a step-less run replaced by a run with steps, and the reverse
    store.write_runs(tmp_path, [({"run_id": "c"}, _steps(2)), ({"run_id": "a"}, _steps(0))])
    assert store.read_steps(tmp_path).groupby("run_id").size().to_dict() == {"b": 1, "c": 2}


@pytest.mark.parametrize("run_id", ["x/y z", "it's", "a'); DELETE FROM steps; --", "back\\slash\n",
                                    "ünï ☃", "' OR '1'='1"])
def test_hostile_run_ids_are_inert_in_predicates(tmp_path: Path, run_id: str):
    store.write_runs(tmp_path, [({"run_id": "keep"}, _steps(2)), ({"run_id": run_id}, _steps(3))])
    store.write_run(tmp_path, {"run_id": run_id}, _steps(4))
    assert store.read_steps(tmp_path).groupby("run_id").size().to_dict() == {"keep": 2, run_id: 4}
    assert sorted(store.read_runs(tmp_path)["run_id"]) == sorted(["keep", run_id])


def test_read_only_some_runs_and_columns(tmp_path: Path):
    store.write_runs(tmp_path, [({"run_id": f"r{i}"}, _steps(i + 1)) for i in range(5)])
    store.write_runs(tmp_path, [({"run_id": f"q{i}"}, _steps(2)) for i in range(3)])
    steps = store.read_steps(tmp_path, run_ids=["r3", "q1", "nope"], columns=["step", "loss"])
    assert list(steps.columns) == ["step", "loss"] and len(steps) == 4 + 2
    both = store.read_steps(tmp_path, run_ids=["r1"], columns=["run_id", "step"])
    assert list(both["run_id"]) == ["r1", "r1"]
    assert len(store.read_steps(tmp_path, run_ids=[])) == 0
    assert len(store.read_steps(tmp_path, run_ids=["zzz"])) == 0
    with pytest.raises(ValueError, match="not steps columns"):
        store.read_steps(tmp_path, columns=["nope"])


def test_large_run_is_written_in_bounded_batches(tmp_path: Path):
    n = store.STEPS_BATCH_ROWS * 2 + 5
    store.write_run(tmp_path, {"run_id": "big", "source_file": "x.out"}, _steps(n))
    steps = store.read_steps(tmp_path, columns=["step", "source_file"])
    assert len(steps) == n and set(steps["source_file"]) == {"x.out"}
    assert sorted(steps["step"]) == list(range(1, n + 1))


def test_unknown_run_column_is_refused_before_any_commit(tmp_path: Path):
    with pytest.raises(ValueError, match="nodez"):
        store.write_run(tmp_path, {"run_id": "a", "nodez": 1}, _steps(1))
    assert not (tmp_path / "steps").exists()


def test_missing_folder_and_empty_folder(tmp_path: Path):
    with pytest.raises(ResultsError, match="no results folder"):
        store.read_runs(tmp_path / "nope")
    assert store.read_runs(tmp_path).empty and list(store.read_runs(tmp_path).columns) == store.RUNS_SCHEMA.names
    assert store.read_steps(tmp_path).empty


def test_steps_without_a_committed_run_stay_invisible(tmp_path: Path):
    """A parse killed between its two commits leaves steps alone: readers anchor on runs."""
    store.write_run(tmp_path, {"run_id": "a"}, _steps(2))
    from deltalake import write_deltalake
    orphan = store.conform_steps(_steps(3), "ghost").replace_schema_metadata(None)
    write_deltalake(str(tmp_path / "steps"), orphan, mode="append")
    assert set(store.read_steps(tmp_path)["run_id"]) == {"a"}
    assert upkeep.check(tmp_path).orphans == ["ghost"]
    store.write_run(tmp_path, {"run_id": "ghost"}, _steps(3))  # the rerun
    assert store.read_steps(tmp_path).groupby("run_id").size().to_dict() == {"a": 2, "ghost": 3}
    assert upkeep.check(tmp_path).orphans == []


def test_other_schema_version_is_refused_with_the_upgrade_command(tmp_path: Path):
    from deltalake import DeltaTable

    store.write_run(tmp_path, {"run_id": "a"}, _steps(1))
    DeltaTable(str(tmp_path / "runs")).alter.set_table_properties(
        {"slurmkit.schema_version": "7"}, raise_if_not_exists=False)
    with pytest.raises(ResultsError) as err:
        store.read_runs(tmp_path)
    text = "\n".join(err.value.lines())
    assert f"found 7, required {store.SCHEMA_VERSION}" in text and f"slurmkit store upgrade {tmp_path}" in text
    with pytest.raises(ResultsError, match="found 7"):
        store.write_run(tmp_path, {"run_id": "b"}, _steps(1))


# -- version 2: folders of Parquet files (batch files; a crash could leave a run in two) --------

def _v2_steps_schema() -> pa.Schema:
    fields = [pa.field(f.name, pa.timestamp("ms", tz="UTC") if f.name == "time" else f.type)
              for f in store.STEPS_SCHEMA]
    return pa.schema(fields, metadata={b"slurmkit.schema_version": b"2", b"slurmkit.table": b"steps"})


def _write_v2(folder: Path, name: str, runs: dict[str, int], nodes: int, mtime: float) -> None:
    """One version-2 batch: runs/<name> and steps/<name>, with the version in their metadata."""
    runs_schema = store.RUNS_SCHEMA.with_metadata({b"slurmkit.schema_version": b"2", b"slurmkit.table": b"runs"})
    rows = store.runs_table([{"run_id": r, "nodes": nodes, "steps_completed": n} for r, n in runs.items()])
    steps = pa.concat_tables([store.conform_steps(_steps(n), r) for r, n in runs.items()])
    for sub, table, schema in (("runs", rows, runs_schema), ("steps", steps, _v2_steps_schema())):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        pq.write_table(table.cast(schema), folder / sub / name)
        os.utime(folder / sub / name, (mtime, mtime))


def test_version_2_folder_is_refused_then_upgraded_each_run_once(tmp_path: Path):
    now = time.time()
    _write_v2(tmp_path, "batch-old.parquet", {"a": 2, "b": 3}, nodes=1, mtime=now - 100)
    _write_v2(tmp_path, "b.parquet", {"b": 5}, nodes=9, mtime=now - 50)  # b re-parsed; crash left it twice
    _write_v2(tmp_path, "c.parquet", {"c": 1}, nodes=3, mtime=now - 10)
    (tmp_path / "steps" / ".batch-x.parquet.tmp").write_bytes(b"half")
    with pytest.raises(ResultsError) as err:
        store.read_runs(tmp_path)
    assert f"found 2 (Parquet files), required {store.SCHEMA_VERSION}" in "\n".join(err.value.lines())
    result = CliRunner().invoke(cli, ["store", "upgrade", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0 and "runs: 3 rows rewritten" in result.output
    runs = store.read_runs(tmp_path).set_index("run_id")
    assert list(runs.index) == ["a", "b", "c"] and runs.loc["b", "nodes"] == 9 and runs.loc["a", "nodes"] == 1
    assert store.read_steps(tmp_path).groupby("run_id").size().to_dict() == {"a": 2, "b": 5, "c": 1}
    left = [p.name for sub in ("runs", "steps") for p in (tmp_path / sub).iterdir() if p.is_file()]
    assert all(name.startswith("part-") for name in left), left  # old files and temporaries gone
    again = CliRunner().invoke(cli, ["store", "upgrade", str(tmp_path)], catch_exceptions=False)
    assert "already at the current version" in again.output


# -- concurrency --------------------------------------------------------------------------------

def _writer(args: tuple[str, int]) -> None:
    """Rounds of batches that overlap the other process's: its own runs and runs both write."""
    folder, worker = args
    for i in range(6):
        own = [f"w{worker}-{i}-{k}" for k in range(3)]
        shared = [f"s{(i + k) % 5}" for k in range(worker + 1)]
        store.write_runs(folder, [({"run_id": r, "nodes": worker}, _steps(3)) for r in own + shared])
        store.write_run(folder, {"run_id": "shared", "nodes": worker}, _steps(4))


def test_concurrent_processes_lose_nothing(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(_writer, [(str(tmp_path), 1), (str(tmp_path), 2)])
    runs = store.read_runs(tmp_path)
    expected = {f"w{w}-{i}-{k}" for w in (1, 2) for i in range(6) for k in range(3)}
    expected |= {f"s{n}" for n in range(5)} | {"shared"}
    assert sorted(runs["run_id"]) == sorted(expected)  # each exactly once
    steps = store.read_steps(tmp_path)
    assert steps.groupby("run_id").size().to_dict() == {r: 4 if r == "shared" else 3 for r in expected}


def _rewriter(folder: str) -> None:
    """Re-parse the same runs over and over, in batches that split and merge differently."""
    runs = [f"r{k}" for k in range(6)]
    for i in range(20):
        size = 1 + i % 4
        for start in range(0, len(runs), size):
            store.write_runs(folder, [({"run_id": r, "nodes": i}, _steps(3)) for r in runs[start:start + size]])


def test_readers_never_see_a_write_half_done(tmp_path: Path):
    """While another process replaces runs batch by batch, every read sees each run exactly
    once, in the runs table and in the steps table."""
    for k in range(6):
        store.write_run(tmp_path, {"run_id": f"r{k}"}, _steps(3))
    proc = multiprocessing.get_context("spawn").Process(target=_rewriter, args=(str(tmp_path),))
    proc.start()
    reads = 0
    try:
        while proc.is_alive() or reads < 5:
            runs = store.read_runs_table(tmp_path).column("run_id").to_pylist()
            assert sorted(runs) == [f"r{k}" for k in range(6)]
            steps = store.read_steps(tmp_path, columns=["run_id"])
            assert steps.groupby("run_id").size().to_dict() == {f"r{k}": 3 for k in range(6)}
            reads += 1
    finally:
        proc.join()
    assert proc.exitcode == 0 and reads >= 5


# -- compaction and vacuum ------------------------------------------------------------------------

def test_many_small_writes_are_compacted_and_vacuum_frees_what_no_version_needs(tmp_path: Path, monkeypatch):
    from deltalake import DeltaTable

    monkeypatch.setattr(store, "COMPACT_FILES", 8)
    for i in range(20):
        store.write_run(tmp_path, {"run_id": f"r{i % 12}", "nodes": i}, _steps(2 + i % 3))
    for name in ("runs", "steps"):
        assert len(DeltaTable(str(tmp_path / name)).file_uris()) <= 8
    runs = store.read_runs(tmp_path).set_index("run_id")
    assert len(runs) == 12 and runs.loc["r0", "nodes"] == 12
    assert store.read_steps(tmp_path).groupby("run_id").size().to_dict() == \
        {f"r{k}": 2 + (12 + k if k < 8 else k) % 3 for k in range(12)}
    before = len(_data_files(tmp_path / "steps"))
    result = CliRunner().invoke(cli, ["store", "optimize", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0 and "steps:" in result.output
    assert len(DeltaTable(str(tmp_path / "steps")).file_uris()) == 1
    # a killed writer's data file, never committed: vacuum removes it with the replaced ones
    stray = tmp_path / "steps" / "part-00000-killed-c000.snappy.parquet"
    stray.write_bytes(_data_files(tmp_path / "steps")[0].read_bytes())
    kept = tmp_path / "runs" / "part-00000-in-flight-c000.snappy.parquet"
    kept.write_bytes(b"a write under way")
    old = time.time() - 2 * 3600
    os.utime(stray, (old, old))
    result = CliRunner().invoke(cli, ["store", "vacuum", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0 and "steps: 1 files deleted" in result.output
    assert not stray.exists() and kept.exists()  # younger than the retention: maybe in flight
    result = CliRunner().invoke(cli, ["store", "vacuum", str(tmp_path), "--retention-hours", "0"])
    assert result.exit_code == 0 and not kept.exists()
    assert len(_data_files(tmp_path / "steps")) == 1 < before
    assert store.read_steps(tmp_path).groupby("run_id").size().to_dict() == \
        {f"r{k}": 2 + (12 + k if k < 8 else k) % 3 for k in range(12)}


# -- damaged files ---------------------------------------------------------------------------------

def _damaged_store(folder: Path) -> tuple[Path, Path]:
    """Runs a, b (steps file truncated) and c, d (runs file's footer flipped)."""
    store.write_runs(folder, [({"run_id": r, "source_file": f"/logs/{r}.out", "status": "completed",
                                "steps_completed": 3}, _steps(3)) for r in "ab"])
    store.write_runs(folder, [({"run_id": r, "source_file": f"/logs/{r}.out", "status": "completed",
                                "steps_completed": 4}, _steps(4)) for r in "cde"])
    [steps_ab, _] = sorted(_data_files(folder / "steps"), key=lambda p: p.stat().st_mtime_ns)
    [_, runs_cde] = sorted(_data_files(folder / "runs"), key=lambda p: p.stat().st_mtime_ns)
    data = steps_ab.read_bytes()
    steps_ab.write_bytes(data[:len(data) // 2])
    data = bytearray(runs_cde.read_bytes())
    for i in range(len(data) - 60, len(data) - 8):
        data[i] ^= 0x5A
    runs_cde.write_bytes(bytes(data))
    return steps_ab, runs_cde


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`slurmkit ARGS` through the CLI's error boundary: (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_damaged_files_cost_only_their_runs_and_reparse_heals(tmp_path: Path, capsys):
    steps_ab, runs_cde = _damaged_store(tmp_path)
    runs = store.read_runs(tmp_path)
    assert list(runs["run_id"]) == ["a", "b"]
    [bad] = store.unreadable(runs)
    assert bad.table == "runs" and bad.file == str(runs_cde) and bad.run_ids == ["c", "d", "e"]
    steps = store.read_steps(tmp_path, run_ids=["a", "b"])
    assert steps.empty and [(d.file, d.run_ids) for d in store.unreadable(steps)] == [(str(steps_ab), ["a", "b"])]

    code, out, err = _main(capsys, "store", "check", str(tmp_path))
    assert code == 2 and out == ""
    assert f"error: {steps_ab}: damaged steps data file" in err
    assert "runs it held: a, b" in err and "runs it held: c, d, e" in err
    assert f"`slurmkit parse --out {tmp_path} /logs/a.out /logs/b.out`" in err

    # re-parsing some runs sets the damaged files aside and rewrites them; check lists the rest
    store.write_runs(tmp_path, [({"run_id": r, "source_file": f"/logs/{r}.out", "status": "completed",
                                 "steps_completed": 5}, _steps(5)) for r in "ac"])
    report = upkeep.check(tmp_path)
    assert report.damaged == [] and report.missing_steps == ["b"] and report.orphans == ["d", "e"]
    store.write_runs(tmp_path, [({"run_id": r, "source_file": f"/logs/{r}.out", "status": "completed",
                                 "steps_completed": 2}, _steps(2)) for r in "bde"])
    assert _main(capsys, "store", "check", str(tmp_path)) == (0, f"{tmp_path}: every data file reads\n", "")
    assert list(store.read_runs(tmp_path)["run_id"]) == ["a", "b", "c", "d", "e"]
    assert store.read_steps(tmp_path).groupby("run_id").size().to_dict() == {"a": 5, "b": 2, "c": 5, "d": 2, "e": 2}


def test_report_and_compare_list_unreadable_runs_instead_of_crashing(tmp_path: Path, capsys):
    from slurmkit.report.model import build_report

    _damaged_store(tmp_path)
    report = build_report(tmp_path)
    assert report.notices[0].startswith("5 run(s) could not be read (2 damaged data file(s)")
    assert "runs left out: a, b, c, d, e" in report.notices[0]
    code, out, err = _main(capsys, "compare", str(tmp_path))
    assert code == 0 and err.startswith("warning: 3 run(s) could not be read (1 damaged data file(s)")
    assert "runs left out: c, d, e" in err and "error: no runs in" not in err  # a, b read fine


# -- other tools read the same tables ----------------------------------------------------------------

def test_polars_and_duckdb_read_the_tables(tmp_path: Path):
    import duckdb
    import polars as pl
    from deltalake import DeltaTable

    store.write_runs(tmp_path, [({"run_id": r, "nodes": n, "status": "completed"}, _steps(n)) for r, n in
                                (("a", 2), ("b", 3))])
    store.write_run(tmp_path, {"run_id": "a", "nodes": 4, "status": "completed"}, _steps(4))  # replaced
    runs = pl.read_delta(str(tmp_path / "runs")).sort("run_id")
    assert runs["run_id"].to_list() == ["a", "b"] and runs["nodes"].to_list() == [4, 3]
    steps = pl.read_delta(str(tmp_path / "steps"))
    assert steps.group_by("run_id").len().sort("run_id")["len"].to_list() == [4, 3]
    steps_ds = DeltaTable(str(tmp_path / "steps")).to_pyarrow_dataset()
    runs_ds = DeltaTable(str(tmp_path / "runs")).to_pyarrow_dataset()
    con = duckdb.connect()
    con.register("steps", steps_ds)
    con.register("runs", runs_ds)
    rows = con.execute("SELECT r.run_id, r.nodes, count(*) FROM runs r JOIN steps s USING (run_id) "
                       "GROUP BY ALL ORDER BY 1").fetchall()
    assert rows == [("a", 4, 4), ("b", 3, 3)]


def test_deltalake_is_not_imported_by_help_or_generate_paths():
    code = ("import sys; from slurmkit.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "import slurmkit.results.store, slurmkit.results.upkeep, slurmkit.cli.store\n"
            "print('deltalake' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
