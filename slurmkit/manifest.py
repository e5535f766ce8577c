"""DIR/manifest.jsonl: which job each run became and what state it is in (docs/contracts.md).

One JSON object per run_id; when a file holds several lines for one run_id the last wins. The
whole file is rewritten atomically after every change, so a crash mid-sweep leaves a manifest
that says exactly what was submitted.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from slurmkit.atomic import write_text_atomic
from slurmkit.errors import Location, SlurmkitError

MANIFEST_NAME = "manifest.jsonl"
SUBMIT_FAILED = "SUBMIT_FAILED"
# No longer in the controller's memory and not in accounting (or no accounting): state unknown.
UNKNOWN = "UNKNOWN"
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED",
                           "REQUEUED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
                           "REQUEUE_FED", "REQUEUE_HOLD", "SPECIAL_EXIT", "RESV_DEL_HOLD"})
FAILED_STATES = frozenset({"FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY",
                           "BOOT_FAIL", "DEADLINE", "PREEMPTED", SUBMIT_FAILED})


@dataclass(frozen=True)
class JobRecord:
    """One manifest line. exit_code and nodelist are additions filled by status/collect."""

    run_id: str
    job_id: str | None
    submit_time: str
    state: str
    attempt: int = 1
    error: str | None = None
    log_path: str | None = None
    exit_code: str | None = None
    nodelist: str | None = None

    @property
    def finished(self) -> bool:
        return self.job_id is None or self.state not in ACTIVE_STATES

    def updated(self, **changes) -> "JobRecord":
        return replace(self, **changes)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def log_path_for(run_id: str, job_id: str) -> str:
    return f"logs/{run_id}_{job_id}.out"


def read_manifest(run_dir: Path) -> dict[str, JobRecord]:
    """run_id -> latest record; an absent file is an empty manifest."""
    path = Path(run_dir) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    records: dict[str, JobRecord] = {}
    fields = set(JobRecord.__dataclass_fields__)
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            record = JobRecord(**{k: v for k, v in obj.items() if k in fields})
        except (ValueError, TypeError) as exc:
            raise SlurmkitError(f"not a manifest record: {exc}", location=Location(str(path), line_no),
                                hint="fix or delete the line; slurmkit rewrites the file") from exc
        records[record.run_id] = record
    return records


def write_manifest(run_dir: Path, records: dict[str, JobRecord]) -> None:
    """Rewrite the whole manifest atomically, one line per run in the order given."""
    lines = [json.dumps(asdict(r), sort_keys=False, separators=(",", ":")) for r in records.values()]
    write_text_atomic(Path(run_dir) / MANIFEST_NAME, "".join(line + "\n" for line in lines))
