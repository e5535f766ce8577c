"""The provenance line every generated script prints at job start (docs/contracts.md):
``SLURMKIT_PROVENANCE`` and one JSON object, so a log describes itself without the run
directory. The script's template prints it with shell printf (templates/_base.sbatch.j2, the
same fields in this order; a test runs it and reads it back with read_provenance).
"""
from __future__ import annotations

import json
from typing import Any

from slurmkit.errors import Location, RunDirError

TAG = "SLURMKIT_PROVENANCE "
SCHEMA_VERSION = 1
FIELDS = ("schema_version", "run_id", "params", "job_id", "nodelist", "driver_version",
          "nccl_version", "cuda_version")
_TEXT_FIELDS = ("job_id", "nodelist", "driver_version", "nccl_version", "cuda_version")


def provenance_line(run_id: str, params: dict[str, Any], job_id: str | None, *,
                    nodelist: str | None = None, driver_version: str | None = None,
                    nccl_version: str | None = None, cuda_version: str | None = None) -> str:
    """The line (without its line break), as a job would print it."""
    record = {"schema_version": SCHEMA_VERSION, "run_id": run_id, "params": params, "job_id": job_id,
              "nodelist": nodelist, "driver_version": driver_version, "nccl_version": nccl_version,
              "cuda_version": cuda_version}
    return TAG + json.dumps(record, sort_keys=True, separators=(",", ":"))


def read_provenance(line: str | bytes, location: Location | None = None) -> dict[str, Any]:
    """The record of a line holding the tag (a rank prefix before it is fine); RunDirError at
    ``location`` when it is not one. Keys it does not know are kept; a numeric job_id becomes
    text."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    start = line.find(TAG)
    if start < 0:
        raise RunDirError("no provenance line", location=location)
    try:
        record = json.loads(line[start + len(TAG):].strip())
    except ValueError as exc:
        raise RunDirError(f"unreadable provenance line ({exc})", location=location) from None
    except RecursionError:  # Python's json stops at about 1000 levels of nesting
        raise RunDirError("unreadable provenance line (JSON nested too deeply)", location=location) from None
    problem = _problem(record)
    if problem:
        raise RunDirError(f"unreadable provenance line ({problem})", location=location)
    if isinstance(record.get("job_id"), int):
        record["job_id"] = str(record["job_id"])
    return record


def _problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    if "run_id" in record and (not isinstance(record["run_id"], str) or not record["run_id"]):
        return "run_id is not a string"
    if not isinstance(record.get("params") or {}, dict):
        return "params is not an object"
    for key in _TEXT_FIELDS:
        value = record.get(key)
        if value is not None and not isinstance(value, str) and not (key == "job_id" and _is_int(value)):
            return f"{key} is not a string or null"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
