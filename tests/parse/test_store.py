"""The results store: typed schemas, batches, replace-on-rewrite, version check, concurrent writers."""
from __future__ import annotations

import multiprocessing
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from slurmkit.errors import ResultsError
from slurmkit.results import store


def _steps(n: int, loss0: float = 3.0) -> pa.Table:
    return pa.table({"step": list(range(1, n + 1)), "step_time_s": [1.5] * n,
                     "loss": [loss0 - i * 0.1 for i in range(n)], "restart": [0] * n})


def test_contract_columns_present():
    steps_cols = ("run_id restart step time step_time_s loss lr grad_norm consumed_samples "
                  "tokens_per_s_per_gpu tflops_per_gpu mem_gib source_file source_line").split()
    assert store.STEPS_SCHEMA.names[:len(steps_cols)] == steps_cols
    for col in ("run_id", "job_id", "source_format", "source_file", "nodes", "gpu_peak_tflops",
                "steps_completed", "steps_target", "last_step", "status", "failure_reason",
                "failure_evidence", "warmup_steps", "step_time_mean_s", "step_time_median_s",
                "step_time_p95_s", "step_time_std_s", "time_to_target_s", "tokens_per_s_per_gpu",
                "tflops_per_gpu", "tflops_formula", "mfu", "final_loss", "slurm_state",
                "slurm_exit_code", "slurm_elapsed_s", "slurm_nodelist"):
        assert col in store.RUNS_SCHEMA.names, col
    assert store.RUNS_SCHEMA.field("nodes").type == pa.int64()
    assert store.RUNS_SCHEMA.field("sequence_parallel").type == pa.bool_()


def test_write_then_read_round_trip(tmp_path: Path):
    store.write_run(tmp_path, {"run_id": "a", "nodes": 2, "status": "completed"}, _steps(3))
    runs = store.read_runs(tmp_path)
    assert list(runs["run_id"]) == ["a"]
    assert runs.loc[0, "nodes"] == 2
    assert runs["tp"].isna().all()  # unknown params are null, never zero
    assert str(runs["tp"].dtype) == "Int64"
    steps = store.read_steps(tmp_path)
    assert list(steps["step"]) == [1, 2, 3]
    assert set(steps["run_id"]) == {"a"}
    assert steps["lr"].isna().all()


def test_rewrite_replaces_rows(tmp_path: Path):
    store.write_run(tmp_path, {"run_id": "a"}, _steps(5))
    store.write_run(tmp_path, {"run_id": "a"}, _steps(2))
    store.write_run(tmp_path, {"run_id": "b"}, _steps(1))
    assert len(store.read_runs(tmp_path)) == 2
    assert len(store.read_steps(tmp_path, run_ids=["a"])) == 2
    assert list(store.read_steps(tmp_path, columns=["step"]).columns) == ["step"]


def test_file_metadata_and_other_readers(tmp_path: Path):
    store.write_run(tmp_path, {"run_id": "x/y z"}, _steps(2))
    files = list((tmp_path / "runs").glob("*.parquet"))
    assert len(files) == 1 and "/" not in files[0].name
    meta = pq.read_schema(files[0]).metadata
    assert meta[b"slurmkit.schema_version"] == str(store.SCHEMA_VERSION).encode()
    # a plain pyarrow dataset read of the folder works, no slurmkit needed
    assert pq.read_table(tmp_path / "steps").num_rows == 2


def test_wrong_version_refused_with_fix(tmp_path: Path):
    store.write_run(tmp_path, {"run_id": "a"}, _steps(1))
    path = tmp_path / "runs" / "a.parquet"
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({b"slurmkit.schema_version": b"0"}), path)
    with pytest.raises(ResultsError) as err:
        store.read_runs(tmp_path)
    text = str(err.value.problems[0])
    assert f"found 0, required {store.SCHEMA_VERSION}" in text
    assert f"slurmkit parse --out {tmp_path} <logs>" in text


def test_missing_folder_and_empty(tmp_path: Path):
    with pytest.raises(ResultsError):
        store.read_runs(tmp_path / "nope")
    empty = store.read_runs(tmp_path)
    assert len(empty) == 0 and "run_id" in empty.columns


