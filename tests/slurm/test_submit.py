"""slurmkit.slurm.submit with the fake client: idempotence, failure policy, chain, test-only, dry-run."""
from __future__ import annotations

import json

import pytest

from slurmkit.errors import SlurmkitError
from slurmkit.rundir import read_manifest
from slurmkit.slurm.submit import submit_plan


def test_submits_each_script_once(run_dir, fake):
    report = submit_plan(run_dir, fake)
    assert [r.run_id for r in report.submitted] == ["alpha", "beta", "gamma"]
    records = read_manifest(run_dir)
    assert records["alpha"].job_id == "100" and records["alpha"].state == "PENDING"
    assert records["alpha"].log_path == "logs/alpha_100.out" and records["alpha"].attempt == 1
    again = submit_plan(run_dir, fake)
    assert again.submitted == [] and len(again.skipped) == 3
    assert fake.count("submit") == 3


def test_a_rejected_script_is_recorded_and_the_sweep_goes_on(run_dir, fake):
    fake.reject["scripts/beta.sbatch"] = "sbatch: error: Batch job submission failed: Invalid account"
    report = submit_plan(run_dir, fake)
    assert [r.run_id for r in report.submitted] == ["alpha", "gamma"]
    records = read_manifest(run_dir)
    assert records["beta"].state == "SUBMIT_FAILED" and records["beta"].job_id is None
    assert "Invalid account" in records["beta"].error
    del fake.reject["scripts/beta.sbatch"]
    retry = submit_plan(run_dir, fake)  # SUBMIT_FAILED runs are retried, the rest skipped
    assert [r.run_id for r in retry.submitted] == ["beta"]
    assert read_manifest(run_dir)["beta"].attempt == 2


def test_an_unreachable_controller_stops_the_sweep(run_dir, fake):
    fake.reject = {}
    submit_plan(run_dir, fake, only=("alpha",))
    fake.transient_failures = 99
    report = submit_plan(run_dir, fake)
    assert report.not_attempted == ["beta", "gamma"]
    assert set(read_manifest(run_dir)) == {"alpha"}


def test_manifest_is_written_after_each_submission(run_dir, fake):
    seen = []
    original = fake.submit

    def spying_submit(script, cwd, **kw):
        seen.append(len(read_manifest(run_dir)))
        return original(script, cwd, **kw)
    fake.submit = spying_submit
    submit_plan(run_dir, fake)
    assert seen == [0, 1, 2]


def test_chain_makes_each_job_wait_for_the_previous(run_dir, fake):
    submit_plan(run_dir, fake, chain=True)
    assert [c[2] for c in fake.calls if c[0] == "submit"] == [None, "afterany:100", "afterany:101"]


def test_resubmit_failed(run_dir, fake):
    submit_plan(run_dir, fake)
    fake.set_state("100", "COMPLETED")
    fake.set_state("101", "FAILED", exit_code="1:0")
    fake.set_state("102", "TIMEOUT", exit_code="0:15")
    report = submit_plan(run_dir, fake, resubmit_failed=True)
    assert [r.run_id for r in report.submitted] == ["beta", "gamma"]
    assert read_manifest(run_dir)["beta"].attempt == 2


def test_only_and_unknown_run_id(run_dir, fake):
    assert [r.run_id for r in submit_plan(run_dir, fake, only=("beta",)).submitted] == ["beta"]
    with pytest.raises(SlurmkitError, match="unknown run id 'nope'"):
        submit_plan(run_dir, fake, only=("nope",))


def test_dry_run_submits_and_writes_nothing(run_dir, fake):
    report = submit_plan(run_dir, fake, dry_run=True, chain=True)
    assert report.commands[0] == f"cd {run_dir} && sbatch --parsable scripts/alpha.sbatch"
    assert report.commands[1] == \
        f"cd {run_dir} && sbatch --parsable --dependency=afterany:<job of alpha> scripts/beta.sbatch"
    assert fake.calls == [] and not (run_dir / "manifest.jsonl").exists()


def test_test_only_reports_infeasible_jobs(run_dir, fake):
    fake.infeasible.add("scripts/gamma.sbatch")
    report = submit_plan(run_dir, fake, test_only=True)
    assert set(report.feasibility) == {"alpha", "beta"}
    assert "Requested node configuration is not available" in report.infeasible["gamma"]
    assert not (run_dir / "manifest.jsonl").exists()


def test_missing_plan_and_missing_script(tmp_path, run_dir, fake):
    with pytest.raises(SlurmkitError, match="no plan.json here"):
        submit_plan(tmp_path / "nowhere", fake)
    (run_dir / "scripts/beta.sbatch").unlink()
    with pytest.raises(SlurmkitError, match="beta: script scripts/beta.sbatch is missing"):
        submit_plan(run_dir, fake)


def test_malformed_plan(tmp_path, fake):
    (tmp_path / "plan.json").write_text(json.dumps({"jobs": [{"script": "x"}]}))
    with pytest.raises(SlurmkitError, match="not a slurmkit plan"):
        submit_plan(tmp_path, fake)
