"""Run ids: ``<model>-<workload>[-<label>]-n<nodes>-<site>-<8 hex>``.

The hash covers every parameter and the experiment-wide settings, so ids are stable across
regenerations and distinct for distinct jobs. The label makes them readable: the values of the
sweep's axes that vary within the experiment besides model, workload, nodes and site (for
example ``llama2-7b-sft-dolly-n1-xe9680-8cx7-3f9a1c2b`` or ``tiny-gpt-pretrain-ddp-n2-local-...``).
Files are named after run ids, so the plan refuses one whose file names the file system would not
take (`run_files_problem`), before anything is written.
"""
from __future__ import annotations

import hashlib
import re
from typing import Any

from slurmkit.config.limits import path_problem
from slurmkit.errors import ConfigError, Location
from slurmkit.rundir import log_path, script_path

# Job fields a label may show, in the order it shows them; each is a parameter of the run.
LABEL_FIELDS = ("dataset", "precision", "parallel", "recompute", "tp", "pp", "cp", "vpp",
                "sequence_parallel", "mbs", "gbs", "seq_len", "steps", "warmup_steps", "lr",
                "checkpoint_interval", "container_image")
# Numbers need a name to be read: tp4, seq8192, lr0.0001
_PREFIX = {"tp": "tp", "pp": "pp", "cp": "cp", "vpp": "vpp", "mbs": "mbs", "gbs": "gbs", "seq_len": "seq",
           "steps": "steps", "warmup_steps": "warm", "lr": "lr", "checkpoint_interval": "ckpt"}
_RECOMPUTE = {"none": "norecompute", "selective": "selrecompute", "full": "fullrecompute"}
_PART_CHARS = 24
_LABEL_CHARS = 64
_UNSET = object()
JOB_ID_CHARS = 24  # what Slurm writes for %j in a log's name: a 32-bit id, or an array's <id>_<index>


def varying_fields(points: list[dict[str, Any]], fields: tuple[str, ...] = LABEL_FIELDS) -> tuple[str, ...]:
    """Those of ``fields`` whose values differ between the sweep's points (``field -> Value``)."""
    def value(point: dict[str, Any], name: str) -> str:
        return repr(point[name].value) if name in point else "<default>"

    return tuple(name for name in fields if len({value(p, name) for p in points}) > 1)


def make_run_id(params: dict[str, Any], params_json: str, settings_json: str,
                label_fields: tuple[str, ...] = ()) -> str:
    digest = hashlib.sha256(f"{params_json}\n{settings_json}".encode()).hexdigest()[:8]
    label = run_label(params, label_fields)
    middle = f"-{label}" if label else ""
    return f"{params['model']}-{params['workload']}{middle}-n{params['nodes']}-{params['site']}-{digest}"


def run_label(params: dict[str, Any], fields: tuple[str, ...]) -> str:
    parts = [part for name in fields if (part := _part(name, params.get(name))) is not None]
    return "-".join(parts)[:_LABEL_CHARS].rstrip("-.")


def _part(name: str, value: Any) -> str | None:
    if value is None:
        return None  # not applicable to this job's launcher (recompute for torchrun...)
    if name == "sequence_parallel":
        return "sp" if value else "nosp"
    if name == "recompute":
        return _RECOMPUTE.get(value, str(value))
    if name == "dataset":
        value = str(value).rstrip("/").rsplit("/", 1)[-1]
    elif name == "container_image":
        value = str(value).rsplit("/", 1)[-1].replace(":", "")  # nvcr.io/nvidia/nemo:24.05 -> nemo24.05
    text = f"{_PREFIX.get(name, '')}{value:g}" if isinstance(value, float) else f"{_PREFIX.get(name, '')}{value}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:_PART_CHARS].strip("_.-") or None


def run_files_problem(run_id: str, out_dir: str = "") -> str | None:
    """Why the kernel would refuse a file named after ``run_id`` (its script, or the log Slurm
    writes; under ``out_dir`` when given), or None."""
    for rel in (script_path(run_id), log_path(run_id, "9" * JOB_ID_CHARS)):
        problem = path_problem(f"{out_dir.rstrip('/')}/{rel}" if out_dir else rel)
        if problem:
            return problem
    return None


def check_run_dir(out_dir: str, run_ids: list[str]) -> None:
    """Refuse, before anything is written, a run directory whose files would be too long a path."""
    problem = run_files_problem(max(run_ids, key=len), out_dir) if run_ids else path_problem(out_dir)
    if problem:
        raise ConfigError(problem, location=Location(out_dir[:80]), hint="choose a shorter --out")
