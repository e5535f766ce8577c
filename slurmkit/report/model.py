"""The report model: built once from a results folder, rendered to HTML and to PDF.

Everything a reader sees is decided here (which findings, which tables, which charts and why a
chart is absent); the HTML and PDF renderers only lay it out.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from slurmkit import __version__
from slurmkit.report import charts
from slurmkit.report.compare import Comparison, compare_runs, normalize_runs
from slurmkit.report.findings import Finding, headline_metric, write_findings
from slurmkit.report.kinds import DERIVED, MEASURED
from slurmkit.report.labels import variant_label
from slurmkit.report.plans import price_sources, run_plans
from slurmkit.report.reference import REFERENCE_CSV, config_software, load_reference
from slurmkit.report.runs import failures_table, runs_table
from slurmkit.report.tables import (
    Table,
    fmt_number,
    fmt_plain,
    fmt_text,
    frame_table,
    metric_header,
    pairs_tables,
)

STEP_COLUMNS = ["run_id", "step", "step_time_s", "loss"]


@dataclass
class Chart:
    """A chart of the report, or the reason it is not drawn."""

    name: str
    title: str
    caption: str
    figure: Figure | None = None
    missing_reason: str = ""
    kind: str = ""  # what it draws: measured or derived (slurmkit.report.kinds)


@dataclass
class Report:
    title: str
    generated_at: str
    notices: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    sites: Table | None = None
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    runs: Table | None = None
    failures: Table | None = None
    provenance: list[tuple[str, str]] = field(default_factory=list)


def synthetic_mask(runs: pd.DataFrame) -> pd.Series:
    """Runs from synthetic logs: job ids 'synthetic-*' (real Slurm job ids are numeric)."""
    job = runs["job_id"].astype("string").fillna("")
    source = runs["source_file"].astype("string").fillna("")
    return job.str.startswith("synthetic") | source.str.contains("synthetic", regex=False)


def build_report(results_dir: Path | str, title: str | None = None, *, by: str | None = None,
                 baseline: object = None, noise_pct: float = 1.0) -> Report:
    """Read a results folder (slurmkit.results.store) and build its report."""
    from slurmkit.results import store
    runs = store.read_runs(results_dir)
    completed = runs.loc[runs["status"] == "completed", "run_id"].tolist()
    steps = (store.read_steps(results_dir, run_ids=completed, columns=STEP_COLUMNS)
             if completed else pd.DataFrame(columns=STEP_COLUMNS))
    # a damaged data file costs only its runs: those left out are named in the first notice
    damaged = store.unreadable(runs) + store.unreadable(steps)
    lost = {r for item in damaged if item.table == "steps" for r in item.run_ids}
    runs = runs[~runs["run_id"].isin(lost)]
    report = build_report_from_frames(runs, steps, title or f"slurmkit report: {Path(results_dir).name}",
                                      results_label=str(results_dir), by=by, baseline=baseline,
                                      noise_pct=noise_pct)
    if damaged or lost:
        report.notices.insert(0, store.unreadable_note(damaged, results_dir, lost))
    return report


def build_report_from_frames(runs: pd.DataFrame, steps: pd.DataFrame, title: str, *,
                             results_label: str = "", by: str | None = None, baseline: object = None,
                             noise_pct: float = 1.0, now: dt.datetime | None = None) -> Report:
    """The report of a runs table and its steps (the unit tests' and the benchmark's entry)."""
    runs, missing = normalize_runs(runs)
    when = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    report = Report(title=title, generated_at=when)
    report.notices = input_notices(runs)
    if missing and not runs.empty:
        report.notices.append("columns missing from the results (older schema?): "
                              f"{', '.join(missing)}; what needs them is left out.")
    if runs.empty:
        report.provenance = provenance(runs, results_label)
        return report
    comparison = compare_runs(runs, by=by, baseline=baseline, noise_pct=noise_pct)
    report.notices += comparison.notes
    # the runs' software labels, so published numbers of the same version are preferred
    comparison.configs["software"] = config_software(comparison.configs, runs)
    reference = load_reference()
    report.findings = write_findings(comparison, runs, reference, price_sources(run_plans(runs)))
    report.sites = sites_table(runs)
    report.tables = comparison_tables(comparison)
    report.charts = build_charts(comparison, steps, reference)
    report.runs = runs_table(runs, steps, synthetic_mask(runs))
    report.failures = failures_table(runs)
    report.provenance = provenance(runs, results_label)
    return report


def input_notices(runs: pd.DataFrame) -> list[str]:
    """What a reader must know before reading the numbers."""
    if runs.empty:
        return ["The results folder holds no runs: there is nothing to compare yet. Parse logs "
                "with `slurmkit parse --out RESULTS <logs>`."]
    notices = []
    synthetic = int(synthetic_mask(runs).sum())
    if synthetic:
        notices.append(f"{synthetic} of {len(runs)} runs come from SYNTHETIC logs (generated by "
                       "slurmkit's demo from a performance model based on published numbers), "
                       "not from a cluster. Their numbers illustrate the report; they are not "
                       "measurements. The model is anchored on NVIDIA's published BF16 MFU, so "
                       "their agreement with published numbers holds by construction.")
    anonymous = int((runs["model"].isna() & runs["site"].isna()).sum())
    if anonymous:
        notices.append(f"{anonymous} of {len(runs)} runs carry no parameters (logs of jobs slurmkit "
                       "did not launch, without a provenance line): they appear in the runs and "
                       "failures tables but in no comparison.")
    done = int((runs["status"] == "completed").sum())
    if done == 0:
        notices.append(f"None of the {len(runs)} runs completed, so there are no timings to "
                       "compare; see the failed runs below.")
    elif len(runs) == 1:
        notices.append("The results hold a single run: nothing to pair or scale against.")
    return notices


def comparison_tables(comparison: Comparison) -> list[Table]:
    tables = []
    costs = comparison.costs
    if not costs.empty:
        costs = costs.assign(
            time_text=[f"{b / 60:,.1f} → {c / 60:,.1f}" for b, c in zip(costs["base_time_s"], costs["cand_time_s"])],
            cost_text=[f"${b:,.2f} → ${c:,.2f}" for b, c in zip(costs["base_cost_usd"], costs["cand_cost_usd"])],
            saved_s_per_extra_usd=costs["saved_s_per_extra_usd"].where(~costs["within_noise"].astype(bool)))
        comparison = dataclasses.replace(comparison, costs=costs)
    by = comparison.by  # pairs and a summary exist only when a field is compared
    versus = versus_label(comparison) if by and not comparison.pairs.empty else ""
    if by is not None and not comparison.pairs.empty:
        tables += pairs_tables(comparison.pairs, versus, variant_label(by, comparison.baseline))
    if by is not None and not comparison.summary.empty:
        summary = comparison.summary.assign(
            candidate=comparison.summary["candidate"].map(lambda c: variant_label(by, c)),
            metric_label=comparison.summary["metric"].map(metric_header),
            range_text=[f"{lo:+.1f}% … {hi:+.1f}%" for lo, hi in
                        zip(comparison.summary["gain_min_pct"], comparison.summary["gain_max_pct"])])
        tables.append(frame_table(f"Summary per model: {versus}", summary, [
            ("Model", "model", fmt_text, False), ("Candidate", "candidate", fmt_text, False),
            ("Metric", "metric_label", fmt_text, False), ("Pairs", "n_pairs", fmt_number, True),
            ("Mean gain", "gain_mean_pct", lambda v: f"{v:+.1f}%", True, DERIVED),
            ("Range", "range_text", fmt_text, True, DERIVED),
            ("Within noise", "n_within_noise", fmt_number, True)],
            note="Gain: positive when the candidate is better (faster, higher throughput)."))
    if not comparison.costs.empty:
        tables.append(frame_table(f"Cost of the target steps: {versus}", comparison.costs, [
            ("Model", "model", fmt_text, False), ("Nodes", "nodes", fmt_number, True),
            ("Time (min)", "time_text", fmt_text, True, DERIVED), ("Cost", "cost_text", fmt_text, True, DERIVED),
            ("Time saved (min)", "time_saved_s", lambda v: f"{v / 60:+,.1f}", True, DERIVED),
            ("Extra cost", "extra_cost_usd", lambda v: f"{'+' if v >= 0 else '−'}${abs(v):,.2f}", True, DERIVED),
            ("Seconds saved per extra $", "saved_s_per_extra_usd", lambda v: fmt_number(v, 0), True, DERIVED),
            ("Time difference", "within_noise", lambda v: "within noise" if v else "measurable", False)],
            note="Baseline → candidate. Cost = time for the target steps × nodes × the site's "
                 "cost per node-hour."))
    if not comparison.scaling.empty:
        tables.append(frame_table("Scaling against the smallest node count", comparison.scaling, [
            ("Model", "model", fmt_text, False), ("Site", "site", fmt_text, False),
            ("Nodes", "nodes", fmt_number, True), ("Base nodes", "base_nodes", fmt_number, True),
            ("Tokens/s (all GPUs)", "tokens_per_s", fmt_number, True, DERIVED),
            ("Speed-up", "speedup", lambda v: f"{v:.2f}×", True, DERIVED),
            ("Efficiency", "efficiency", lambda v: f"{v * 100:.1f}%", True, DERIVED),
            ("Basis", "basis", fmt_text, False)]))
    if not comparison.best.empty:
        tables.append(frame_table("Best configuration per model and node count", comparison.best, [
            ("Model", "model", fmt_text, False), ("Nodes", "nodes", fmt_number, True),
            ("Site", "site", fmt_text, False), ("TP", "tp", fmt_number, True),
            ("PP", "pp", fmt_number, True), ("MBS", "mbs", fmt_number, True),
            ("GBS", "gbs", fmt_number, True), ("Seq", "seq_len", fmt_number, True),
            ("Precision", "precision", fmt_text, False),
            ("Tokens/s/GPU", "value", fmt_number, True, DERIVED), ("Configs compared", "n_configs", fmt_number, True)]))
    return tables


def versus_label(comparison: Comparison) -> str:
    """'8 adapters vs 4 adapters' (or 'each xe9680-b vs xe9680-a' for several candidates)."""
    by = comparison.by
    if by is None:  # no compared field: no pairs to name
        return ""
    base = variant_label(by, comparison.baseline)
    candidates = sorted({str(c) for c in comparison.pairs["candidate"]})
    if len(candidates) == 1:
        return f"{variant_label(by, candidates[0])} vs {base}"
    return f"each {by} vs {base}"


def build_charts(comparison: Comparison, steps: pd.DataFrame, reference: pd.DataFrame) -> list[Chart]:
    configs = comparison.configs
    field_name = comparison.by if comparison.by and comparison.by in configs.columns else "site"
    palette = charts.Palette.for_configs(configs, field_name)
    specs = [
        ("time_to_target", "Time for the target steps vs nodes", "The reference design's headline "
         "chart, an extrapolation: target steps × mean step time after warm-up (start-up, warm-up, "
         "data loading and checkpoints left out); mean of repeats, std as error bars.",
         lambda: charts.time_to_target_chart(configs, palette), DERIVED),
        ("tokens_per_gpu", "Tokens/s per GPU vs nodes", "Throughput per GPU from the measured step "
         "time (GBS × sequence length / step time / GPUs); hollow black markers are published "
         "numbers for the same model, GPU and shape (their legend names the software version when "
         "it is not the run's).", lambda: charts.throughput_chart(configs, palette, reference), DERIVED),
        ("tflops_per_gpu", "TFLOPS per GPU vs nodes", "Model TFLOPS per GPU from the FLOPs per "
         "token of Megatron's formula.", lambda: charts.tflops_chart(configs, palette, reference), DERIVED),
        ("scaling_efficiency", "Scaling efficiency", "Per-GPU throughput against the smallest "
         "node count of each series.", lambda: charts.efficiency_chart(comparison.scaling, configs, palette),
         DERIVED),
        ("mfu", "Model FLOPs utilisation", "MFU against the GPU's peak dense TFLOPS for the "
         "run's precision.", lambda: charts.mfu_chart(configs, palette, reference), DERIVED),
        ("step_time_distribution", "Step-time distribution after warm-up", "Logged step times. "
         "Boxes: quartiles; whiskers: 1.5 IQR; warm-up steps excluded.",
         lambda: charts.step_time_box_chart(steps, configs, palette), MEASURED),
        ("loss", "Loss curves", "Logged loss of the first run of each configuration.",
         lambda: charts.loss_chart(steps, configs, palette), MEASURED),
    ]
    metric = headline_metric(comparison)
    if metric is not None:
        label = versus_label(comparison)
        specs.insert(1, ("ratio", f"{label}: gain per model and node count", "Positive: the "
                         "candidate is better; grey bars are within noise; whiskers show the "
                         "noise band.", lambda: charts.ratio_chart(comparison.pairs, metric, label), DERIVED))
    out = []
    for name, title, caption, draw, kind in specs:
        figure = draw()
        reason = "" if figure is not None else "no completed runs carry the values this chart needs"
        out.append(Chart(name, title, caption, figure, reason, kind))
    return out


def sites_table(runs: pd.DataFrame) -> Table | None:
    """The sites side by side: hardware, network, storage and cost, one column per site."""
    fields = [("Node", "node_model"), ("GPUs per node", "gpus_per_node"), ("GPU", "gpu_model"),
              ("GPU memory (GiB)", "gpu_mem_gib"), ("Peak dense TFLOPS", "gpu_peak_tflops"),
              ("Adapters per node", "adapters_per_node"), ("Adapter", "adapter_model"),
              ("Adapter rate (Gb/s)", "adapter_rate_gbps"), ("Fabric", "fabric"),
              ("Storage", "storage_type"), ("Cost per node-hour (USD)", "cost_per_node_hour"),
              ("Runs", None)]
    sites = runs[runs["site"].notna()]
    if sites.empty:
        return None
    first = sites.drop_duplicates("site").sort_values("site")
    counts = sites["site"].value_counts()
    rows = []
    for label, column in fields:
        if column is None:
            rows.append([label, *(fmt_number(counts[s]) for s in first["site"])])
        else:
            rows.append([label, *(fmt_plain(v) for v in first[column])])
    return Table("Hardware, network, storage and cost per site", ["", *first["site"].astype(str)], rows)


def site_files_text(runs: pd.DataFrame) -> str:
    """Which file each site config was read from: plan.json's ``site_files`` of the run
    directories the runs' logs lie in (a checkout's copy, a --site-dir one, or the shipped one)."""
    from slurmkit.rundir import RunDirError, read_plan, run_dir_of

    logs = {str(Path(f).parent): f for f in runs.get("source_file", pd.Series(dtype=object)).dropna()}
    files: dict[str, set[str]] = {}
    for run_dir in {d for f in logs.values() if (d := run_dir_of(f)) is not None}:
        try:
            for site, path in read_plan(run_dir).site_files.items():
                files.setdefault(site, set()).add(path)
        except RunDirError:
            continue  # a damaged plan names no files; the parse of its logs already said so
    if not files:
        return "not recorded (no run directory with a plan.json beside the logs)"
    return "; ".join(f"{site}: {', '.join(sorted(paths))}" for site, paths in sorted(files.items()))


def provenance(runs: pd.DataFrame, results_label: str) -> list[tuple[str, str]]:
    def distinct(column: str) -> str:
        values = sorted({str(v) for v in runs.get(column, pd.Series(dtype=object)).dropna()})
        return ", ".join(values) if values else "not recorded"
    formats = runs["source_format"].astype("string").fillna("unknown").value_counts() if not runs.empty else {}
    return [
        ("Results folder", results_label or "–"), ("slurmkit version", __version__),
        ("Runs", f"{len(runs):,} ({int(synthetic_mask(runs).sum()) if not runs.empty else 0} synthetic)"),
        ("Log formats", ", ".join(f"{k} ({v})" for k, v in dict(formats).items()) or "–"),
        ("Experiments", distinct("experiment")), ("Driver versions", distinct("driver_version")),
        ("NCCL versions", distinct("nccl_version")), ("CUDA versions", distinct("cuda_version")),
        ("TFLOPS formula", distinct("tflops_formula")), ("Site files", site_files_text(runs)),
        ("Reference numbers", f"{REFERENCE_CSV.name} (sources in its source column)"),
    ]
