"""The run directory as code: the one contract between the control half (generate, submit,
status, collect) and the data half (parse, compare, report). Standard library only, so both
halves import it without pandas or pyarrow (docs/contracts.md).

- paths: the names of its files (plan.json, manifest.jsonl, scripts/, logs/, accounting/);
- plan: plan.json, written by generate, read by submit, parse --run-dir and demo;
- manifest: manifest.jsonl, JobRecord per run;
- provenance: the SLURMKIT_PROVENANCE line every job prints;
- sacct: sacct output (accounting/sacct.txt, and status's live query);
- states: the one Slurm state normalisation, and the failure taxonomy;
- params: the run parameters with their types (the results store's columns derive from them).

One error policy: a file or line that is not what the contract says is a RunDirError naming
the file and line; a reader that legitimately goes on (parsing many logs) turns it into a
warning that is counted and printed. Nothing is skipped silently.
"""
from __future__ import annotations

from slurmkit.errors import RunDirError
from slurmkit.rundir.manifest import JobRecord, read_manifest, utc_now, write_manifest
from slurmkit.rundir.params import PARAMS, Param, param_problems, select_params
from slurmkit.rundir.paths import (
    ACCOUNTING_DIR,
    LOGS_DIR,
    MANIFEST_FILE,
    PLAN_FILE,
    SACCT_FILE,
    SCONTROL_FILE,
    SCRIPTS_DIR,
    log_path,
    run_dir_of,
    script_path,
    split_log_stem,
)
from slurmkit.rundir.plan import PlanFile, PlannedJob, plan_text, read_plan, write_plan_file
from slurmkit.rundir.provenance import FIELDS as PROVENANCE_FIELDS
from slurmkit.rundir.provenance import TAG as PROVENANCE_TAG
from slurmkit.rundir.provenance import provenance_line, read_provenance
from slurmkit.rundir.sacct import (
    PLACEHOLDER_JOB_NAME,
    SACCT_FIELDS,
    SacctJob,
    elapsed_s,
    read_sacct,
    sacct_jobs,
    sacct_rows,
)
from slurmkit.rundir.states import (
    ACTIVE_STATES,
    FAILED_STATES,
    FAILURE_REASONS,
    SUBMIT_FAILED,
    UNKNOWN,
    is_active,
    normalize_state,
    state_failure,
)

__all__ = [
    "ACCOUNTING_DIR", "ACTIVE_STATES", "FAILED_STATES", "FAILURE_REASONS", "LOGS_DIR",
    "MANIFEST_FILE", "PARAMS", "PLACEHOLDER_JOB_NAME", "PLAN_FILE", "PROVENANCE_FIELDS", "PROVENANCE_TAG",
    "SACCT_FIELDS", "SACCT_FILE", "SCONTROL_FILE", "SCRIPTS_DIR", "SUBMIT_FAILED", "UNKNOWN",
    "JobRecord", "Param", "PlanFile", "PlannedJob", "RunDirError", "SacctJob", "elapsed_s",
    "is_active", "log_path", "normalize_state", "param_problems", "plan_text", "provenance_line",
    "read_manifest", "read_plan", "read_provenance", "read_sacct", "run_dir_of", "sacct_jobs", "sacct_rows",
    "script_path", "select_params", "split_log_stem", "state_failure", "utc_now", "write_manifest",
    "write_plan_file",
]