def test_large_steps_written_in_batches(tmp_path: Path):
    n = store.STEPS_BATCH_ROWS * 2 + 5
    store.write_run(tmp_path, {"run_id": "big", "source_file": "x.out"}, _steps(n))
    meta = pq.ParquetFile(tmp_path / "steps" / "big.parquet").metadata
    assert meta.num_rows == n and meta.num_row_groups == 3
    steps = store.read_steps(tmp_path, columns=["step", "source_file"])
    assert steps["step"].iloc[-1] == n and set(steps["source_file"]) == {"x.out"}


def test_unknown_run_column_rejected(tmp_path: Path):
    with pytest.raises(ValueError):
        store.write_run(tmp_path, {"run_id": "a", "nodez": 1}, _steps(1))


def _writer(args: tuple[str, int]) -> None:
    """Rounds of batches that overlap the other process's: its own runs, runs both write, and
    runs that sit in the other's batches."""
    folder, worker = args
    for i in range(6):
        own = [f"w{worker}-{i}-{k}" for k in range(3)]
        shared = [f"s{(i + k) % 5}" for k in range(worker + 1)]
        store.write_runs(folder, [({"run_id": r, "nodes": worker}, _steps(3)) for r in own + shared])
        store.write_run(folder, {"run_id": "shared", "nodes": worker}, _steps(4))


def test_concurrent_processes_lose_nothing(tmp_path: Path):
    ctx = multiprocessing.get_context("spawn")
    for _ in range(2):  # the second round replaces every run, in other batches
        with ctx.Pool(2) as pool:
            pool.map(_writer, [(str(tmp_path), 1), (str(tmp_path), 2)])
        runs = store.read_runs(tmp_path)
        expected = {f"w{w}-{i}-{k}" for w in (1, 2) for i in range(6) for k in range(3)}
        expected |= {f"s{n}" for n in range(5)} | {"shared"}
        assert sorted(runs["run_id"]) == sorted(expected)  # each exactly once
        steps = store.read_steps(tmp_path)
        assert steps.groupby("run_id").size().to_dict() == {r: 4 if r == "shared" else 3 for r in expected}
        assert not list(tmp_path.glob("*/.*"))  # no temporaries left behind
        assert isinstance(runs, pd.DataFrame)


def _run_ids(folder: Path, name: str) -> list[str]:
    return pq.read_table(folder / name, columns=["run_id"]).column(0).to_pylist()


def test_batch_written_and_read_back(tmp_path: Path):
    store.write_runs(tmp_path, [({"run_id": "b", "nodes": 2}, _steps(3)), ({"run_id": "a"}, _steps(2)),
                                ({"run_id": "c", "status": "failed"}, _steps(0))])
    name = store.batch_file_name(["a", "b", "c"])
    assert name == store.batch_file_name(["c", "b", "a"]) and name.startswith("batch-")
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [name]
    assert [p.name for p in (tmp_path / "steps").iterdir()] == [name]
    runs = store.read_runs(tmp_path).set_index("run_id")
    assert list(runs.index) == ["b", "a", "c"] and runs.loc["b", "nodes"] == 2
    assert runs.loc["c", "status"] == "failed"
    meta = pq.ParquetFile(tmp_path / "steps" / name).metadata
    assert meta.num_row_groups == 2  # one per run with steps: run_id statistics let readers skip
    assert [meta.row_group(i).column(0).statistics.min for i in range(2)] == ["b", "a"]
    steps = store.read_steps(tmp_path)
    assert steps.groupby("run_id").size().to_dict() == {"a": 2, "b": 3}
    assert store.batch_file_name(["x"]) == store.run_file_name("x")


def test_reparse_in_batch_replaces_only_its_rows(tmp_path: Path):
    store.write_runs(tmp_path, [({"run_id": r, "nodes": 1}, _steps(3)) for r in "abc"])
    store.write_run(tmp_path, {"run_id": "b", "nodes": 9}, _steps(5, loss0=9.0))
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(
        [store.batch_file_name("ac"), "b.parquet"])  # the old batch, rewritten without b
    assert sorted(p.name for p in (tmp_path / "steps").iterdir()) == sorted(
        [store.batch_file_name("ac"), "b.parquet"])
    runs = store.read_runs(tmp_path).set_index("run_id").sort_index()
    assert list(runs.index) == ["a", "b", "c"] and list(runs["nodes"]) == [1, 9, 1]
    steps = store.read_steps(tmp_path)
    assert steps.groupby("run_id").size().to_dict() == {"a": 3, "b": 5, "c": 3}
    assert steps[steps["run_id"] == "b"]["loss"].iloc[0] == 9.0
    # a new batch taking a and c away from theirs deletes the emptied batch
    store.write_runs(tmp_path, [({"run_id": "c"}, _steps(1)), ({"run_id": "a"}, _steps(1)),
                                ({"run_id": "d"}, _steps(1))])
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted([store.batch_file_name("acd"), "b.parquet"])
    assert sorted(store.read_runs(tmp_path)["run_id"]) == ["a", "b", "c", "d"]
    assert len(store.read_steps(tmp_path)) == 3 + 5


