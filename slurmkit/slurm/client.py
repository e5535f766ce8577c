"""The one module that runs Slurm commands (sbatch, squeue, sacct, scancel, scontrol).

Everything else talks to a :class:`SlurmClient`: :class:`SlurmCli` runs the real commands,
tests inject a fake with the same methods. Every query is batched: one call covers a whole sweep.
"""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from slurmkit.errors import SlurmError
from slurmkit.rundir import SACCT_FIELDS, normalize_state, sacct_jobs

# Controller hiccups worth retrying; anything else (a rejected script) fails at once.
TRANSIENT_MARKERS = (
    "Socket timed out", "Unable to contact slurm controller", "temporarily unable to accept job",
    "Resource temporarily unavailable", "Connection refused", "Connection timed out",
    "Zero Bytes were transmitted or received",
)

# Environment variables that would silently change what the commands do or print.
_ENV_PREFIXES = ("SBATCH_", "SQUEUE_", "SACCT_", "SCANCEL_", "SLURM_TIME_FORMAT")


@dataclass(frozen=True)
class JobInfo:
    """What the controller or the accounting database says about one job."""

    job_id: str
    name: str | None
    state: str                  # slurmkit.rundir.normalize_state: "CANCELLED by 0" -> "CANCELLED"
    exit_code: str | None = None  # "rc:signal", e.g. "3:0"
    nodelist: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class SubmitOutcome:
    """sbatch's answer: a job id, or (with test_only) the controller's feasibility message."""

    job_id: str | None
    message: str


class SlurmCommandError(SlurmError):
    """A Slurm command exited non-zero; ``transient`` when retrying may help."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        text = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {returncode}"
        super().__init__(f"{argv[0]} failed: {text}")
        self.argv, self.returncode, self.stderr = argv, returncode, stderr
        self.transient = any(m.lower() in stderr.lower() for m in TRANSIENT_MARKERS)


class SlurmClient(Protocol):
    def submit(self, script: str, cwd: Path, *, dependency: str | None = None,
               test_only: bool = False) -> SubmitOutcome: ...
    def queue(self, job_ids: Iterable[str]) -> dict[str, JobInfo]: ...
    def show_jobs(self, job_ids: Iterable[str]) -> dict[str, JobInfo]: ...
    def sacct(self, job_ids: Iterable[str], fields: Iterable[str] = SACCT_FIELDS,
              allocations_only: bool = False) -> str: ...
    def cancel(self, job_ids: Iterable[str]) -> None: ...
    def has_accounting(self) -> bool: ...


def clean_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without variables that change Slurm commands' behaviour."""
    env = dict(os.environ if env is None else env)
    return {k: v for k, v in env.items() if not k.startswith(_ENV_PREFIXES)}


def exit_code_of(wait_status: str) -> str | None:
    """squeue's exit_code (a raw wait status, 768) in sacct's 'code:signal' form ('3:0')."""
    try:
        status = int(wait_status)
    except ValueError:
        return None
    return f"{status >> 8}:{status & 0x7F}"


def jobs_from_sacct(text: str) -> dict[str, JobInfo]:
    """One JobInfo per job of sacct's output (slurmkit.rundir.sacct_jobs: steps and
    placeholder rows skipped)."""
    return {job_id: JobInfo(job_id, j.name, j.state, j.exit_code, j.nodelist)
            for job_id, j in sacct_jobs(text).items()}


def parse_scontrol_line(line: str) -> JobInfo | None:
    """One `scontrol show job -o` line -> JobInfo (values never contain spaces except Command)."""
    fields = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
    if "JobId" not in fields:
        return None
    nodes = fields.get("NodeList")
    return JobInfo(fields["JobId"], fields.get("JobName"), normalize_state(fields.get("JobState", "")),
                   fields.get("ExitCode"), None if nodes in (None, "(null)") else nodes,
                   fields.get("Reason"))


