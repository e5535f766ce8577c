"""`slurmkit parse DIR/logs/*.out` after `collect` (the README's quick-start order): logs that
lie in a run directory are joined to its plan, manifest and accounting as `--run-dir` would, so
re-parsing keeps each run's Slurm state, exit code and elapsed time (issue 12, point 5)."""
from __future__ import annotations

import pytest

import slurmkit.cli.slurm as cli_slurm
from slurmkit.results.store import read_runs
from slurmkit.rundir import provenance_line, read_plan

pytest.importorskip("pyarrow")


def trainer_log(run_id: str, params: dict, job_id: str, steps: int = 4) -> str:
    """A finished job's log as the example trainer and the script's provenance line write it."""
    lines = [provenance_line(run_id, params, job_id, nodelist="node[1-2]")]
    lines += [f"SKTRAIN step={n}/{steps} loss={4.0 - n * 0.5} lr=0.001 grad_norm=1.0 step_time_s=0.5 "
              f"tokens_per_s_per_gpu=1000.0 time_unix={1000 + n}" for n in range(1, steps + 1)]
    return "\n".join([*lines, f"SKTRAIN done steps={steps} final_loss={4.0 - steps * 0.5}"]) + "\n"


@pytest.fixture
def collected(tmp_path, fake, cli, monkeypatch):
    """runs/smoke generated, submitted, finished (one job failed) and collected into results/."""
    monkeypatch.setattr(cli_slurm, "_client", lambda: fake)
    monkeypatch.chdir(tmp_path)
    assert cli("generate", "local-smoke", "--out", "runs/smoke")[0] == 0
    assert cli("submit", "runs/smoke")[0] == 0
    plan = read_plan("runs/smoke")
    for number, job in enumerate(plan.jobs):
        job_id = str(100 + number)
        fake.set_state(job_id, "FAILED" if number else "COMPLETED", exit_code=f"{number}:0",
                       elapsed=f"00:01:0{number}")
        (tmp_path / "runs/smoke/logs" / f"{job.run_id}_{job_id}.out").write_text(
            trainer_log(job.run_id, job.params, job_id))
    code, out, _ = cli("collect", "runs/smoke", "--results", "results")
    assert code == 0 and "logs: 2 found, 0 missing" in out
    return plan


def accounting(results: str = "results") -> dict[str, tuple]:
    runs = read_runs(results)
    return {r.run_id: (r.slurm_state, r.slurm_exit_code, r.slurm_elapsed_s)
            for r in runs.itertuples()}


def test_reparsing_a_run_directorys_logs_keeps_the_accounting(collected, cli, tmp_path):
    first, second = (job.run_id for job in collected.jobs)
    after_collect = accounting()
    assert after_collect == {first: ("COMPLETED", "0:0", 60.0), second: ("FAILED", "1:0", 61.0)}
    code, out, err = cli("parse", *sorted(str(p) for p in (tmp_path / "runs/smoke/logs").glob("*.out")),
                         "--out", "results")
    assert code == 0, err
    assert err.splitlines()[0] == (f"run directory: {tmp_path / 'runs/smoke'} "
                                   "(its plan, manifest and accounting join the logs)")
    assert accounting() == after_collect
    assert read_runs("results").loc[lambda r: r.run_id == second, "status"].item() == "failed"


def test_a_relative_glob_finds_the_run_directory_too(collected, cli):
    code, _, err = cli("parse", "runs/smoke/logs/*.out", "--out", "again")
    assert code == 0 and err.startswith("run directory: runs/smoke ")
    assert accounting("again") == accounting()


def test_logs_of_two_run_directories_are_refused_with_a_hint(collected, cli, tmp_path):
    other = tmp_path / "runs/copy"
    (other / "logs").mkdir(parents=True)
    (other / "plan.json").write_text((tmp_path / "runs/smoke/plan.json").read_text())
    for log in (tmp_path / "runs/smoke/logs").glob("*.out"):
        (other / "logs" / log.name).write_text(log.read_text())
    code, out, err = cli("parse", "runs/smoke/logs", "runs/copy/logs", "--out", "results")
    assert code == 2 and out == ""
    assert err == ("error: the logs lie in 2 run directories: runs/copy, runs/smoke "
                   "(hint: parse one at a time: `slurmkit parse --run-dir DIR --out RESULTS`)\n")
    assert accounting() != {} and all(a[0] for a in accounting().values())  # results untouched


def test_logs_outside_a_run_directory_parse_as_before(collected, cli, tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    job = collected.jobs[0]
    (loose / "job.out").write_text(trainer_log(job.run_id, job.params, "100"))
    code, _, err = cli("parse", str(loose / "job.out"), "--out", "loose-results")
    assert code == 0 and "run directory" not in err
    runs = read_runs("loose-results")
    assert list(runs["run_id"]) == [job.run_id]
    assert runs[["slurm_state", "slurm_exit_code", "slurm_elapsed_s"]].isna().all(axis=None)
