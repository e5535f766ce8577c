"""Logs -> the Parquet results store: the library behind ``slurmkit parse`` (and ``collect``).

    parse_paths(paths, out_dir, fmt="auto", warmup_steps=None, run_dir=None) -> list[dict]

Each log is one run. Its identity and parameters come from, in order: the run directory
(``--run-dir``: plan.json params, manifest.jsonl job ids, logs named ``<run_id>_<job_id>.out``,
accounting/sacct.txt), the ``SLURMKIT_PROVENANCE`` line in the log, else the file name alone
(run_id = file stem, job_id = trailing digits after ``-`` or ``_``) with null parameters.
Files that hold no known records, no failure and no provenance are reported together as one
ResultsError (exit 2) after every other file was written.
"""
from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from slurmkit.errors import Location, Problem, ResultsError
from slurmkit.results import metrics, store
from slurmkit.results.parsers import FORMATS
from slurmkit.results.parsers.base import fit_row
from slurmkit.results.parsers.failures import Failure
from slurmkit.results.parsers.logfile import (
    RANGE_BYTES,
    ParsedLog,
    limit_heap_growth,
    read_log,
    worker_init,
)
from slurmkit.rundir import (
    SACCT_FILE,
    SacctJob,
    read_manifest,
    read_plan,
    read_sacct,
    select_params,
    split_log_stem,
    state_failure,
)

FORMAT_CHOICES = ("auto", *FORMATS)
PARALLEL_MIN_BYTES = 64 * 2**20  # below this, worker start-up costs more than it saves
GROUP_FILES = 16           # logs per written batch: 2 Parquet files per group instead of per log
GROUP_BYTES = 64 * 2**20   # ... or fewer, so a group's steps tables stay a modest size in memory
WRITE_ROWS = 2**20         # a pool's groups are written together up to this many step rows (~100 MB)
_JOB_ID = re.compile(r"[-_](\d+)$")


