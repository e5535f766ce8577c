"""The runs and failures tables: what each run measured (progress, step time, wall time, time
in steps) beside what is derived from it (the time for the target steps, throughput, MFU).
"""
from __future__ import annotations

import pandas as pd

from slurmkit.report.kinds import DERIVED, MEASURED, run_metric_kind
from slurmkit.report.tables import Table, fmt_metric, fmt_number, fmt_text, frame_table

RUNS_NOTE = (
    "Steps: the last completed step / the target steps. Step (s): mean logged step time after "
    "warm-up. Wall: Slurm's elapsed time of the job (sacct). In steps: the sum of the logged "
    "step times, warm-up included (only when the log has every step). Outside steps: wall − in "
    "steps, that is start-up until the first step (container, initialisation, data loading) plus "
    "checkpoints and teardown; the logs do not time them apart. Target, extrapolated: target steps "
    "× mean step time after warm-up, which leaves start-up, warm-up, data loading and checkpoints "
    "out (MLPerf logs: the measured run_start to run_stop).")


def time_in_steps_s(steps: pd.DataFrame) -> pd.Series:
    """Per run_id: the sum of its logged step times, when the log holds every step from the
    first (0 or 1) to its last and each has a time; runs missing any step are left out."""
    if steps.empty or not {"run_id", "step", "step_time_s"} <= set(steps.columns):
        return pd.Series(dtype=float)
    times = pd.to_numeric(steps["step_time_s"], errors="coerce")
    frame = steps.assign(step_time_s=times, timed=times.notna())
    stats = frame.groupby("run_id").agg(total=("step_time_s", "sum"), first=("step", "min"),
                                        last=("step", "max"), distinct=("step", "nunique"),
                                        timed=("timed", "all"))
    whole = (stats["first"] <= 1) & (stats["distinct"] == stats["last"] - stats["first"] + 1) & stats["timed"]
    return stats.loc[whole, "total"].astype(float)


def _minutes(value: object) -> str:
    return fmt_number(float(value) / 60 if pd.notna(value) else value, 1)  # type: ignore[arg-type]


def _progress(last: object, target: object) -> str:
    if pd.isna(last) and pd.isna(target):
        return "–"
    return f"{fmt_number(last)}/{fmt_number(target)}"


def runs_table(runs: pd.DataFrame, steps: pd.DataFrame, synthetic: pd.Series) -> Table:
    """Every run, measured figures first, then the derived ones (marked per column or cell)."""
    in_steps = time_in_steps_s(steps)
    frame = runs.sort_values(["model", "site", "nodes", "repeat", "run_id"], na_position="last")
    wall = pd.to_numeric(frame["slurm_elapsed_s"], errors="coerce").astype(float) \
        if "slurm_elapsed_s" in frame.columns else pd.Series(float("nan"), index=frame.index)
    inside = frame["run_id"].astype(str).map(in_steps).astype(float)
    frame = frame.assign(
        progress=[_progress(a, b) for a, b in zip(frame["last_step"], frame["steps_target"])],
        source=frame["source_format"].astype("string").fillna("–").where(~synthetic.reindex(frame.index, fill_value=False), "SYNTHETIC"),
        wall_s=wall, in_steps_s=inside, outside_s=(wall - inside).where(wall >= inside))
    return frame_table("Runs", frame, [
        ("Run", "run_id", fmt_text, False), ("Log", "source", fmt_text, False),
        ("Model", "model", fmt_text, False),
        ("Site", "site", fmt_text, False), ("Nodes", "nodes", fmt_number, True),
        ("TP", "tp", fmt_number, True), ("PP", "pp", fmt_number, True),
        ("GBS", "gbs", fmt_number, True), ("Rep.", "repeat", fmt_number, True),
        ("Status", "status", fmt_text, False),
        ("Steps", "progress", fmt_text, True, MEASURED),
        ("Step (s)", "step_time_mean_s", lambda v: fmt_metric("step_time_mean_s", v), True, MEASURED),
        ("Wall (min)", "wall_s", _minutes, True, MEASURED),
        ("In steps (min)", "in_steps_s", _minutes, True, MEASURED),
        ("Outside steps (min)", "outside_s", _minutes, True, DERIVED),
        ("Target, extrapolated (min)", "time_to_target_s", _minutes, True,
         lambda r: run_metric_kind("time_to_target_s", r)),
        ("Tokens/s/GPU", "tokens_per_s_per_gpu", fmt_number, True,
         lambda r: run_metric_kind("tokens_per_s_per_gpu", r)),
        ("TFLOPS/GPU", "tflops_per_gpu", fmt_number, True, lambda r: run_metric_kind("tflops_per_gpu", r)),
        ("MFU", "mfu", lambda v: fmt_metric("mfu", v), True, DERIVED)], note=RUNS_NOTE)


def failures_table(runs: pd.DataFrame) -> Table | None:
    failed = runs[runs["status"] != "completed"]
    if failed.empty:
        return None
    return frame_table("Runs that did not complete", failed.sort_values("run_id"), [
        ("Run", "run_id", fmt_text, False), ("Status", "status", fmt_text, False),
        ("Reason", "failure_reason", lambda v: fmt_text(v).replace("_", " "), False),
        ("Last step", "last_step", fmt_number, True, MEASURED),
        ("Evidence", "failure_evidence", lambda v: fmt_text(v)[:240], False),
        ("Log", "source_file", fmt_text, False)])
