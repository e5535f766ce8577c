"""slurmkit.results.parse and the `slurmkit parse` command: joins, status, exit codes, re-parse."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from slurmkit.cli import cli, main
from slurmkit.errors import ResultsError
from slurmkit.results import store
from slurmkit.results.parse import parse_paths

DATA = Path(__file__).parent / "data"
PARAMS = {"experiment": "e", "model": "tiny-gpt", "site": "lab", "nodes": 1, "gpus_per_node": 2,
          "gpus": 2, "tp": 1, "pp": 1, "cp": 1, "vpp": None, "dp": 2, "sequence_parallel": False,
          "mbs": 1, "gbs": 8, "seq_len": 128, "precision": "bf16", "steps": 4, "warmup_steps": 1,
          "gpu_peak_tflops": 100.0, "model_layers": 2, "model_hidden": 64, "model_heads": 4,
          "model_kv_heads": 4, "model_ffn_hidden": 256, "model_vocab": 512}


def trainer_log(steps: int, total: int = 4, done: bool = True) -> str:
    lines = ["SKTRAIN start rank=0 local_rank=0 world_size=2 host=n1"]
    for n in range(1, steps + 1):
        lines.append(f"SKTRAIN step={n}/{total} loss={5.0 - n:.3f} lr=0.0003 grad_norm=1.5 "
                     f"step_time_s={0.5 if n > 1 else 3.0} tokens_per_s_per_gpu=1024.0 "
                     f"time_unix={1700000000 + n}.5")
    if done:
        lines.append(f"SKTRAIN done steps={steps} final_loss={5.0 - steps:.3f}")
    return "\n".join(lines) + "\n"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_corpus_folder_summary_lines(tmp_path: Path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("megatron-llm-slow-iterations.log", "srun-step-timelimit-task-ranges.log"):
        shutil.copy(DATA / name, logs)
    result = run("parse", str(logs), "--out", str(tmp_path / "res"))
    assert result.exit_code == 0, result.output
    assert ("megatron-llm-slow-iterations: megatron, 4 step rows, last step 125/250000, "
            "incomplete, step 88.242 s") in result.output
    runs = store.read_runs(tmp_path / "res").set_index("run_id")
    assert runs.loc["srun-step-timelimit-task-ranges", "failure_reason"] == "time_limit"
    assert runs.loc["megatron-llm-slow-iterations", "nodes"] is pd_na()
    # warm-up default 10 is below step 122, so all four records count
    assert runs.loc["megatron-llm-slow-iterations", "step_time_mean_s"] == pytest.approx(88.241700)


def pd_na():
    import pandas as pd
    return pd.NA


def test_unknown_format_exit_2(tmp_path: Path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\nworld\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["parse", str(bad), "--out", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    assert "no training records of a known format" in capsys.readouterr().err
    with pytest.raises(ResultsError) as err:
        parse_paths([bad], tmp_path / "r")
    assert err.value.lines() == [
        f"error: {bad}: no training records of a known format, no failure and no provenance line "
        "(hint: known formats: trainer, mllog, nemo2, nemo, megatron, torchtitan, hf; force one with --format)"]


def test_missing_path(tmp_path: Path):
    with pytest.raises(ResultsError, match="no such file or folder"):
        parse_paths([tmp_path / "nope*.out"], tmp_path / "r")


def test_run_dir_joins_plan_manifest_accounting(tmp_path: Path):
    rd = tmp_path / "rd"
    (rd / "logs").mkdir(parents=True)
    (rd / "accounting").mkdir()
    (rd / "plan.json").write_text(json.dumps({"schema_version": 1, "jobs": [
        {"run_id": "tiny-a1b2c3d4", "script": "scripts/tiny-a1b2c3d4.sbatch", "params": PARAMS}]}))
    (rd / "manifest.jsonl").write_text(json.dumps({"run_id": "tiny-a1b2c3d4", "job_id": "77", "submit_time": "t",
                                                   "state": "TIMEOUT"}) + "\n")
    (rd / "accounting" / "sacct.txt").write_text(
        "JobID|JobName|State|ExitCode|Elapsed|NodeList\n77|tiny-a1b2c3d4|TIMEOUT|0:0|00:10:00|n[1-2]\n")
    (rd / "logs" / "tiny-a1b2c3d4_77.out").write_text(trainer_log(3, done=False))
    summaries = parse_paths([rd / "logs"], tmp_path / "res", run_dir=rd)
    assert summaries[0]["run_id"] == "tiny-a1b2c3d4"
    row = store.read_runs(tmp_path / "res").iloc[0]
    assert row["job_id"] == "77" and row["nodes"] == 1 and row["model"] == "tiny-gpt"
    assert row["slurm_state"] == "TIMEOUT" and row["slurm_elapsed_s"] == 600.0
    assert row["slurm_nodelist"] == "n[1-2]"
    assert (row["status"], row["failure_reason"]) == ("failed", "time_limit")
    assert row["warmup_steps"] == 1 and row["step_time_mean_s"] == 0.5  # plan's warm-up
    assert row["tokens_per_s_per_gpu"] == 8 * 128 / 0.5 / 2
    assert row["tflops_formula"] == "megatron-2024-gelu" and row["mfu"] > 0


def test_provenance_line_supplies_params_and_reparse_replaces(tmp_path: Path):
    prov = {"schema_version": 1, "run_id": "tiny-ffff0000", "params": PARAMS, "job_id": "9",
            "nodelist": "n1", "driver_version": "535.104.05", "nccl_version": None, "cuda_version": None}
    log = tmp_path / "slurm-9.out"
    log.write_text(" 0: SLURMKIT_PROVENANCE " + json.dumps(prov) + "\n" + trainer_log(4))
    res = tmp_path / "res"
    assert run("parse", str(log), "--out", str(res), "--warmup-steps", "0").exit_code == 0
    assert run("parse", str(log), "--out", str(res), "--format", "trainer").exit_code == 0
    runs = store.read_runs(res)
    assert len(runs) == 1
    row = runs.iloc[0]
    assert (row["run_id"], row["job_id"], row["gbs"]) == ("tiny-ffff0000", "9", 8)
    assert row["status"] == "completed" and row["final_loss"] == 1.0
    assert row["driver_version"] == "535.104.05" and row["slurm_nodelist"] == "n1"
    steps = store.read_steps(res)
    assert list(steps["step"]) == [1, 2, 3, 4] and list(steps["source_line"]) == [3, 4, 5, 6]
    assert set(steps["source_file"]) == {str(log)} and set(steps["run_id"]) == {"tiny-ffff0000"}


def test_no_provenance_no_plan_params_null(tmp_path: Path):
    log = tmp_path / "train_job-4242.out"
    log.write_text(trainer_log(2, done=False))
    parse_paths([str(tmp_path / "*.out")], tmp_path / "res")
    row = store.read_runs(tmp_path / "res").iloc[0]
    assert (row["run_id"], row["job_id"]) == ("train_job-4242", "4242")
    assert row["status"] == "incomplete" and row["steps_target"] == 4
    for key in ("nodes", "gbs", "gpu_peak_tflops", "tflops_per_gpu", "mfu"):
        assert row[key] is pd_na() or row[key] != row[key], key  # null, never zero


def test_run_dir_alone_parses_its_logs(tmp_path: Path):
    rd = tmp_path / "rd"
    (rd / "logs").mkdir(parents=True)
    (rd / "plan.json").write_text(json.dumps({"jobs": [{"run_id": "r1", "params": PARAMS}]}))
    (rd / "logs" / "r1_5.out").write_text(trainer_log(4))
    result = run("parse", "--run-dir", str(rd), "--out", str(tmp_path / "res"))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("r1: trainer, 4 step rows, last step 4/4, completed")
    assert run("parse", "--out", str(tmp_path / "res")).exit_code == 2  # nothing to parse


def test_many_logs_written_in_batches_and_reparse_replaces(tmp_path: Path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(20):
        (logs / f"job_{i:02d}-{100 + i}.out").write_text(trainer_log(2 + i % 3))
    res = tmp_path / "res"
    summaries = parse_paths([logs], res)
    assert [s["run_id"] for s in summaries] == [f"job_{i:02d}-{100 + i}" for i in range(20)]
    assert len(list((res / "runs").glob("*.parquet"))) == 2  # 16 + 4 logs, not 20 files
    assert len(list((res / "steps").glob("*.parquet"))) == 2
    (logs / "job_05-105.out").write_text(trainer_log(4))
    parse_paths([logs / "job_05-105.out"], res)
    runs = store.read_runs(res).set_index("run_id")
    assert len(runs) == 20 and runs.index.is_unique and runs.loc["job_05-105", "steps_completed"] == 4
    steps = store.read_steps(res)
    assert len(steps) == sum(2 + i % 3 for i in range(20) if i != 5) + 4


def test_pool_keeps_order_and_reports_unknown_files_last(tmp_path: Path, monkeypatch):
    from slurmkit.results import parse

    monkeypatch.setattr(parse, "PARALLEL_MIN_BYTES", 0)  # small logs over a pool of two
    monkeypatch.setattr(parse.os, "cpu_count", lambda: 2)
    logs = tmp_path / "logs"
    logs.mkdir()
    for i in range(12):
        (logs / f"r{i:02d}.out").write_text("noise\n" if i in (3, 8) else trainer_log(3))
    seen: list[str] = []
    with pytest.raises(ResultsError) as err:
        parse_paths([logs], tmp_path / "res", on_done=lambda s: seen.append(s["source_file"]))
    assert seen == [str(logs / f"r{i:02d}.out") for i in range(12)]
    assert [p.location.file for p in err.value.problems] == [str(logs / "r03.out"), str(logs / "r08.out")]
    runs = store.read_runs(tmp_path / "res")
    assert sorted(runs["run_id"]) == [f"r{i:02d}" for i in range(12) if i not in (3, 8)]
    assert len(list((tmp_path / "res" / "runs").glob("*.parquet"))) == 1  # the pool's groups: one commit


def test_unreadable_provenance_line_and_unknown_parameter_are_counted_warnings(tmp_path: Path):
    prov = {"schema_version": 1, "run_id": "tiny-0a0a0a0a", "job_id": "9",
            "params": {**PARAMS, "gbs": "eight", "flavour": "x"}}
    good = tmp_path / "good.out"
    good.write_text("SLURMKIT_PROVENANCE " + json.dumps(prov) + "\n" + trainer_log(4))
    bad = tmp_path / "bad.out"
    bad.write_text("SLURMKIT_PROVENANCE {\"run_id\": \n" + trainer_log(4))
    result = run("parse", str(good), str(bad), "--out", str(tmp_path / "res"))
    assert result.exit_code == 0, result.output
    assert (f"warning: {good}: parameter 'gbs': 'eight' is not an integer; left out" in result.output
            and f"warning: {good}: parameter 'flavour' is not a slurmkit parameter; left out" in result.output)
    assert f"warning: {bad}:1: unreadable provenance line (Expecting value: line 1 column 11 (char 10))" \
        in result.output
    runs = store.read_runs(tmp_path / "res").set_index("run_id")
    assert runs.loc["tiny-0a0a0a0a", "parse_warnings"] == 2 and runs.loc["bad", "parse_warnings"] == 1
    assert runs.loc["tiny-0a0a0a0a", "nodes"] == 1 and runs.loc["tiny-0a0a0a0a", "gbs"] is pd_na()
    assert "flavour" not in runs.columns


def test_run_dir_with_a_bad_manifest_line_is_an_error(tmp_path: Path, capsys):
    rd = tmp_path / "rd"
    (rd / "logs").mkdir(parents=True)
    (rd / "plan.json").write_text(json.dumps({"jobs": [{"run_id": "r1", "params": PARAMS}]}))
    (rd / "manifest.jsonl").write_text('{"run_id": "r1", "job_id": "5", "submit_time": "t", "state": "RUNNING"}\n'
                                       '{"run_id": "r1", "job_id": "5"\n')
    (rd / "logs" / "r1_5.out").write_text(trainer_log(4))
    with pytest.raises(SystemExit) as exit_info:
        main(["parse", "--run-dir", str(rd), "--out", str(tmp_path / "res")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        f"error: {rd}/manifest.jsonl:2: not a manifest record: Expecting ',' delimiter: line 1 column 31 "
        "(char 30) (hint: fix or delete the line; slurmkit rewrites the file)\n")
    assert not (tmp_path / "res").exists()  # before the skipping reader, the run went in with no job id


def test_bad_provenance_lines_cost_only_their_value(tmp_path: Path, capsys):
    """Issue 11: one bad provenance line (a mistyped parameter, an object as run id, a number
    beyond int64, nesting no JSON reader follows, a metadata list in an MLPerf record) costs its
    own value at most: every log of the batch is stored, each problem is one warning with the
    file, no traceback."""
    logs = {
        "nodes-abc.out": 'SLURMKIT_PROVENANCE {"run_id": "r-abc", "params": {"nodes": "abc", "gbs": 8}}\n',
        "object-id.out": 'SLURMKIT_PROVENANCE {"run_id": {"a": 1}, "params": {}}\n',
        "huge.out": 'SLURMKIT_PROVENANCE {"run_id": "r-huge", "params": {"nodes": 99999999999999999999999, "lr": 1e400}}\n',
        "deep.out": "SLURMKIT_PROVENANCE " + "[" * 5000 + "]" * 5000 + "\n",
        "good.out": 'SLURMKIT_PROVENANCE {"run_id": "r-good", "params": {"nodes": 2}}\n',
    }
    for name, head in logs.items():
        (tmp_path / name).write_text(head + trainer_log(2, done=False))
    (tmp_path / "mllog.out").write_text(
        ':::MLLOG {"key": "tracked_stats", "value": {"train_step_timing": 1e999}, "metadata": [1]}\n'
        ':::MLLOG {"key": "tracked_stats", "time_ms": 1e300, "value": {"train_step_timing": 0.5}, "metadata": {"step": 1}}\n')
    main(["parse", str(tmp_path), "--out", str(tmp_path / "r")])  # returns: exit 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    runs = store.read_runs(tmp_path / "r").set_index("run_id")
    assert sorted(runs.index) == ["deep", "mllog", "object-id", "r-abc", "r-good", "r-huge"]
    assert runs.loc["r-abc", "nodes"] is pd_na() and runs.loc["r-abc", "gbs"] == 8
    assert runs.loc["r-huge", "nodes"] is pd_na() and runs.loc["r-good", "nodes"] == 2
    assert runs.loc["r-good", "parse_warnings"] == 0 and runs.loc["r-huge", "parse_warnings"] == 2
    assert runs.loc["mllog", "last_step"] == 1
    assert f"warning: {tmp_path / 'nodes-abc.out'}: parameter 'nodes': 'abc' is not an integer; left out" in err
    assert f"warning: {tmp_path / 'object-id.out'}:1: unreadable provenance line (run_id is not a string)" in err
    assert f"warning: {tmp_path / 'huge.out'}: parameter nodes: an integer beyond 2**62; stored as null" in err
    assert f"warning: {tmp_path / 'deep.out'}:1: unreadable provenance line (JSON nested too deeply)" in err
