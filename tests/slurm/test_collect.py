"""slurmkit.slurm.collect with the fake client: sacct.txt, placeholder waiting, logs, no accounting."""
from __future__ import annotations

from slurmkit.rundir import sacct_rows
from slurmkit.slurm.collect import collect, placeholder_jobs
from slurmkit.slurm.submit import submit_plan


def finish_all(run_dir, fake):
    submit_plan(run_dir, fake)
    for job_id, run_id in (("100", "alpha"), ("101", "beta"), ("102", "gamma")):
        fake.set_state(job_id, "COMPLETED")
        (run_dir / f"logs/{run_id}_{job_id}.out").write_text("hello\n")


def test_writes_sacct_with_header_and_finds_logs(run_dir, fake):
    finish_all(run_dir, fake)
    (run_dir / "logs/gamma_102.out").unlink()
    report = collect(run_dir, fake, wait_s=0)
    rows = sacct_rows((run_dir / "accounting/sacct.txt").read_text())
    assert {r["JobID"] for r in rows} == {"100", "100.batch", "101", "101.batch", "102", "102.batch"}
    assert list(rows[0])[:4] == ["JobID", "JobName", "State", "ExitCode"]
    assert "ConsumedEnergy" in rows[0] and "AllocTRES" in rows[0]
    assert [p.name for p in report.logs] == ["alpha_100.out", "beta_101.out"]
    assert report.missing_logs == ["gamma"] and report.unfinished == []


def test_waits_for_placeholder_rows_to_settle(run_dir, fake):
    finish_all(run_dir, fake)
    fake.placeholder.add("101")
    original, calls = fake.sacct, []

    def settling_sacct(*args, **kw):
        calls.append(1)
        if len(calls) == 3:  # the real row appears on the second collect query
            fake.placeholder.clear()
        return original(*args, **kw)
    fake.sacct = settling_sacct
    report = collect(run_dir, fake, wait_s=30)
    assert report.pending_accounting == []
    assert "101|beta|" in (run_dir / "accounting/sacct.txt").read_text()


def test_gives_up_waiting_and_says_which(run_dir, fake):
    finish_all(run_dir, fake)
    fake.unaccounted.add("102")
    assert collect(run_dir, fake, wait_s=0).pending_accounting == ["102"]


def test_placeholder_jobs():
    text = "JobID|JobName\n1|allocation\n2|beta\n2.batch|batch\n"
    assert placeholder_jobs(text, {"1", "2", "3"}) == {"1", "3"}


def test_without_accounting_stores_scontrol_view(run_dir, fake):
    fake.accounting = False
    finish_all(run_dir, fake)
    fake.set_state("101", "FAILED", exit_code="1:0")
    report = collect(run_dir, fake)
    assert report.accounting_file.name == "scontrol.txt"
    text = report.accounting_file.read_text()
    assert "JobId=101 JobName=beta JobState=FAILED ExitCode=1:0" in text
    assert fake.count("sacct") == 0
