"""sacct output, the one reader: ``sacct --parsable2`` text with its header line (what
``collect`` stores in DIR/accounting/sacct.txt and what ``status`` reads live; a trailing ``|``
from ``--parsable`` is tolerated) and ``sacct --json`` (the 21.08 and 23.11+ schemas).

Job steps (``123.batch``, ``123.0``) are skipped: the job row carries the job's outcome. A row
whose job name is the placeholder ``allocation`` is skipped too: sacct shows it for a few seconds
after a job ends, before the job's real row is written. States go through normalize_state.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slurmkit.errors import Location, RunDirError
from slurmkit.rundir.states import normalize_state

# The fields `collect` stores; ConsumedEnergy is empty where the site has no energy plugin.
SACCT_FIELDS = ("JobID", "JobName", "State", "ExitCode", "Elapsed", "NodeList", "Start", "End",
                "AllocTRES", "ConsumedEnergy")
# An sacct row that is a placeholder while the job's record is being written (seconds after it ends).
PLACEHOLDER_JOB_NAME = "allocation"
_ELAPSED = re.compile(r"^\s*(?:(?P<d>\d+)-)?(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:\.\d*)?)\s*$")


@dataclass(frozen=True)
class SacctJob:
    """What accounting says about one job."""

    job_id: str
    name: str | None
    state: str                  # normalised: "CANCELLED by 0" -> "CANCELLED"
    exit_code: str | None       # "code:signal", e.g. "0:0", "1:0", "0:9"
    elapsed_s: float | None
    nodelist: str | None        # None before nodes are assigned


def sacct_rows(text: str, source: str = "sacct output") -> list[dict[str, str]]:
    """Rows of parsable output (job and step rows), keyed by the header's field names. A row
    with more fields than the header is a RunDirError naming ``source`` and the line."""
    lines = [(n, line.rstrip("\r")) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        return []
    trailing = lines[0][1].endswith("|")  # --parsable: every line ends with one more "|"
    header = _fields(lines[0][1], trailing)
    rows = []
    for line_no, line in lines[1:]:
        values = _fields(line, trailing)
        if len(values) > len(header):
            raise RunDirError(f"sacct row has {len(values)} fields, its header {len(header)}",
                              location=Location(source, line_no), hint="collect it again")
        rows.append(dict(zip(header, values)))
    return rows


def sacct_jobs(text: str, source: str = "sacct output") -> dict[str, SacctJob]:
    """Job id -> what accounting says, from parsable (with header) or JSON output."""
    if text.lstrip().startswith("{"):
        try:
            return _from_json(json.loads(text))
        except ValueError as exc:
            raise RunDirError(f"unreadable sacct JSON: {exc}", location=Location(source)) from None
    rows = sacct_rows(text, source)
    if rows and not any(k.lower() == "jobid" for k in rows[0]):
        raise RunDirError("sacct output without its header line (no JobID field)",
                          location=Location(source, 1),
                          hint="collect it again (`sacct --parsable2` prints the header)")
    jobs = {}
    for row in rows:
        row = {k.lower(): v for k, v in row.items()}
        job_id = row.get("jobid", "")
        if not job_id or "." in job_id or row.get("jobname") == PLACEHOLDER_JOB_NAME:
            continue
        jobs[job_id] = SacctJob(job_id, row.get("jobname") or None, normalize_state(row.get("state")),
                                row.get("exitcode") or None, elapsed_s(row.get("elapsed")),
                                _nodes(row.get("nodelist")))
    return jobs


def read_sacct(path: Path | str) -> dict[str, SacctJob]:
    """sacct_jobs of a file (DIR/accounting/sacct.txt, or a saved ``sacct --json``)."""
    return sacct_jobs(Path(path).read_text(encoding="utf-8", errors="replace"), str(path))


def elapsed_s(text: str | None) -> float | None:
    """Seconds of Slurm's ``[D-][HH:]MM:SS[.fff]``; None when empty or not a duration."""
    m = _ELAPSED.match(text or "")
    if not m:
        return None
    return int(m["d"] or 0) * 86400 + int(m["h"] or 0) * 3600 + int(m["m"]) * 60 + float(m["s"])


def _nodes(value: Any) -> str | None:
    return value if isinstance(value, str) and value not in ("", "None assigned", "(null)") else None


def _fields(line: str, trailing: bool) -> list[str]:
    return [v.strip() for v in (line[:-1] if trailing and line.endswith("|") else line).split("|")]


def _number(value: Any) -> Any:
    """Slurm 23.11+ wraps numbers as {"set", "infinite", "number"}."""
    if isinstance(value, dict):
        return value.get("number") if value.get("set", True) else None
    return value


def _from_json(data: Any) -> dict[str, SacctJob]:
    jobs: dict[str, SacctJob] = {}
    for job in data.get("jobs", []) if isinstance(data, dict) else []:
        exit_info = job.get("exit_code") or {}
        code = _number(exit_info.get("return_code"))
        signal = _number((exit_info.get("signal") or {}).get("id"))
        elapsed = _number((job.get("time") or {}).get("elapsed"))
        job_id = str(job.get("job_id"))
        jobs[job_id] = SacctJob(job_id, job.get("name") or None,
                                normalize_state((job.get("state") or {}).get("current")),
                                None if code is None else f"{code}:{signal or 0}",
                                float(elapsed) if elapsed is not None else None, _nodes(job.get("nodes")))
    return jobs
