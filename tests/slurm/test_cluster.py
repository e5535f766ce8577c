"""Integration tests on the real local cluster (scripts/local-slurm), marked `slurm`.

pytest runs inside the cluster's head namespace (scripts/run-tests), so sbatch and friends reach
the local controller and nothing else. Off CI they skip with a one-line reason when the cluster
is not there; on CI (CI=true) an unavailable cluster fails them (see conftest.cluster).
"""
from __future__ import annotations

import subprocess

import pytest

from slurmkit.rundir import read_manifest, sacct_rows
from slurmkit.slurm.client import SlurmCli, jobs_from_sacct
from slurmkit.slurm.collect import collect, settled_sacct
from slurmkit.slurm.submit import submit_plan
from slurmkit.slurm.track import cancel, refresh

pytestmark = pytest.mark.slurm


def test_two_node_job_runs_on_distinct_nodes_and_is_accounted(tmp_path, cluster, new_run_dir, wait):
    body = 'srun -n 2 --ntasks-per-node=1 bash -c \'echo "task $SLURM_PROCID on $(hostname)"\''
    run_dir = new_run_dir(tmp_path, ["multi"], body, {"multi": ["--nodes=2", "--gres=gpu:2"]})
    submit_plan(run_dir, cluster)
    report = wait(run_dir, cluster)
    record = report.records["multi"]
    assert (record.state, record.exit_code) == ("COMPLETED", "0:0")
    first, second = subprocess.run(["scontrol", "show", "hostnames", record.nodelist], check=True,
                                   capture_output=True, text=True).stdout.split()
    log = (run_dir / record.log_path).read_text()
    assert f"task 0 on {first}" in log and f"task 1 on {second}" in log
    collected = collect(run_dir, cluster)
    rows = {r["JobID"]: r for r in sacct_rows(collected.accounting_file.read_text())}
    job = rows[record.job_id]
    assert job["State"] == "COMPLETED" and job["NodeList"] == record.nodelist
    assert "gres/gpu=4" in job["AllocTRES"] and f"{record.job_id}.batch" in rows


def test_failing_job_records_its_exit_code(tmp_path, cluster, new_run_dir, wait):
    run_dir = new_run_dir(tmp_path, ["ok", "bad"], 'if [ "$SLURM_JOB_NAME" = bad ]; then exit 3; fi')
    submit_plan(run_dir, cluster)
    records = wait(run_dir, cluster).records
    assert (records["ok"].state, records["ok"].exit_code) == ("COMPLETED", "0:0")
    assert (records["bad"].state, records["bad"].exit_code) == ("FAILED", "3:0")
    assert read_manifest(run_dir)["bad"].exit_code == "3:0"
    again = submit_plan(run_dir, cluster, resubmit_failed=True)
    assert [r.run_id for r in again.submitted] == ["bad"] and again.submitted[0].attempt == 2
    assert again.submitted[0].job_id != records["bad"].job_id


def test_time_limit_gives_timeout(tmp_path, cluster, new_run_dir, wait):
    run_dir = new_run_dir(tmp_path, ["slow"], "sleep 300")
    job_id = submit_plan(run_dir, cluster).submitted[0].job_id
    # Time limits are whole minutes checked every 30 s: shrink this one to zero instead of waiting.
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "TimeLimit=0"], check=True)
    assert wait(run_dir, cluster, timeout_s=90).records["slow"].state == "TIMEOUT"


def test_chain_runs_jobs_one_after_another(tmp_path, cluster, new_run_dir, wait):
    run_dir = new_run_dir(tmp_path, ["first", "second"], "sleep 1")
    report = submit_plan(run_dir, cluster, chain=True)
    first, second = (r.job_id for r in report.submitted)
    squeue = subprocess.run(["squeue", "-h", "-j", second, "-o", "%E"], capture_output=True, text=True)
    assert f"afterany:{first}" in squeue.stdout
    wait(run_dir, cluster)
    text, missing = settled_sacct(cluster, [first, second], wait_s=20)  # accounting lags a little
    acct = {r["JobID"]: r for r in sacct_rows(text)}
    assert missing == set() and acct[second]["Start"] >= acct[first]["End"]


def test_test_only_rejects_infeasible_jobs(tmp_path, cluster, new_run_dir, wait):
    run_dir = new_run_dir(tmp_path, ["fits", "too-many-nodes", "too-many-gpus"], "true",
                           {"fits": ["--nodes=2", "--gres=gpu:2"], "too-many-nodes": ["--nodes=5"],
                            "too-many-gpus": ["--gres=gpu:3"]})
    report = submit_plan(run_dir, cluster, test_only=True)
    assert set(report.feasibility) == {"fits"} and "to start at" in report.feasibility["fits"]
    assert set(report.infeasible) == {"too-many-nodes", "too-many-gpus"}
    assert "Requested node configuration is not available" in report.infeasible["too-many-nodes"]
    assert not (run_dir / "manifest.jsonl").exists()


