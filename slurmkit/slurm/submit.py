"""Submit a run directory's scripts with sbatch and record each job in the manifest.

Policy, in order of the plan's jobs:
- a run already in the manifest with a job id is skipped (submitting twice submits once), unless
  ``resubmit_failed`` and its latest state is a failure; a SUBMIT_FAILED run is always retried;
- sbatch runs in the run directory (``cd DIR && sbatch scripts/<run_id>.sbatch``) so the script's
  relative ``--output=logs/...`` resolves there, exactly as a user would resubmit it by hand;
- transient controller errors are retried with back-off inside the client; a script sbatch still
  rejects is recorded as SUBMIT_FAILED with sbatch's message and the sweep goes on; if the
  controller stays unreachable the sweep stops, the rest are left unsubmitted for the next call;
- the manifest is rewritten atomically after every submission.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from slurmkit.errors import Location, SlurmkitError
from slurmkit.rundir import (
    FAILED_STATES,
    SUBMIT_FAILED,
    JobRecord,
    PlannedJob,
    log_path,
    read_manifest,
    read_plan,
    utc_now,
    write_manifest,
)
from slurmkit.slurm.client import SlurmClient, SlurmCommandError


@dataclass
class SubmitReport:
    """What one `submit` call did, run by run."""

    submitted: list[JobRecord] = field(default_factory=list)
    skipped: list[JobRecord] = field(default_factory=list)
    failed: list[JobRecord] = field(default_factory=list)
    not_attempted: list[str] = field(default_factory=list)  # controller unreachable
    feasibility: dict[str, str] = field(default_factory=dict)  # --test-only: run_id -> message
    infeasible: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)  # --dry-run


def load_planned_jobs(run_dir: Path) -> list[PlannedJob]:
    """The jobs of DIR/plan.json, in plan order, each with its script on disk."""
    plan = read_plan(run_dir)
    for job in plan.jobs:
        if not (Path(run_dir) / job.script).is_file():
            raise SlurmkitError(f"{job.run_id}: script {job.script} is missing",
                                location=Location(str(plan.path)), hint="regenerate the run directory")
    return plan.jobs


def select_jobs(jobs: list[PlannedJob], only: list[str] | tuple[str, ...]) -> list[PlannedJob]:
    """Restrict to --only run ids, rejecting ids the plan does not have."""
    if not only:
        return jobs
    known = {j.run_id for j in jobs}
    unknown = [r for r in only if r not in known]
    if unknown:
        raise SlurmkitError(f"unknown run id {unknown[0]!r}", hint="see the run ids in plan.json")
    return [j for j in jobs if j.run_id in set(only)]


def needs_submit(record: JobRecord | None, resubmit_failed: bool) -> bool:
    if record is None or record.job_id is None:
        return True
    return resubmit_failed and record.state in FAILED_STATES


def submit_plan(run_dir: Path, client: SlurmClient, *, only: tuple[str, ...] = (),
                dry_run: bool = False, test_only: bool = False, chain: bool = False,
                resubmit_failed: bool = False) -> SubmitReport:
    """Submit what is not yet submitted; see the module docstring for the policy."""
    run_dir = Path(run_dir)
    jobs = select_jobs(load_planned_jobs(run_dir), only)
    if test_only:
        return check_feasible(run_dir, client, jobs)
    records = read_manifest(run_dir)
    if resubmit_failed and not dry_run:
        from slurmkit.slurm.track import refresh  # fresh states decide what "failed" means
        records = refresh(run_dir, client).records
    report = SubmitReport()
    previous_job = None
    for job in jobs:
        record = records.get(job.run_id)
        if record is not None and not needs_submit(record, resubmit_failed):
            report.skipped.append(record)
            previous_job = record.job_id
            continue
        dependency = f"afterany:{previous_job}" if chain and previous_job else None
        if dry_run:
            dep = f" --dependency={dependency}" if dependency else ""
            report.commands.append(f"cd {run_dir} && sbatch --parsable{dep} {job.script}")
            previous_job = f"<job of {job.run_id}>"
            continue
        try:
            new = submit_one(client, run_dir, job, record, dependency)
        except SlurmCommandError:  # retries exhausted: the controller is down, stop here
            report.not_attempted = [j.run_id for j in jobs[jobs.index(job):]]
            break
        (report.submitted if new.job_id else report.failed).append(new)
        previous_job = new.job_id or previous_job
        records[job.run_id] = new
        write_manifest(run_dir, records)
    return report


def submit_one(client: SlurmClient, run_dir: Path, job: PlannedJob, previous: JobRecord | None,
               dependency: str | None) -> JobRecord:
    """sbatch one script: its new record, SUBMIT_FAILED when sbatch rejects it. A transient
    error (the controller unreachable after the client's retries) is raised."""
    attempt = (previous.attempt + 1) if previous else 1
    try:
        outcome = client.submit(job.script, run_dir, dependency=dependency)
    except SlurmCommandError as exc:
        if exc.transient:
            raise
        return JobRecord(job.run_id, None, utc_now(), SUBMIT_FAILED, attempt=attempt, error=str(exc))
    if outcome.job_id is None:  # only a test-only submission answers without a job id
        return JobRecord(job.run_id, None, utc_now(), SUBMIT_FAILED, attempt=attempt,
                         error=f"sbatch gave no job id: {outcome.message}")
    return JobRecord(job.run_id, outcome.job_id, utc_now(), "PENDING", attempt=attempt,
                     log_path=log_path(job.run_id, outcome.job_id))


def check_feasible(run_dir: Path, client: SlurmClient, jobs: list[PlannedJob]) -> SubmitReport:
    """Ask the controller (sbatch --test-only) whether each job could ever run; submits nothing."""
    report = SubmitReport()
    for job in jobs:
        try:
            report.feasibility[job.run_id] = client.submit(job.script, run_dir, test_only=True).message
        except SlurmCommandError as exc:
            report.infeasible[job.run_id] = str(exc)
    return report
