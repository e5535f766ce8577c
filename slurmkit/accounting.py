"""Slurm accounting: job state, exit code, elapsed time and node list per job id.

Reads ``sacct --parsable2`` output with its header line (``RUN_DIR/accounting/sacct.txt``, as
``slurmkit collect`` writes it; a trailing ``|`` from ``--parsable`` is tolerated) and
``sacct --json`` output (the 21.08 and 23.11+ schemas). Job steps (``123.batch``, ``123.0``)
are skipped: the job line carries the job's outcome.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slurmkit.parsers.numbers import parse_duration_s


@dataclass(frozen=True)
class JobAccounting:
    job_id: str
    state: str | None          # e.g. COMPLETED, TIMEOUT, "CANCELLED by 123" -> CANCELLED
    exit_code: str | None      # sacct's "code:signal", e.g. "0:0", "1:0", "0:9"
    elapsed_s: float | None
    nodelist: str | None


def read_accounting(path: Path | str) -> dict[str, JobAccounting]:
    """Job id -> accounting from a sacct text (parsable2 with header) or JSON file."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    if text.lstrip().startswith("{"):
        return _from_json(json.loads(text))
    return parse_parsable(text)


def parse_parsable(text: str) -> dict[str, JobAccounting]:
    """``sacct --parsable2`` (or ``--parsable``) output whose first line is the header."""
    lines = [ln.rstrip("\r") for ln in text.splitlines() if "|" in ln]
    if not lines:
        return {}
    header = [h.strip().lower() for h in lines[0].rstrip("|").split("|")]
    if "jobid" not in header:
        return {}
    jobs: dict[str, JobAccounting] = {}
    for line in lines[1:]:
        row = dict(zip(header, (v.strip() for v in line.split("|"))))
        job_id = row.get("jobid", "")
        if not job_id or "." in job_id:
            continue
        jobs[job_id] = JobAccounting(
            job_id, _state(row.get("state")), row.get("exitcode") or None,
            parse_duration_s(row.get("elapsed")), row.get("nodelist") or None)
    return jobs


def _state(text: str | None) -> str | None:
    return text.split()[0].rstrip("+") if text else None


def _number(value: Any) -> Any:
    """Slurm 23.11+ wraps numbers as {"set", "infinite", "number"}."""
    if isinstance(value, dict):
        return value.get("number") if value.get("set", True) else None
    return value


def _from_json(data: dict[str, Any]) -> dict[str, JobAccounting]:
    jobs: dict[str, JobAccounting] = {}
    for job in data.get("jobs", []):
        state = (job.get("state") or {}).get("current")
        state = state[0] if isinstance(state, list) and state else state
        exit_info = job.get("exit_code") or {}
        code = _number(exit_info.get("return_code"))
        signal = _number(((exit_info.get("signal") or {}).get("id")))
        exit_code = None if code is None else f"{code}:{signal or 0}"
        elapsed = _number((job.get("time") or {}).get("elapsed"))
        job_id = str(job.get("job_id"))
        jobs[job_id] = JobAccounting(job_id, state or None, exit_code,
                                     float(elapsed) if elapsed is not None else None,
                                     job.get("nodes") or None)
    return jobs