@dataclass
class RunContext:
    """What a run directory says about its runs (empty without --run-dir)."""

    params: dict[str, dict[str, Any]] = field(default_factory=dict)   # run_id -> params
    job_ids: dict[str, str] = field(default_factory=dict)             # run_id -> job_id
    accounting: dict[str, SacctJob] = field(default_factory=dict)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files, folders (every non-hidden file below) and globs, in a stable order."""
    found: dict[Path, None] = {}
    for raw in paths:
        text = str(raw)
        matches = [Path(p) for p in sorted(glob.glob(text, recursive=True))] if glob.has_magic(text) else [Path(text)]
        if not matches or not all(p.exists() for p in matches):
            raise ResultsError(f"no such file or folder: {text}", location=Location(text),
                               hint="give log files, folders or quoted globs")
        for p in matches:
            for f in (sorted(_files_below(p)) if p.is_dir() else [p]):
                found[f] = None
    return list(found)


def _files_below(folder: Path) -> Iterable[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and not name.endswith((".parquet", ".json", ".jsonl")):
                yield Path(root) / name


def load_run_dir(run_dir: Path | str) -> RunContext:
    """plan.json, manifest.jsonl and accounting/sacct.txt of a run directory (each optional
    except plan.json; slurmkit.rundir reads them and reports a bad line as an error)."""
    run_dir = Path(run_dir)
    ctx = RunContext(params={job.run_id: job.params for job in read_plan(run_dir).jobs})
    ctx.job_ids = {r.run_id: r.job_id for r in read_manifest(run_dir).values() if r.job_id}
    sacct = run_dir / SACCT_FILE
    if sacct.is_file():
        ctx.accounting = read_sacct(sacct)
    return ctx


def identify(path: Path, log: ParsedLog, ctx: RunContext) -> tuple[str, str | None, dict[str, Any]]:
    """(run_id, job_id, params) of a log; see the module docstring for the order."""
    prov = log.provenance or {}
    stem = path.stem
    run_id, job_id = prov.get("run_id"), prov.get("job_id")
    named = split_log_stem(stem)
    if not run_id and named and named[0] in ctx.params:
        run_id, job_id = named[0], job_id or named[1]
    if not run_id:
        run_id = stem
    m = _JOB_ID.search(stem)
    job_id = job_id or ctx.job_ids.get(run_id) or (m.group(1) if m else None)
    params = ctx.params.get(run_id) or prov.get("params") or {}
    return str(run_id), (str(job_id) if job_id else None), dict(params)


def build_run(path: Path, log: ParsedLog, ctx: RunContext,
              warmup_steps: int | None) -> dict[str, Any]:
    """The runs-table row of one parsed log."""
    run_id, job_id, params = identify(path, log, ctx)
    steps = log.steps
    params, left_out = select_params(params)  # unknown keys and mistyped values: warnings
    params, unfit = fit_row(params)  # values beyond the store's types, before any arithmetic
    log.warnings += [f"{path}: {warning}" for warning in left_out]
    log.warnings += [f"{path}: parameter {warning}" for warning in unfit]
    row: dict[str, Any] = dict(params)  # the runs table's parameter columns
    row.update(run_id=run_id, job_id=job_id, source_format=log.format, source_file=str(path))
    target = params.get("steps") if isinstance(params.get("steps"), int) else log.steps_target
    last = pc.max(steps.column("step")).as_py()
    row.update(steps_completed=steps.num_rows, steps_target=target, last_step=last,
               restarts=pc.max(steps.column("restart")).as_py() or 0,
               final_loss=metrics.final_loss(steps), parse_warnings=len(log.warnings))
    row.update(metrics.derive(steps, params, metrics.choose_warmup(warmup_steps, params), target))
    if log.facts.get("run_start_ms") and log.facts.get("run_stop_ms"):
        row["time_to_target_s"] = (log.facts["run_stop_ms"] - log.facts["run_start_ms"]) / 1000.0
    acct = ctx.accounting.get(job_id or "")
    prov = log.provenance or {}
    row.update(slurm_state=acct and acct.state, slurm_exit_code=acct and acct.exit_code,
               slurm_elapsed_s=acct and acct.elapsed_s,
               slurm_nodelist=(acct and acct.nodelist) or prov.get("nodelist"),
               driver_version=prov.get("driver_version"), nccl_version=prov.get("nccl_version"),
               cuda_version=prov.get("cuda_version"))
    _set_status(row, log, steps, acct)
    row, unfit = fit_row(row)
    log.warnings += [f"{path}: {warning}" for warning in unfit]
    row["parse_warnings"] = len(log.warnings)
    return row


def _set_status(row: dict[str, Any], log: ParsedLog, steps: Any, acct: SacctJob | None) -> None:
    """status + failure_reason/evidence: text evidence, then Slurm's state, then NaN values."""
    failure: Failure | None = log.failure
    reason = state_failure(acct.state) if acct is not None else None
    if failure is None and acct is not None and reason is not None:
        failure = Failure(reason, f"sacct: State={acct.state} ExitCode={acct.exit_code}", None)
    bad = metrics.first_non_finite(steps)
    if failure is None and bad is not None:
        step, column, line = bad
        failure = Failure("nan_loss", f"step {step}: {column} is not finite (line {line})", line)
    mlperf = log.facts.get("mlperf_status")
    if failure is None and mlperf == "aborted":
        failure = Failure("unknown", "MLPerf run_stop status=aborted", None)
    target, last = row["steps_target"], row["last_step"]
    done = log.done or mlperf == "success" or (bool(target) and last is not None and last >= target)
    if failure is not None:
        row.update(status="failed", failure_reason=failure.reason, failure_evidence=failure.evidence)
    else:
        row["status"] = "completed" if done else "incomplete"


_SUMMARY_KEYS = ("run_id", "job_id", "source_format", "source_file", "steps_completed", "steps_target",
                 "last_step", "status", "failure_reason", "failure_evidence", "step_time_mean_s",
                 "tokens_per_s_per_gpu", "tflops_per_gpu", "final_loss")


def parse_file(path: Path, fmt: str, warmup_steps: int | None, ctx: RunContext,
               workers: int = 1, range_bytes: int = RANGE_BYTES
               ) -> tuple[dict[str, Any], tuple[dict[str, Any], Any] | None]:
    """Parse one log: its summary (``understood`` False when the file holds nothing slurmkit
    recognises) and the (runs row, steps) to write, None then. ``workers``: processes a big
    log may be split over; ``range_bytes``: see read_log."""
    log = read_log(path, None if fmt == "auto" else fmt, range_bytes=range_bytes, workers=workers)
    understood = bool(log.format and log.steps.num_rows) or log.failure is not None or bool(log.provenance)
    if not understood:
        return {"source_file": str(path), "understood": False, "warnings": log.warnings}, None
    run = build_run(path, log, ctx, warmup_steps)
    summary = {**{k: run.get(k) for k in _SUMMARY_KEYS}, "understood": True, "warnings": log.warnings}
    return summary, (run, log.steps)


