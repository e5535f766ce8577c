"""End to end on the real local cluster, the path a GPU cluster takes: generate a 2-node torchrun
sweep of the example trainer (experiments/local-smoke.yaml: DDP and FSDP), whose run directory
carries the trainer file; submit with the real sbatch from an environment where Python cannot
import slurmkit (so the jobs can only run the carried file); wait by polling, collect (which
parses), and check what really happened: sacct says COMPLETED, both nodes' ranks ran, the steps
trained and the loss fell."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from slurmkit.cli import main
from slurmkit.plan.make import make_plan
from slurmkit.plan.render import render_plan, write_plan
from slurmkit.rundir import sacct_rows

pytest.importorskip("torch", reason="the example trainer needs torch (the trainer extra)")
pytestmark = [pytest.mark.slurm, pytest.mark.torch]

EXPERIMENT = Path(__file__).parents[2] / "experiments" / "local-smoke.yaml"
STEP = re.compile(r"^SKTRAIN step=(\d+)/(\d+) loss=(\S+) ", re.MULTILINE)


def test_torchrun_sweep_trains_across_two_nodes(tmp_path, cluster, wait, capsys, monkeypatch, no_slurmkit,
                                                new_run_dir):
    run_dir = tmp_path / "smoke"
    plan = render_plan(make_plan(EXPERIMENT, sites=["local"]))
    write_plan(plan, run_dir)
    assert len(plan.jobs) >= 2 and all(j.params["nodes"] == 2 for j in plan.jobs)
    (trainer,) = (run_dir / "trainer").iterdir()
    for job in plan.jobs:
        text = (run_dir / job.script).read_text()
        assert f'"$SLURM_SUBMIT_DIR"/trainer/{trainer.name} \\\n' in text and "slurmkit.trainer" not in text

    # sbatch passes its environment to the job: every Python process there refuses slurmkit (a
    # probe job submitted the same way shows it: its `import slurmkit` under srun fails)
    probe_dir = new_run_dir(tmp_path / "probe", ["probe"], 'srun --ntasks=1 python -c "import slurmkit"')
    monkeypatch.setenv("PYTHONPATH", no_slurmkit["PYTHONPATH"])
    with _no_exit():
        main(["submit", str(probe_dir)])
        main(["submit", str(run_dir)])
    monkeypatch.delenv("PYTHONPATH")
    probe = wait(probe_dir, cluster, timeout_s=120, poll_s=1).records["probe"]
    assert (probe.state, probe.exit_code) == ("FAILED", "1:0")
    assert "No module named 'slurmkit' (blocked by the test)" in (probe_dir / probe.log_path).read_text()
    assert capsys.readouterr().out.count(": submitted job ") == len(plan.jobs) + 1
    records = wait(run_dir, cluster, timeout_s=300, poll_s=2).records
    assert {r.state for r in records.values()} == {"COMPLETED"}

    with _no_exit():
        main(["collect", str(run_dir)])
    out = capsys.readouterr().out
    assert f"logs: {len(plan.jobs)} found, 0 missing" in out

    acct = {r["JobID"]: r for r in sacct_rows((run_dir / "accounting/sacct.txt").read_text())}
    for record in records.values():
        row = acct[record.job_id]
        assert (row["State"], row["ExitCode"]) == ("COMPLETED", "0:0")
        first, second = hostnames(row["NodeList"])  # two distinct nodes, e.g. node[3-4]
        log = (run_dir / record.log_path).read_text()
        starts = set(re.findall(r"SKTRAIN start rank=(\d+) local_rank=\d+ world_size=4 host=(\S+)", log))
        assert starts == {("0", first), ("1", first), ("2", second), ("3", second)}
        steps = [(int(n), int(total), float(loss)) for n, total, loss in STEP.findall(log)]
        target = plan.jobs[0].params["steps"]
        assert [s[0] for s in steps] == list(range(1, target + 1)) and steps[0][1] == target
        assert steps[-1][2] < steps[0][2], "loss did not fall"
        assert f"SKTRAIN done steps={target}" in log
        assert "No module named 'slurmkit'" not in log
        assert f"parsed {record.run_id}: completed, last step {target}" in out

    from slurmkit.results.store import read_runs
    runs = read_runs(run_dir / "results")
    assert sorted(runs["run_id"]) == sorted(records)
    assert set(runs["status"]) == {"completed"} and set(runs["slurm_state"]) == {"COMPLETED"}
    # the sweep's axis (DDP vs FSDP) is a parameter of each run, so the comparison keeps the two
    # apart instead of averaging them as repeats of one configuration
    from slurmkit.report.compare import compare_runs
    assert sorted(runs["parallel"]) == ["ddp", "fsdp"]
    comparison = compare_runs(runs, by="parallel")
    assert sorted(comparison.configs["parallel"]) == ["ddp", "fsdp"]
    assert set(comparison.configs["n_runs"]) == {1}


def hostnames(nodelist: str) -> list[str]:
    out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True)
    return out.stdout.split()


class _no_exit:
    """main() exits only on errors; collect must not fail."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is SystemExit:
            raise AssertionError(f"slurmkit collect exited with {exc.code}")
        return False
