"""plan.json: the index of a run directory, every resolved job (docs/contracts.md).

Written by ``generate`` with sorted keys and one job per line, so a bad job is reported with
its line; read by ``submit`` (scripts), ``parse --run-dir`` (parameters) and ``demo``.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slurmkit.atomic import write_text_atomic
from slurmkit.errors import Location, RunDirError
from slurmkit.rundir.paths import PLAN_FILE, script_path

SCHEMA_VERSION = 1
_REGENERATE = "regenerate it with `slurmkit generate`"


@dataclass(frozen=True)
class PlannedJob:
    run_id: str
    script: str  # relative to the run directory
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanFile:
    path: Path
    experiment: str | None
    experiment_file: str | None
    sites: dict[str, Any]
    jobs: list[PlannedJob]
    site_files: dict[str, str] = field(default_factory=dict)  # site name -> the YAML file read


def plan_text(experiment: str, experiment_file: str, sites: dict[str, Any],
              jobs: Iterable[tuple[str, str, str]], site_files: dict[str, str] | None = None) -> str:
    """plan.json's text from (run_id, script, params as compact key-sorted JSON) per job:
    sorted keys, stable bytes, one job per line. ``site_files``: each site's YAML file, so a
    reader (and the report) can tell which copy of a site config the scripts came from.

    Built from compact dumps (the C encoder) because ``indent`` makes json use its pure-Python
    encoder, seconds for a 10,000-job plan. Run ids and scripts are validated names
    ([A-Za-z0-9._-/]): no JSON escaping needed.
    """
    head = _compact({"schema_version": SCHEMA_VERSION, "experiment": experiment,
                     "experiment_file": experiment_file, "sites": sites,
                     **({"site_files": site_files} if site_files else {})})
    lines = ",\n".join(f'{{"params":{params},"run_id":"{run_id}","script":"{script}"}}'
                       for run_id, script, params in jobs)
    return f'{head[:-1]},\n"jobs":[\n{lines}\n]}}\n'


def write_plan_file(run_dir: Path | str, text: str) -> bool:
    """Write plan.json atomically (and durably: it is the index, written last); False when
    the file already holds ``text``."""
    return write_text_atomic(Path(run_dir) / PLAN_FILE, text)


def read_plan(run_dir: Path | str) -> PlanFile:
    """DIR/plan.json; RunDirError naming the file (and line) when it is absent or not a plan."""
    path = Path(run_dir) / PLAN_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise RunDirError("no plan.json here", location=Location(str(path)),
                          hint="point at a folder written by `slurmkit generate --out DIR`") from None
    except UnicodeDecodeError as exc:
        raise RunDirError(f"not a slurmkit plan: {exc}", location=Location(str(path)),
                          hint=_REGENERATE) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunDirError(f"not a slurmkit plan: {exc.msg}", hint=_REGENERATE,
                          location=Location(str(path), exc.lineno, exc.colno)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), list):
        raise RunDirError("not a slurmkit plan: no list of jobs", location=Location(str(path)),
                          hint=_REGENERATE)
    version = doc.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise RunDirError(f"plan.json schema version: found {version}, required {SCHEMA_VERSION}",
                          location=Location(str(path)), hint=_REGENERATE)
    sites, files = doc.get("sites"), doc.get("site_files")
    return PlanFile(path, _text(doc.get("experiment")), _text(doc.get("experiment_file")),
                    sites if isinstance(sites, dict) else {}, _jobs(doc["jobs"], text, path),
                    {str(k): v for k, v in files.items() if isinstance(v, str)} if isinstance(files, dict) else {})


def _jobs(entries: list[Any], text: str, path: Path) -> list[PlannedJob]:
    jobs: list[PlannedJob] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        problem = _job_problem(entry, seen)
        if problem:
            raise RunDirError(f"not a slurmkit plan: job {index + 1}: {problem}", hint=_REGENERATE,
                              location=Location(str(path), _job_line(text, index)))
        run_id = entry["run_id"]
        seen.add(run_id)
        jobs.append(PlannedJob(run_id, entry.get("script") or script_path(run_id),
                               dict(entry.get("params") or {})))
    return jobs


def _job_problem(entry: Any, seen: set[str]) -> str | None:
    if not isinstance(entry, dict):
        return "not an object"
    run_id = entry.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        return "no run_id"
    if run_id in seen:
        return f"run_id {run_id!r} appears twice"
    if not isinstance(entry.get("script", ""), str):
        return "script is not a path"
    if not isinstance(entry.get("params") or {}, dict):
        return "params is not an object"
    return None


def _job_line(text: str, index: int) -> int | None:
    """The line of job ``index`` in a plan written by plan_text (one job per line after the
    ``"jobs":[`` line); None when the file is laid out otherwise."""
    lines = text.splitlines()
    start = next((n for n, line in enumerate(lines) if line.startswith('"jobs":[')), None)
    if start is None or start + 1 + index >= len(lines) or not lines[start + 1 + index].startswith("{"):
        return None
    return start + 2 + index


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
