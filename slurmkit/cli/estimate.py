"""``slurmkit estimate``: predict each sweep point's step time, throughput, memory, checkpoint
time and cost before any GPU hour is spent, compare 8 and 4 adapters per node, and size the
nodes a target time or token budget needs.

A thin shell: make_plan gives the points (typed data, nothing rendered), slurmkit.perf gives
every figure. Every figure is DERIVED from the model (docs/estimate.md), and the output says so.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from slurmkit.cli.listing import format_option, print_rows

if TYPE_CHECKING:
    from slurmkit.perf import Estimate

NOTE = ("ESTIMATED, not measured: every figure is derived from slurmkit's performance model "
        "(docs/estimate.md), calibrated on published H100 results. checkpoint_bound 'adapters': the site "
        "gives no storage write speed, so the time is a lower bound.")
ADAPTER_COUNTS = (8, 4)
HEAD = ("run_id", "model", "site", "nodes", "gpus", "tp/pp/cp/dp", "precision", "step_time_s",
        "tokens_per_s_per_gpu", "tflops_per_gpu", "mfu", "run_h", "mem_gib", "mem_capacity_gib", "fits",
        "checkpoint_gb", "checkpoint_s", "checkpoint_bound", "cost", "step_time_8_adapters_s", "step_time_4_adapters_s",
        "nodes_needed", "hours_needed", "calibrated", "kind")
SHOWN = {"step_time_s": "{:.3f}".format, "tokens_per_s_per_gpu": "{:.0f}".format, "tflops_per_gpu": "{:.0f}".format,
         "mfu": "{:.1%}".format, "run_h": "{:.2f}".format, "mem_gib": "{:.1f}".format,
         "mem_capacity_gib": "{:.1f}".format, "checkpoint_gb": "{:.0f}".format, "checkpoint_s": "{:.0f}".format,
         "cost": "{:.0f}".format, "step_time_8_adapters_s": "{:.3f}".format,
         "step_time_4_adapters_s": "{:.3f}".format, "hours_needed": "{:.2f}".format}
TABLE_COLUMNS = ("run_id", "nodes", "tp/pp/cp/dp", "step_time_s", "tokens_per_s_per_gpu", "tflops_per_gpu",
                 "mfu", "run_h", "mem_gib", "mem_capacity_gib", "fits", "checkpoint_gb", "checkpoint_s",
                 "checkpoint_bound", "cost")


@click.command()
@click.argument("experiment")
@click.option("--site", "sites", multiple=True, help="Site name or YAML file; replaces the experiment's sites (repeatable).")
@click.option("--site-dir", "site_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of site configs, searched first (repeatable).")
@click.option("--target-hours", type=click.FloatRange(min=0, min_open=True),
              help="Size each point: the fewest nodes that finish within this many hours.")
@click.option("--tokens", type=click.FloatRange(min=0, min_open=True),
              help="Token budget to size for (default: the planned steps' tokens); alone: its hours per point.")
@format_option()
def estimate(experiment: str, sites: tuple[str, ...], site_dirs: tuple[Path, ...], target_hours: float | None,
             tokens: float | None, fmt: str) -> None:
    """Predict step time, throughput, MFU, memory, checkpoint time and cost of every point of
    EXPERIMENT, the 8-vs-4-adapter difference, and the nodes a target needs (all ESTIMATED)."""
    from slurmkit.plan.make import make_plan

    plan = make_plan(experiment, list(sites) or None, site_dirs=list(site_dirs) or None)
    rows = [_row(job.run_id, job.params, plan.sites.get(job.params["site"]), target_hours, tokens)
            for job in plan.jobs if not job.params.get("repeat")]
    if fmt == "json":
        click.echo(json.dumps({"kind": "derived", "note": NOTE, "points": [dict(zip(HEAD, r)) for r in rows],
                               "adapters": _adapter_rows(rows)}, indent=1))
        return
    if fmt == "csv":
        print_rows(HEAD, rows, fmt)
        return
    click.echo(NOTE)
    keep = [HEAD.index(c) for c in TABLE_COLUMNS]
    print_rows(TABLE_COLUMNS, [tuple(r[i] for i in keep) for r in rows], fmt, SHOWN)
    adapters = _adapter_rows(rows)
    if adapters:
        click.echo("\nadapters per node (step time, s; ESTIMATED):")
        print_rows(tuple(adapters[0]), [tuple(a.values()) for a in adapters], fmt,
                   {"step_8_s": "{:.3f}".format, "step_4_s": "{:.3f}".format, "slower_with_4": "{:+.1%}".format})
    if target_hours is not None or tokens is not None:
        budget = f"{tokens:g} tokens" if tokens else "the planned steps"
        click.echo(f"\nsizing: fewest nodes for {budget} within {target_hours:g} h (ESTIMATED; data parallelism only):"
                   if target_hours is not None else f"\nsizing: hours for {budget} on each point's nodes (ESTIMATED):")
        print_rows(("run_id", "nodes_needed", "hours_needed"),
                   [(r[0], r[HEAD.index("nodes_needed")], r[HEAD.index("hours_needed")]) for r in rows], fmt, SHOWN)


def _row(run_id: str, p: dict[str, Any], site: dict[str, Any] | None, target_hours: float | None,
         tokens: float | None) -> tuple:
    from slurmkit.perf import adapter_variant, nodes_needed
    from slurmkit.perf import estimate as predict

    e: Estimate = predict(p, site)
    by_count = {n: predict(adapter_variant(p, n), site).step_time_s if p.get("adapters_per_node") else None
                for n in ADAPTER_COUNTS}
    needed = nodes_needed(p, site, target_hours, tokens) if target_hours is not None else None
    nodes_for, hours_for = (needed.nodes, needed.hours) if needed else (None, None)
    if tokens is not None and target_hours is None:  # the budget's time on the point's own nodes
        nodes_for, hours_for = p["nodes"], tokens / (e.tokens_per_s_per_gpu * p["gpus"]) / 3600
    layout = f"{p['tp']}/{p['pp']}/{p['cp']}/{p['dp']}"
    return (run_id, p["model"], p["site"], p["nodes"], p["gpus"], layout, p["precision"], e.step_time_s,
            e.tokens_per_s_per_gpu, e.tflops_per_gpu, e.mfu, e.run_s / 3600, e.memory.total_gib,
            e.mem_capacity_gib, e.fits, e.checkpoint_gb, e.checkpoint_s, e.checkpoint_bound, e.cost, by_count[8], by_count[4],
            nodes_for, hours_for, e.step.calibrated, "derived")


def _adapter_rows(rows: list[tuple]) -> list[dict[str, Any]]:
    """The modelled step time with 8 and 4 adapters per node (of the point's rate), per model,
    node count and layout."""
    i8, i4 = HEAD.index("step_time_8_adapters_s"), HEAD.index("step_time_4_adapters_s")
    seen: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = (r[1], r[3], r[5], r[6])  # model, nodes, layout, precision: the site's own count aside
        if r[i8] is None or key in seen:
            continue
        seen[key] = {"model": r[1], "nodes": r[3], "tp/pp/cp/dp": r[5], "precision": r[6],
                     "step_8_s": r[i8], "step_4_s": r[i4],
                     "slower_with_4": r[i4] / r[i8] - 1}
    return list(seen.values())
