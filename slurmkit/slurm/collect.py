"""Gather a sweep's accounting and log paths into its run directory (DIR/accounting/).

With accounting: DIR/accounting/sacct.txt is `sacct --parsable2` with a header, job and step
rows, the fields of :data:`slurmkit.rundir.SACCT_FIELDS`. Right after a job ends sacct may show a
placeholder row (job name "allocation") for a few seconds; collect waits for real rows of every
finished job (bounded) so the file describes the jobs. Without accounting it writes
DIR/accounting/scontrol.txt (`scontrol show job -o` lines of the sweep's jobs, while the
controller still holds them) and says so.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from slurmkit.atomic import write_text_atomic
from slurmkit.rundir import SACCT_FIELDS, SACCT_FILE, SCONTROL_FILE, sacct_jobs
from slurmkit.slurm.client import SlurmClient
from slurmkit.slurm.track import refresh


@dataclass
class CollectReport:
    accounting_file: Path | None
    accounting: bool
    logs: list[Path] = field(default_factory=list)            # present, absolute
    missing_logs: list[str] = field(default_factory=list)     # run ids whose log is absent
    unfinished: list[str] = field(default_factory=list)       # run ids still queued or running
    pending_accounting: list[str] = field(default_factory=list)  # job ids sacct has not settled


def placeholder_jobs(text: str, job_ids: set[str]) -> set[str]:
    """Job ids with no real allocation row yet (absent, or only the placeholder row)."""
    return job_ids - set(sacct_jobs(text))


def settled_sacct(client: SlurmClient, job_ids: list[str], wait_s: float,
                  sleep: Callable[[float], None] = time.sleep) -> tuple[str, set[str]]:
    """sacct output once every job has a real row, or the last try after ``wait_s``."""
    deadline, text = time.monotonic() + wait_s, ""
    while True:
        text = client.sacct(job_ids, SACCT_FIELDS)
        missing = placeholder_jobs(text, set(job_ids))
        if not missing or time.monotonic() >= deadline:
            return text, missing
        sleep(0.5)


def collect(run_dir: Path, client: SlurmClient, *, wait_s: float = 15) -> CollectReport:
    """Refresh states, store accounting, and list each run's log (see the module docstring)."""
    run_dir = Path(run_dir)
    status = refresh(run_dir, client)
    records = [r for r in status.records.values() if r.job_id]
    job_ids = [r.job_id for r in records if r.job_id]
    report = CollectReport(None, status.accounting)
    report.unfinished = [r.run_id for r in records if not r.finished]
    if not job_ids:
        return report
    if status.accounting:
        finished_ids = [r.job_id for r in records if r.job_id and r.finished]
        text, missing = settled_sacct(client, finished_ids, wait_s) if finished_ids else ("", set())
        if set(job_ids) != set(finished_ids):  # unfinished jobs: one more query, no waiting
            text = client.sacct(job_ids, SACCT_FIELDS)
        report.pending_accounting = sorted(missing, key=int)
        report.accounting_file = run_dir / SACCT_FILE
        write_text_atomic(report.accounting_file, text or "|".join(SACCT_FIELDS) + "\n")
    else:
        lines = client_show_lines(client, job_ids)
        report.accounting_file = run_dir / SCONTROL_FILE
        write_text_atomic(report.accounting_file, "".join(line + "\n" for line in lines))
    for record in records:
        path = run_dir / record.log_path if record.log_path else None
        if path and path.is_file():
            report.logs.append(path)
        else:
            report.missing_logs.append(record.run_id)
    return report


def client_show_lines(client: SlurmClient, job_ids: list[str]) -> list[str]:
    """`scontrol show job -o`-style lines rebuilt from the client's JobInfo (no accounting)."""
    jobs = client.show_jobs(job_ids)
    return [f"JobId={j.job_id} JobName={j.name} JobState={j.state} ExitCode={j.exit_code} "
            f"NodeList={j.nodelist}" for j in (jobs[i] for i in sorted(jobs, key=int))]
