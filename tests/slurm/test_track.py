"""slurmkit.slurm.track with the fake client: batching, source precedence, no accounting, purged jobs."""
from __future__ import annotations

import pytest

from slurmkit.errors import SlurmkitError
from slurmkit.rundir import read_manifest
from slurmkit.slurm.submit import submit_plan
from slurmkit.slurm.track import cancel, refresh


def test_one_squeue_and_one_sacct_call_for_the_whole_sweep(run_dir, fake):
    submit_plan(run_dir, fake)
    fake.set_state("100", "RUNNING", exit_code=None)
    fake.set_state("101", "COMPLETED")
    fake.set_state("102", "FAILED", exit_code="3:0", nodelist="node2")
    report = refresh(run_dir, fake)
    assert fake.count("queue") == 1 and fake.count("sacct") == 1
    states = {r.run_id: (r.state, r.exit_code) for r in report.records.values()}
    assert states == {"alpha": ("RUNNING", None), "beta": ("COMPLETED", "0:0"), "gamma": ("FAILED", "3:0")}
    assert read_manifest(run_dir)["gamma"].nodelist == "node2"
    assert report.counts() == {"COMPLETED": 1, "FAILED": 1, "RUNNING": 1} and not report.done


def test_purged_jobs_come_from_accounting(run_dir, fake):
    submit_plan(run_dir, fake)
    for job_id in ("100", "101", "102"):
        fake.set_state(job_id, "COMPLETED")
        fake.purged.add(job_id)
    report = refresh(run_dir, fake)
    assert report.done and report.counts() == {"COMPLETED": 3}


def test_placeholder_rows_do_not_override_the_controller(run_dir, fake):
    submit_plan(run_dir, fake, only=("alpha",))
    fake.set_state("100", "COMPLETED")
    fake.placeholder.add("100")
    fake.jobs["100"]["state"] = "COMPLETED"
    assert refresh(run_dir, fake).records["alpha"].state == "COMPLETED"


def test_without_accounting_uses_scontrol_and_unknown_for_purged(run_dir, fake):
    fake.accounting = False
    submit_plan(run_dir, fake)
    fake.set_state("100", "FAILED", exit_code="2:0")
    fake.set_state("101", "RUNNING", exit_code=None)
    fake.purged.add("101")
    report = refresh(run_dir, fake)
    assert not report.accounting
    assert fake.count("sacct") == 0 and fake.count("show_jobs") == 1
    states = {r.run_id: (r.state, r.exit_code) for r in report.records.values()}
    assert states["alpha"] == ("FAILED", "2:0")
    assert states["beta"] == ("UNKNOWN", None)   # purged while running, no accounting
    assert states["gamma"][0] == "PENDING"


def test_finished_state_survives_purge(run_dir, fake):
    fake.accounting = False
    submit_plan(run_dir, fake, only=("alpha",))
    fake.set_state("100", "COMPLETED")
    refresh(run_dir, fake)
    fake.purged.add("100")
    assert refresh(run_dir, fake).records["alpha"].state == "COMPLETED"


def test_no_jobs_means_no_calls(run_dir, fake):
    assert refresh(run_dir, fake).records == {}
    assert fake.count("queue") == 0 and fake.count("sacct") == 0


def test_cancel_only_unfinished_and_named(run_dir, fake):
    submit_plan(run_dir, fake)
    fake.set_state("100", "COMPLETED")
    refresh(run_dir, fake)
    assert [r.run_id for r in cancel(run_dir, fake)] == ["beta", "gamma"]
    assert [r.run_id for r in cancel(run_dir, fake, ("gamma",))] == ["gamma"]
    assert fake.calls[-1] == ("cancel", ("102",))
    with pytest.raises(SlurmkitError, match="run 'nope' is not in"):
        cancel(run_dir, fake, ("nope",))
