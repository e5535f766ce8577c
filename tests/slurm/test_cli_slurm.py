"""`slurmkit submit|status|cancel|collect` through the real entry point, with the fake client."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import slurmkit.cli.slurm as cli_slurm
from slurmkit.cli import cli, main


class _Main:
    """Lets CliRunner call slurmkit.cli.main, which turns errors into lines and exit codes."""

    name = "slurmkit"

    def main(self, args, prog_name=None, **extra):
        main(args)


@pytest.fixture
def run(fake, monkeypatch):
    monkeypatch.setattr(cli_slurm, "_client", lambda: fake)
    return lambda *args: CliRunner().invoke(_Main(), list(args), catch_exceptions=False)


def test_submit_then_status_table(run_dir, fake, run):
    result = run("submit", str(run_dir))
    assert result.exit_code == 0
    assert result.output.splitlines() == ["alpha: submitted job 100", "beta: submitted job 101",
                                          "gamma: submitted job 102"]
    fake.set_state("100", "COMPLETED")
    fake.set_state("101", "FAILED", exit_code="3:0", nodelist="node1")
    fake.set_state("102", "RUNNING", exit_code=None)
    lines = run("status", str(run_dir)).output.splitlines()
    assert lines[0].split() == ["RUN_ID", "JOB_ID", "STATE", "EXIT", "NODES"]
    assert lines[2].split() == ["beta", "101", "FAILED", "3:0", "node1"]
    assert lines[-1] == "3 runs: 1 COMPLETED, 1 FAILED, 1 RUNNING (squeue + sacct)"
    assert run("submit", str(run_dir)).output == "3 already submitted (skipped)\n"


def test_status_json_and_no_accounting(run_dir, fake, run):
    fake.accounting = False
    run("submit", str(run_dir), "--only", "alpha")
    data = json.loads(run("status", str(run_dir), "--format", "json").output)
    assert data["accounting"] is False and data["jobs"][0]["job_id"] == "100"
    assert "accounting unavailable: squeue and scontrol only" in run("status", str(run_dir)).output


def test_status_watch_stops_when_done(run_dir, fake, run, monkeypatch):
    run("submit", str(run_dir))
    ticks = []

    def sleep(seconds):
        ticks.append(seconds)
        for job_id in ("100", "101", "102"):
            fake.set_state(job_id, "COMPLETED")
    monkeypatch.setattr(cli_slurm.time, "sleep", sleep)
    out = run("status", str(run_dir), "--watch", "--interval", "2").output
    assert ticks == [2.0] and out.count("RUN_ID") == 2


def test_submit_failure_is_one_line_per_run_and_exit_2(run_dir, fake, run):
    fake.reject["scripts/beta.sbatch"] = "sbatch: error: Batch job submission failed: Invalid qos specification"
    result = run("submit", str(run_dir))
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "alpha: submitted job 100", "gamma: submitted job 101",
        "error: beta: sbatch failed: sbatch: error: Batch job submission failed: Invalid qos specification"]
    assert "Traceback" not in result.output


def test_test_only_and_dry_run(run_dir, fake, run):
    fake.infeasible.add("scripts/beta.sbatch")
    result = run("submit", str(run_dir), "--test-only")
    assert result.exit_code == 2
    assert "alpha: feasible: sbatch: Job 1 to start at now" in result.output
    # sbatch's job number is no real job's: the real submission gets another
    assert ("note: --test-only submitted nothing; its job numbers and start times are sbatch's "
            "estimates, and the real submission gets its own job ids") in result.output.splitlines()
    assert "error: beta: infeasible: sbatch failed:" in result.output
    dry = run("submit", str(run_dir), "--dry-run", "--chain")
    assert dry.output.splitlines()[0] == f"cd {run_dir} && sbatch --parsable scripts/alpha.sbatch"


def test_cancel(run_dir, fake, run):
    run("submit", str(run_dir))
    assert run("cancel", str(run_dir), "beta").output == "beta: cancelled job 101\n"
    result = run("cancel", str(run_dir), "nope")
    assert result.exit_code == 2 and "error: run 'nope' is not in" in result.output


def test_collect_without_parse(run_dir, fake, run):
    run("submit", str(run_dir), "--only", "alpha")
    fake.set_state("100", "COMPLETED")
    (run_dir / "logs/alpha_100.out").write_text("x\n")
    out = run("collect", str(run_dir), "--no-parse").output
    assert f"accounting: {run_dir}/accounting/sacct.txt" in out
    assert "logs: 1 found, 0 missing" in out


def test_missing_run_dir_is_one_line(tmp_path, run):
    result = run("status", str(tmp_path / "nope"))
    assert result.output == f"nothing submitted from {tmp_path / 'nope'} yet (slurmkit submit {tmp_path / 'nope'})\n"
    assert run("collect", str(tmp_path / "nope")).output.startswith("nothing submitted from")
    result = run("submit", str(tmp_path / "nope"))
    assert result.exit_code == 2 and result.output.startswith("error: ")
    assert "no plan.json here" in result.output


def test_commands_are_registered():
    assert {"submit", "status", "cancel", "collect"} <= set(cli.list_commands(None))


def test_status_csv_parses_with_the_shared_format_option(run_dir, fake, run):
    import csv

    run("submit", str(run_dir))
    fake.set_state("101", "FAILED", exit_code="3:0", nodelist="node1")
    rows = list(csv.DictReader(run("status", str(run_dir), "--format", "csv").output.splitlines()))
    assert [r["run_id"] for r in rows] == ["alpha", "beta", "gamma"]
    assert rows[1] == {"run_id": "beta", "job_id": "101", "state": "FAILED", "exit_code": "3:0", "nodelist": "node1"}
