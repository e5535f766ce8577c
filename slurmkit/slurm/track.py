"""Refresh and cancel a sweep's jobs: one batched squeue and one batched sacct call per refresh.

Which source wins: the controller (squeue) knows live jobs and recently finished ones best; the
accounting database (sacct) knows jobs the controller has already purged, and exit codes. Without
accounting, `scontrol show job` (one call for all jobs) supplies exit codes, and jobs purged from
the controller become UNKNOWN; the report says that accounting is unavailable.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slurmkit.errors import SlurmkitError
from slurmkit.rundir import ACTIVE_STATES, MANIFEST_FILE, UNKNOWN, JobRecord, read_manifest, write_manifest
from slurmkit.slurm.client import JobInfo, SlurmClient, jobs_from_sacct

STATUS_FIELDS = ("JobID", "JobName", "State", "ExitCode", "NodeList")


@dataclass(frozen=True)
class StatusReport:
    records: dict[str, JobRecord]
    accounting: bool  # False: squeue + scontrol only

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.records.values():
            counts[record.state] = counts.get(record.state, 0) + 1
        return dict(sorted(counts.items()))

    @property
    def done(self) -> bool:
        return all(r.finished for r in self.records.values())


def merge(record: JobRecord, live: JobInfo | None, acct: JobInfo | None) -> JobRecord:
    """A record's new state from the controller's view and the accounting view of its job."""
    seen = live or acct
    if seen is None:
        # Purged and unaccounted: keep a known final state, else say we cannot tell.
        return record if record.finished else record.updated(state=UNKNOWN)
    state = seen.state
    # sacct reports "0:0" for jobs still running: an exit code means something only at the end.
    exit_code = None if state in ACTIVE_STATES else \
        (acct.exit_code if acct else None) or (live.exit_code if live else None)
    nodelist = (live.nodelist if live else None) or (acct.nodelist if acct else None)
    return record.updated(state=state, exit_code=exit_code,
                          nodelist=nodelist or record.nodelist)


def refresh(run_dir: Path, client: SlurmClient) -> StatusReport:
    """Query Slurm once for the whole sweep, update the manifest atomically, return the states."""
    records = read_manifest(run_dir)
    job_ids = [r.job_id for r in records.values() if r.job_id]
    accounting = client.has_accounting()
    live = client.queue(job_ids) if job_ids else {}
    if not job_ids:
        acct = {}
    elif accounting:
        acct = jobs_from_sacct(client.sacct(job_ids, STATUS_FIELDS, allocations_only=True))
    else:
        acct = client.show_jobs(job_ids)
    new = {run_id: merge(r, live.get(r.job_id), acct.get(r.job_id)) if r.job_id else r
           for run_id, r in records.items()}
    if new != records:
        write_manifest(run_dir, new)
    return StatusReport(new, accounting)


def cancel(run_dir: Path, client: SlurmClient, run_ids: tuple[str, ...] = ()) -> list[JobRecord]:
    """scancel the given runs' jobs (all unfinished ones when none given); one scancel call."""
    records = read_manifest(run_dir)
    unknown = [r for r in run_ids if r not in records]
    if unknown:
        raise SlurmkitError(f"run {unknown[0]!r} is not in {Path(run_dir) / MANIFEST_FILE}",
                            hint="`slurmkit status DIR` lists the submitted runs")
    chosen = [records[r] for r in run_ids] if run_ids else list(records.values())
    targets = [r for r in chosen if r.job_id and not r.finished]
    client.cancel([r.job_id for r in targets if r.job_id])
    return targets