def test_submitting_twice_submits_once(tmp_path, cluster, new_run_dir, wait):
    run_dir = new_run_dir(tmp_path, ["once-a", "once-b"], "true")
    first = submit_plan(run_dir, cluster)
    second = submit_plan(run_dir, cluster)
    assert len(first.submitted) == 2 and second.submitted == [] and len(second.skipped) == 2
    ids = [r.job_id for r in first.submitted]
    wait(run_dir, cluster)
    out = subprocess.run(["squeue", "-h", "-t", "all", "-n", "once-a,once-b", "-o", "%i"],
                         capture_output=True, text=True, check=True).stdout.split()
    assert sorted(i for i in out if int(i) >= min(map(int, ids))) == sorted(ids)


def test_sbatch_failing_for_one_script_leaves_the_rest_submitted(tmp_path, cluster, new_run_dir, wait):
    run_dir = new_run_dir(tmp_path, ["good-1", "broken", "good-2"], "true",
                           {"broken": ["--partition=no-such-partition"]})
    report = submit_plan(run_dir, cluster)
    assert [r.run_id for r in report.submitted] == ["good-1", "good-2"]
    broken = read_manifest(run_dir)["broken"]
    assert broken.state == "SUBMIT_FAILED" and broken.job_id is None
    assert "invalid partition" in broken.error.lower()
    records = wait(run_dir, cluster).records
    assert records["good-2"].state == "COMPLETED" and records["broken"].state == "SUBMIT_FAILED"


def test_cancel_and_status_source(tmp_path, cluster, new_run_dir, wait):
    run_dir = new_run_dir(tmp_path, ["sleeper"], "sleep 300")
    submit_plan(run_dir, cluster)
    assert [r.run_id for r in cancel(run_dir, cluster)] == ["sleeper"]
    report = wait(run_dir, cluster, timeout_s=30)
    assert report.accounting and report.records["sleeper"].state == "CANCELLED"
    job_id = report.records["sleeper"].job_id
    text, missing = settled_sacct(cluster, [job_id], wait_s=20)  # accounting lags a few seconds
    assert missing == set() and jobs_from_sacct(text)[job_id].state == "CANCELLED"
    assert refresh(run_dir, cluster).records["sleeper"].state == "CANCELLED"


class NoAccounting(SlurmCli):
    """The real client on a site without accounting: squeue and scontrol only."""

    def has_accounting(self) -> bool:
        return False


def test_without_accounting_status_and_collect_use_squeue_and_scontrol(tmp_path, cluster, new_run_dir, wait):
    client = NoAccounting()
    run_dir = new_run_dir(tmp_path, ["fine", "broke"], 'if [ "$SLURM_JOB_NAME" = broke ]; then exit 4; fi')
    submit_plan(run_dir, client)
    report = wait(run_dir, client)
    assert not report.accounting
    assert (report.records["broke"].state, report.records["broke"].exit_code) == ("FAILED", "4:0")
    collected = collect(run_dir, client)
    text = collected.accounting_file.read_text()
    assert collected.accounting_file.name == "scontrol.txt" and not (run_dir / "accounting/sacct.txt").exists()
    assert f"JobId={report.records['broke'].job_id} JobName=broke JobState=FAILED ExitCode=4:0" in text


def test_nothing_can_leave_the_machine(tmp_path, cluster, new_run_dir, wait):
    """The head namespace (this process) and every node have no route off the machine."""
    probe = "ip route get 192.0.2.123"  # TEST-NET-1: never answered, only routed or not
    assert subprocess.run(probe.split(), capture_output=True).returncode != 0
    nodes = int(subprocess.run(["sinfo", "-h", "-o", "%D"], capture_output=True, text=True).stdout)
    body = f"srun -n {nodes} --ntasks-per-node=1 sh -c 'if {probe}; then exit 9; fi; echo isolated $(hostname)'"
    run_dir = new_run_dir(tmp_path, ["probe"], body, {"probe": [f"--nodes={nodes}"]})
    submit_plan(run_dir, cluster)
    record = wait(run_dir, cluster).records["probe"]
    log = (run_dir / record.log_path).read_text()
    assert record.state == "COMPLETED" and log.count("isolated node") == nodes, log