def test_read_steps_of_some_runs_in_batches(tmp_path: Path):
    store.write_runs(tmp_path, [({"run_id": f"r{i}"}, _steps(i + 1)) for i in range(5)])
    store.write_runs(tmp_path, [({"run_id": f"q{i}"}, _steps(2)) for i in range(3)])
    steps = store.read_steps(tmp_path, run_ids=["r3", "q1", "nope"], columns=["step", "loss"])
    assert list(steps.columns) == ["step", "loss"] and len(steps) == 4 + 2
    both = store.read_steps(tmp_path, run_ids=["r1"], columns=["run_id", "step"])
    assert list(both["run_id"]) == ["r1", "r1"] and list(both["step"]) == [1, 2]
    assert len(store.read_steps(tmp_path, run_ids=[])) == 0
    assert len(store.read_steps(tmp_path, run_ids=["zzz"])) == 0


def test_crash_left_duplicate_healed_by_reparse(tmp_path: Path, monkeypatch):
    store.write_runs(tmp_path, [({"run_id": r}, _steps(2)) for r in "ab"])

    def crash(*args):
        raise KeyboardInterrupt  # dies after renaming the new files in, before the rewrite
    monkeypatch.setattr(store, "_drop_runs", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write_runs(tmp_path, [({"run_id": r}, _steps(3)) for r in "ac"])
    monkeypatch.undo()
    assert sorted(store.read_runs(tmp_path)["run_id"]) == ["a", "a", "b", "c"]
    store.write_run(tmp_path, {"run_id": "a"}, _steps(4))
    assert sorted(store.read_runs(tmp_path)["run_id"]) == ["a", "b", "c"]
    assert store.read_steps(tmp_path).groupby("run_id").size().to_dict() == {"a": 4, "b": 2, "c": 3}
    # a steps file left without its runs file (a crash between the two renames) is found too
    store.write_runs(tmp_path, [({"run_id": r}, _steps(1)) for r in "xy"])
    (tmp_path / "runs" / store.batch_file_name("xy")).unlink()
    store.write_run(tmp_path, {"run_id": "x"}, _steps(5))
    assert store.read_steps(tmp_path, run_ids=["x", "y"]).groupby("run_id").size().to_dict() == {"x": 5, "y": 1}
    assert not list(tmp_path.glob("*/.*"))


def test_wrong_version_in_batch_refused(tmp_path: Path):
    store.write_runs(tmp_path, [({"run_id": r}, _steps(2)) for r in "ab"])
    path = tmp_path / "steps" / store.batch_file_name("ab")
    table = pq.read_table(path)
    pq.write_table(table.replace_schema_metadata({b"slurmkit.schema_version": b"7"}), path)
    with pytest.raises(ResultsError, match=f"found 7, required {store.SCHEMA_VERSION}"):
        store.read_steps(tmp_path, run_ids=["a"])


def test_steps_files_keep_key_statistics(tmp_path: Path):
    """Small and large steps files carry min/max of the key columns (readers skip by step)."""
    for run_id, n in (("small", 7), ("large", store.STEPS_BATCH_ROWS + 3)):
        store.write_run(tmp_path, {"run_id": run_id}, _steps(n))
        group = pq.ParquetFile(tmp_path / "steps" / f"{run_id}.parquet").metadata.row_group(0)
        stats = {group.column(i).path_in_schema: group.column(i).statistics for i in range(group.num_columns)}
        assert (stats["step"].min, stats["step"].max) == (1, min(n, store.STEPS_BATCH_ROWS))
        assert stats["run_id"].min == run_id
        assert pq.read_table(tmp_path / "runs" / f"{run_id}.parquet").column("run_id").to_pylist() == [run_id]


def _rewriter(folder: str) -> None:
    """Re-parse the same runs over and over, in batches that split and merge differently."""
    runs = [f"r{k}" for k in range(6)]
    for i in range(30):
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