class SlurmCli:
    """The real client: runs the Slurm commands found on PATH."""

    def __init__(self, *, retries: int = 4, backoff_s: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep, timeout_s: float = 120) -> None:
        self.retries, self.backoff_s, self.sleep, self.timeout_s = retries, backoff_s, sleep, timeout_s
        self._accounting: bool | None = None

    def run(self, argv: list[str], cwd: Path | None = None, *, with_stderr: bool = False) -> str:
        """Run one command, retrying transient controller errors with exponential back-off;
        its stdout (and stderr, where the command answers there, as `sbatch --test-only`)."""
        for attempt in range(self.retries + 1):
            try:
                proc = subprocess.run(argv, cwd=cwd, env=clean_env(), capture_output=True,
                                      text=True, timeout=self.timeout_s)
            except FileNotFoundError as exc:
                raise SlurmError(f"{argv[0]} not found", hint="run slurmkit on a Slurm login node") from exc
            if proc.returncode == 0:
                return proc.stdout + proc.stderr if with_stderr else proc.stdout
            err = SlurmCommandError(argv, proc.returncode, proc.stderr)
            if not err.transient or attempt == self.retries:
                raise err
            self.sleep(self.backoff_s * 2 ** attempt)
        raise AssertionError("unreachable")

    def submit(self, script: str, cwd: Path, *, dependency: str | None = None,
               test_only: bool = False) -> SubmitOutcome:
        argv = ["sbatch", "--test-only"] if test_only else ["sbatch", "--parsable"]
        if dependency:
            argv.append(f"--dependency={dependency}")
        out = self.run([*argv, script], cwd=cwd, with_stderr=test_only).strip()
        if test_only:
            return SubmitOutcome(None, out.splitlines()[-1] if out else "feasible")
        job_id = out.splitlines()[-1].split(";", 1)[0] if out else ""
        if not job_id.isdigit():
            raise SlurmError(f"sbatch printed no job id: {out!r}")
        return SubmitOutcome(job_id, out)

    def queue(self, job_ids: Iterable[str]) -> dict[str, JobInfo]:
        ids = sorted(set(job_ids), key=int)
        if not ids:
            return {}
        try:
            out = self.run(["squeue", "--noheader", "--states=all", "--jobs=" + ",".join(ids),
                            "--Format=JobID:|,Name:|,State:|,Reason:|,NodeList:|,exit_code:"])
        except SlurmCommandError as exc:
            if "Invalid job id" in exc.stderr:  # every id already purged from the controller
                return {}
            raise
        jobs = {}
        for line in out.splitlines():
            job_id, name, state, reason, nodes, status = (line.split("|") + [""] * 6)[:6]
            if job_id in ids:
                jobs[job_id] = JobInfo(job_id, name, normalize_state(state), exit_code_of(status),
                                       nodes or None, None if reason in ("", "None") else reason)
        return jobs

    def show_jobs(self, job_ids: Iterable[str]) -> dict[str, JobInfo]:
        """Without accounting: one `scontrol show job -o` for all jobs the controller holds."""
        wanted = set(job_ids)
        if not wanted:
            return {}
        jobs = {}
        for line in self.run(["scontrol", "show", "job", "-o"]).splitlines():
            info = parse_scontrol_line(line)
            if info and info.job_id in wanted:
                jobs[info.job_id] = info
        return jobs

    def sacct(self, job_ids: Iterable[str], fields: Iterable[str] = SACCT_FIELDS,
              allocations_only: bool = False) -> str:
        ids = sorted(set(job_ids), key=int)
        if not ids:
            return "|".join(fields) + "\n"
        argv = ["sacct", "--parsable2", "--jobs=" + ",".join(ids), "--format=" + ",".join(fields)]
        return self.run(argv + (["--allocations"] if allocations_only else []))

    def cancel(self, job_ids: Iterable[str]) -> None:
        ids = sorted(set(job_ids), key=int)
        if ids:
            self.run(["scancel", *ids])

    def has_accounting(self) -> bool:
        if self._accounting is None:
            out = self.run(["scontrol", "show", "config"])
            storage = next((ln.split("=", 1)[1].strip() for ln in out.splitlines()
                            if ln.startswith("AccountingStorageType")), "accounting_storage/none")
            self._accounting = storage != "accounting_storage/none"
        return self._accounting
