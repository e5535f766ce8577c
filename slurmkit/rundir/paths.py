"""The names of the run directory's files (docs/contracts.md, "Run directory")."""
from __future__ import annotations

from pathlib import Path

PLAN_FILE = "plan.json"                   # every resolved job (generate)
MANIFEST_FILE = "manifest.jsonl"          # run_id -> job, state (submit, status, collect)
SCRIPTS_DIR = "scripts"                   # scripts/<run_id>.sbatch (generate)
LOGS_DIR = "logs"                         # logs/<run_id>_<job_id>.out (written by Slurm)
ACCOUNTING_DIR = "accounting"
SACCT_FILE = f"{ACCOUNTING_DIR}/sacct.txt"        # `sacct --parsable2` with header (collect)
SCONTROL_FILE = f"{ACCOUNTING_DIR}/scontrol.txt"  # `scontrol show job -o` lines, no accounting


def script_path(run_id: str) -> str:
    """A run's script, relative to the run directory."""
    return f"{SCRIPTS_DIR}/{run_id}.sbatch"


def log_path(run_id: str, job_id: str) -> str:
    """A job's output file, relative to the run directory (the script's ``--output``)."""
    return f"{LOGS_DIR}/{run_id}_{job_id}.out"


def split_log_stem(stem: str) -> tuple[str, str] | None:
    """(run_id, job_id) of a log file's stem named as log_path names it, else None."""
    run_id, sep, job_id = stem.rpartition("_")
    return (run_id, job_id) if sep and run_id and job_id else None


def run_dir_of(log: Path | str) -> Path | None:
    """The run directory a log lies in (``DIR/logs/<file>`` beside ``DIR/plan.json``), else
    None: how ``parse`` and the report find the plan, manifest and accounting of bare log paths."""
    folder = Path(log).parent
    if folder.name == LOGS_DIR and (folder.parent / PLAN_FILE).is_file():
        return folder.parent
    return None