def parse_files(paths: list[Path], out_dir: Path, fmt: str, warmup_steps: int | None,
                ctx: RunContext, workers: int = 1, pending: list | None = None) -> list[dict[str, Any]]:
    """Parse a group of logs and write their runs as one batch (store.write_runs: one commit
    per table for the group); one summary per log. The logs parsed before one that fails are
    still written. With ``pending``, the runs are added to it for the caller to write."""
    summaries, items = [], []
    try:
        for path in paths:
            summary, item = parse_file(path, fmt, warmup_steps, ctx, workers)
            summaries.append(summary)
            if item is not None:
                items.append(item)
    finally:
        if pending is None:
            store.write_runs(out_dir, items)
        else:
            pending.extend(items)
    return summaries


def parse_paths(paths: Iterable[str | Path], out_dir: Path | str, fmt: str = "auto",
                warmup_steps: int | None = None, run_dir: Path | str | None = None,
                on_done: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Parse logs into ``out_dir``; one summary dict per file (see parse_file).

    Raises ResultsError listing every file that was not understood, after writing the others.
    """
    if fmt not in FORMAT_CHOICES:
        raise ResultsError(f"unknown format {fmt!r}", hint=f"choose one of {', '.join(FORMAT_CHOICES)}")
    files = expand_paths(paths)
    limit_heap_growth()
    ctx = load_run_dir(run_dir) if run_dir else RunContext()
    summaries = list(_run_all(files, (Path(out_dir), fmt, warmup_steps, ctx), on_done))
    bad = [s for s in summaries if not s["understood"]]
    if bad:
        names = ", ".join(FORMATS)
        raise ResultsError("unknown log format", problems=[
            Problem("no training records of a known format, no failure and no provenance line",
                    Location(s["source_file"]), hint=f"known formats: {names}; force one with --format")
            for s in bad])
    return summaries


def _run_all(files: list[Path], args: tuple[Path, str, int | None, RunContext], on_done: Callable[[dict[str, Any]], None] | None
             ) -> Iterable[dict[str, Any]]:
    """Parse files in groups (parse_files; ``args`` are its arguments after the paths), on two
    worker processes when there is enough to gain: groups share out over a pool; a lone big
    file is split in two (read_log). Summaries come in input order."""
    sizes = [f.stat().st_size for f in files]
    workers = min(2, os.cpu_count() or 1)
    if len(files) > 1 and sum(sizes) >= PARALLEL_MIN_BYTES and workers > 1:
        # at least ~4 groups per worker, so the last ones still even out
        groups = _groups(files, sizes, min(GROUP_FILES, -(-len(files) // (workers * 4))))
        with ProcessPoolExecutor(max_workers=workers, initializer=worker_init) as pool:
            # workers parse, this process writes (delta-rs's runtime does not survive a fork),
            # in as few commits as WRITE_ROWS step rows allow: one per table for most parses
            pending: list = []
            for summaries, items, error in pool.map(_parse_group, [(group, *args, 1) for group in groups]):
                pending += items
                if error is not None or sum(steps.num_rows for _, steps in pending) >= WRITE_ROWS:
                    store.write_runs(args[0], pending)
                    pending = []
                if error is not None:
                    raise error
                yield from _reported(summaries, on_done)
            store.write_runs(args[0], pending)
        return
    for group in _groups(files, sizes, GROUP_FILES):
        yield from _reported(parse_files(group, *args, workers), on_done)


def _groups(files: list[Path], sizes: list[int], most: int) -> list[list[Path]]:
    """Consecutive runs of files, each at most ``most`` files and (unless one file) GROUP_BYTES."""
    groups: list[list[Path]] = []
    total = 0
    for path, size in zip(files, sizes):
        if not groups or len(groups[-1]) >= most or total + size > GROUP_BYTES:
            groups.append([])
            total = 0
        groups[-1].append(path)
        total += size
    return groups


def _reported(summaries: list[dict[str, Any]], on_done: Callable[[dict[str, Any]], None] | None
              ) -> Iterable[dict[str, Any]]:
    for summary in summaries:
        on_done and on_done(summary)
        yield summary


def _parse_group(job: tuple) -> tuple[list[dict[str, Any]], list, Exception | None]:
    """A worker's group: summaries, the runs to write, and the error that stopped it."""
    paths, out_dir, fmt, warmup_steps, ctx, workers = job
    pending: list = []
    try:
        return parse_files(paths, out_dir, fmt, warmup_steps, ctx, workers, pending), pending, None
    except Exception as exc:
        return [], pending, exc
