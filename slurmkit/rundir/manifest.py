"""manifest.jsonl: which job each run became and what state it is in (docs/contracts.md).

One JSON object per run_id; when a file holds several lines for one run_id the last wins. The
whole file is rewritten atomically after every change, so a crash mid-sweep leaves a manifest
that says exactly what was submitted. A line that is not a record is an error naming the file
and line (slurmkit rewrites the file, so a bad line is damage, not something to skip).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from slurmkit.atomic import write_text_atomic
from slurmkit.errors import Location, RunDirError
from slurmkit.rundir.paths import MANIFEST_FILE
from slurmkit.rundir.states import ACTIVE_STATES


@dataclass(frozen=True)
class JobRecord:
    """One manifest line. exit_code and nodelist are additions filled by status/collect."""

    run_id: str
    job_id: str | None
    submit_time: str            # ISO 8601 UTC
    state: str                  # a normalised Slurm state, SUBMIT_FAILED or UNKNOWN
    attempt: int = 1
    error: str | None = None
    log_path: str | None = None
    exit_code: str | None = None
    nodelist: str | None = None

    @property
    def finished(self) -> bool:
        return self.job_id is None or self.state not in ACTIVE_STATES

    def updated(self, **changes: Any) -> JobRecord:
        return replace(self, **changes)


_FIELDS = tuple(f.name for f in fields(JobRecord))
_REQUIRED = ("run_id", "submit_time", "state")


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_manifest(run_dir: Path | str) -> dict[str, JobRecord]:
    """run_id -> latest record; an absent file is an empty manifest."""
    path = Path(run_dir) / MANIFEST_FILE
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    records: dict[str, JobRecord] = {}
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = _record(json.loads(line))
        except ValueError as exc:
            raise RunDirError(f"not a manifest record: {exc}", location=Location(str(path), line_no),
                              hint="fix or delete the line; slurmkit rewrites the file") from None
        records[record.run_id] = record
    return records


def _record(obj: Any) -> JobRecord:
    """A JobRecord from one decoded line (keys it does not know are ignored); ValueError
    saying what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    missing = [k for k in _REQUIRED if not isinstance(obj.get(k), str) or not obj[k]]
    if missing:
        raise ValueError(f"{missing[0]} is missing or not a string")
    values = {k: obj[k] for k in _FIELDS if k in obj}
    if isinstance(values.get("job_id"), int) and not isinstance(values["job_id"], bool):
        values["job_id"] = str(values["job_id"])
    for key in ("job_id", "error", "log_path", "exit_code", "nodelist"):
        if values.get(key) is not None and not isinstance(values[key], str):
            raise ValueError(f"{key} is not a string or null")
    if not isinstance(values.get("attempt", 1), int) or isinstance(values.get("attempt"), bool):
        raise ValueError("attempt is not an integer")
    return JobRecord(**values)


def write_manifest(run_dir: Path | str, records: dict[str, JobRecord]) -> None:
    """Rewrite the whole manifest atomically, one line per run in the order given."""
    lines = [json.dumps(asdict(r), sort_keys=False, separators=(",", ":")) for r in records.values()]
    write_text_atomic(Path(run_dir) / MANIFEST_FILE, "".join(line + "\n" for line in lines))
