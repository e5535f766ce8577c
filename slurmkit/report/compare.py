"""Compare runs: aggregate repeats, pair runs that differ in one field, scaling, best, cost.

Everything works on the ``runs`` table of the results store (docs/contracts.md) as a pandas
DataFrame. A *configuration* is a run's parameters without its repeat index; repeats of one
configuration aggregate to mean, std and count. A *pair* is two configurations that are identical
in every parameter except the compared field (``by``), matched by a key built from all other
parameters; fields that follow from the compared one (a site's adapters, cost and fabric when the
site changes; GPUs and data parallelism when nodes change) are left out of the key.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from slurmkit.errors import ResultsError
from slurmkit.report.kinds import metric_kind


@dataclass(frozen=True)
class Metric:
    """A runs-table column that can be compared, with the direction that is better."""

    column: str
    label: str
    unit: str
    higher_is_better: bool
    better_word: str = "faster"
    worse_word: str = "slower"


METRICS: dict[str, Metric] = {m.column: m for m in (
    Metric("time_to_target_s", "extrapolated time for the target steps", "s", False),
    Metric("step_time_mean_s", "mean step time", "s", False),
    Metric("step_time_median_s", "median step time", "s", False),
    Metric("step_time_p95_s", "p95 step time", "s", False),
    Metric("tokens_per_s_per_gpu", "tokens/s/GPU", "tokens/s", True),
    Metric("tflops_per_gpu", "TFLOPS/GPU", "TFLOPS", True),
    Metric("mfu", "MFU", "", True, "higher", "lower"),
    Metric("final_loss", "final loss", "", False, "lower", "higher"),
    Metric("cost_to_target_usd", "cost of the target steps", "USD", False, "cheaper", "dearer"),
)}
DEFAULT_METRICS = ("time_to_target_s", "step_time_mean_s", "tokens_per_s_per_gpu")

# Parameters that name a configuration (repeat, experiment label and run identity excluded).
SITE_FIELDS = ("site", "gpus_per_node", "gpu_model", "gpu_mem_gib", "gpu_peak_tflops", "node_model",
               "adapters_per_node", "adapter_model", "adapter_rate_gbps", "fabric", "storage_type",
               "cost_per_node_hour", "time_limit_min")
JOB_FIELDS = ("workload", "launcher", "model", "nodes", "tp", "pp", "cp", "vpp",
              "sequence_parallel", "mbs", "gbs", "seq_len", "precision", "steps", "dataset",
              "container_image", "recompute", "parallel", "lr", "checkpoint_interval", "extra_args", "env")
CONFIG_FIELDS = JOB_FIELDS + SITE_FIELDS
# Columns that follow from the configuration fields; kept for display, never part of a key.
FOLLOWER_FIELDS = ("gpus", "dp", "model_params", "model_layers", "model_hidden", "model_ffn_hidden",
                   "model_heads", "model_kv_heads", "model_vocab", "mem_estimate_gib", "warmup_steps",
                   "software")
# Fields tried, in order, when the caller does not say what to compare.
AUTO_BY = ("adapters_per_node", "site", "storage_type", "fabric", "adapter_model", "gpu_model",
           "node_model", "precision", "launcher", "container_image", "parallel", "recompute", "tp", "pp", "mbs", "gbs", "seq_len")
REQUIRED_COLUMNS = ("run_id", "status")
DEFAULT_NOISE_PCT = 1.0


@dataclass
class Comparison:
    """Everything the compare command prints and the report draws, built once from the runs."""

    by: str | None
    baseline: Any
    metrics: tuple[str, ...]
    configs: pd.DataFrame           # one row per configuration (repeats aggregated)
    pairs: pd.DataFrame             # one row per (pair, metric)
    summary: pd.DataFrame           # one row per (model, candidate, metric)
    scaling: pd.DataFrame           # one row per (series, node count)
    best: pd.DataFrame              # one row per (model, nodes)
    costs: pd.DataFrame             # one row per pair with a cost per node-hour on both sides
    noise_pct: float = DEFAULT_NOISE_PCT
    notes: list[str] = field(default_factory=list)


def normalize_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Add missing contract columns as nulls (older schemas); return the frame and their names."""
    missing_required = [c for c in REQUIRED_COLUMNS if c not in runs.columns]
    if missing_required:
        raise ResultsError(f"runs table has no {', '.join(missing_required)} column",
                           hint="re-parse the logs with `slurmkit parse --out RESULTS <logs>`")
    wanted = (*CONFIG_FIELDS, *FOLLOWER_FIELDS, "repeat", "job_id", "source_file", "source_format",
              "failure_reason", "failure_evidence", "steps_completed", "steps_target", "last_step",
              *[m for m in METRICS if m != "cost_to_target_usd"], "step_time_std_s")
    missing = [c for c in wanted if c not in runs.columns]
    runs = runs.copy()
    for column in missing:
        runs[column] = pd.NA
    return runs, missing


def config_key(frame: pd.DataFrame, columns: list[str] | tuple[str, ...]) -> pd.Series:
    """One id per distinct combination of ``columns`` within ``frame`` (nulls match each other);
    ids are only comparable within one frame."""
    if frame.empty or not columns:
        return pd.Series("k0", index=frame.index, dtype=object)
    ids = frame.groupby(list(columns), dropna=False, sort=False).ngroup()
    return "k" + ids.astype(str)


def aggregate_repeats(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: its parameters, run counts and mean/std/n of every metric.

    Metrics come from completed runs only. Runs that carry no parameters (logs of jobs slurmkit
    did not launch) stay alone: their configuration is their run_id.
    """
    runs = with_cost(runs)
    known = runs["model"].notna() | runs["site"].notna()
    runs = runs.assign(config_id=config_key(runs, CONFIG_FIELDS).where(known, "run:" + runs["run_id"]))
    first = runs.drop_duplicates("config_id").set_index("config_id")
    keep = [c for c in (*CONFIG_FIELDS, *FOLLOWER_FIELDS) if c in first.columns]
    configs = first[keep].copy()
    grouped = runs.groupby("config_id", sort=False)
    configs["n_runs"] = grouped.size()
    configs["n_completed"] = grouped["status"].agg(lambda s: int((s == "completed").sum()))
    configs["run_ids"] = grouped["run_id"].agg(lambda s: sorted(s.astype(str)))
    done = runs[runs["status"] == "completed"]
    for metric in METRICS:
        values = pd.to_numeric(done[metric], errors="coerce").astype(float)
        stats = values.groupby(done["config_id"]).agg(["mean", "std", "count"])
        for stat in ("mean", "std"):
            configs[f"{metric}_{stat}"] = stats[stat].reindex(configs.index)
        configs[f"{metric}_n"] = stats["count"].reindex(configs.index).fillna(0).astype(int)
    return configs.reset_index()


def with_cost(runs: pd.DataFrame) -> pd.DataFrame:
    """Add cost_to_target_usd = time for the target steps x nodes x cost per node-hour."""
    hours = pd.to_numeric(runs["time_to_target_s"], errors="coerce").astype(float) / 3600.0
    nodes = pd.to_numeric(runs["nodes"], errors="coerce").astype(float)
    rate = pd.to_numeric(runs["cost_per_node_hour"], errors="coerce").astype(float)
    return runs.assign(cost_to_target_usd=hours * nodes * rate)


def pair_key_columns(by: str) -> list[str]:
    """The fields that must be equal for two configurations to form a pair when comparing ``by``."""
    dependent = set(SITE_FIELDS) if by in SITE_FIELDS else set()
    if by == "nodes":
        dependent |= {"nodes"}
    return [c for c in CONFIG_FIELDS if c != by and c not in dependent]


def _sort_values(values: list[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def choose_by(configs: pd.DataFrame) -> str | None:
    """The first field of AUTO_BY that varies and forms at least one pair, else None."""
    for by in AUTO_BY:
        if by in configs.columns and configs[by].dropna().nunique() >= 2:
            if not pair_configs(configs, by, None)[0].empty:
                return by
    return None


def pair_configs(configs: pd.DataFrame, by: str, baseline: Any) -> tuple[pd.DataFrame, Any]:
    """Baseline/candidate configuration pairs (wide: ``base_*`` and ``cand_*`` columns).

    The baseline is ``baseline`` or the smallest value of ``by``; every other value is paired
    against it. A key with two configurations on one side is ambiguous and left out.
    """
    rows = configs[configs[by].notna()]
    values = _sort_values(list(rows[by].unique()))
    if len(values) < 2:
        return pd.DataFrame(), None
    baseline = values[0] if baseline is None else _match_value(values, baseline, by)
    baseline = baseline.item() if hasattr(baseline, "item") else baseline  # numpy -> Python scalar
    key = config_key(rows, pair_key_columns(by))
    rows = rows.assign(pair_key=key)
    texts = rows[by].map(_text)
    counts = rows.groupby(["pair_key", texts]).size()
    ambiguous = {k for (k, _), n in counts.items() if n > 1}
    keep = ~rows["pair_key"].isin(ambiguous)
    rows, texts = rows[keep], texts[keep]
    base = rows[texts == _text(baseline)]
    cand = rows[texts != _text(baseline)]
    wide = base.add_prefix("base_").merge(cand.add_prefix("cand_"), left_on="base_pair_key",
                                          right_on="cand_pair_key")
    return wide, baseline


def _match_value(values: list[Any], wanted: Any, by: str) -> Any:
    for value in values:
        if _text(value) == _text(wanted):
            return value
    raise ResultsError(f"--baseline {wanted!r} is not a value of {by}",
                       hint=f"values present: {', '.join(map(str, values))}")


def _text(value: Any) -> str:
    """4.0 (an integer in a float column) and '4' name the same value."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def noise_threshold_pct(base_mean: float, base_std: float, base_n: int, cand_std: float,
                        cand_n: int, stated_pct: float) -> tuple[float, str]:
    """The change (in % of the baseline) below which a difference is noise, and its basis.

    With repeats on both sides: two standard errors of the difference (about a 95% interval),
    never below the stated threshold; else the stated threshold alone.
    """
    if base_n >= 2 and cand_n >= 2 and base_mean and not math.isnan(base_std + cand_std):
        se = math.sqrt(base_std**2 / base_n + cand_std**2 / cand_n)
        return max(stated_pct, 200.0 * se / abs(base_mean)), "repeats"
    return stated_pct, "threshold"


def metric_pairs(wide: pd.DataFrame, by: str, metrics: tuple[str, ...], noise_pct: float) -> pd.DataFrame:
    """Long table: one row per (pair, metric) with delta, ratio, gain and verdict."""
    records = []
    for _, row in wide.iterrows():
        for metric in metrics:
            record = _pair_record(row, by, METRICS[metric], noise_pct)
            if record is not None:
                records.append(record)
    columns = ["pair", "model", "nodes", "workload", "precision", "tp", "pp", "gbs", "seq_len", "by",
               "baseline", "candidate", "base_site", "cand_site", "metric", "base_mean",
               "base_std", "base_n", "cand_mean", "cand_std", "cand_n", "delta", "ratio",
               "change_pct", "gain_pct", "noise_pct", "noise_basis", "within_noise", "verdict", "kind"]
    return pd.DataFrame.from_records(records, columns=columns)


def _pair_record(row: pd.Series, by: str, metric: Metric, noise_pct: float) -> dict | None:
    col = metric.column
    base, cand = _num(row[f"base_{col}_mean"]), _num(row[f"cand_{col}_mean"])
    if base is None or cand is None or base == 0:
        return None
    base_std, cand_std = _num(row[f"base_{col}_std"]), _num(row[f"cand_{col}_std"])
    base_n, cand_n = int(row[f"base_{col}_n"]), int(row[f"cand_{col}_n"])
    change = (cand - base) / abs(base) * 100.0
    gain = change if metric.higher_is_better else -change
    threshold, basis = noise_threshold_pct(base, base_std if base_std is not None else math.nan,
                                           base_n, cand_std if cand_std is not None else math.nan,
                                           cand_n, noise_pct)
    within = abs(change) <= threshold
    return {
        "pair": f"{row['base_config_id']}>{row['cand_config_id']}",
        "model": row["base_model"], "nodes": row["base_nodes"], "workload": row["base_workload"],
        "precision": row["base_precision"], "tp": row["base_tp"], "pp": row["base_pp"],
        "gbs": row["base_gbs"], "seq_len": row["base_seq_len"], "by": by,
        "baseline": row[f"base_{by}"], "candidate": row[f"cand_{by}"],
        "base_site": row["base_site"], "cand_site": row["cand_site"], "metric": col,
        "base_mean": base, "base_std": base_std, "base_n": base_n,
        "cand_mean": cand, "cand_std": cand_std, "cand_n": cand_n,
        "delta": cand - base, "ratio": cand / base, "change_pct": change, "gain_pct": gain,
        "noise_pct": threshold, "noise_basis": basis, "within_noise": within,
        "verdict": verdict(metric, gain, within, threshold), "kind": metric_kind(col),
    }


def verdict(metric: Metric, gain_pct: float, within_noise: bool, noise_pct: float) -> str:
    """'faster by 3.1%', 'slower by 0.4%' or 'within noise (±1.0%)'."""
    if within_noise:
        return f"within noise (±{noise_pct:.1f}%)"
    word = metric.better_word if gain_pct > 0 else metric.worse_word
    return f"{word} by {abs(gain_pct):.1f}%"


def _num(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def summarize_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per model, candidate and metric: pair count, mean/min/max gain and how many are noise."""
    columns = ["model", "baseline", "candidate", "metric", "n_pairs", "gain_mean_pct",
               "gain_min_pct", "gain_max_pct", "n_within_noise"]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    keys = [pairs["model"].astype("string").fillna("?"), pairs["baseline"].astype(str),
            pairs["candidate"].astype(str), pairs["metric"]]
    grouped = pairs.groupby(keys, sort=True)
    out = grouped.agg(n_pairs=("gain_pct", "size"), gain_mean_pct=("gain_pct", "mean"),
                      gain_min_pct=("gain_pct", "min"), gain_max_pct=("gain_pct", "max"),
                      n_within_noise=("within_noise", "sum"))
    out.index.names = ["model", "baseline", "candidate", "metric"]
    out = out.reset_index()
    out["n_within_noise"] = out["n_within_noise"].astype(int)
    return out[columns]


def scaling_table(configs: pd.DataFrame, x: str = "nodes") -> pd.DataFrame:
    """Speedup and efficiency of each series against its smallest ``x`` (node count).

    Efficiency is per-GPU throughput relative to the base point (tokens/s/GPU when logged, else
    the inverse step time scaled by GPUs, which assumes the same global batch: part of the key).
    """
    columns = ["series", *CONFIG_FIELDS, "base_" + x, "tokens_per_s", "speedup", "efficiency", "basis"]
    positive = [~(pd.to_numeric(configs[f"{m}_mean"], errors="coerce") <= 0)
                for m in ("tokens_per_s_per_gpu", "step_time_mean_s")]  # a zero is no basis
    rows = configs[configs[x].notna() & (configs["n_completed"] > 0) & positive[0] & positive[1]]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    series_cols = [c for c in CONFIG_FIELDS if c != x]
    rows = rows.assign(series=config_key(rows, series_cols))
    records = []
    for _, group in rows.groupby("series", sort=False):
        if group[x].nunique() < 2:
            continue
        records.extend(_series_scaling(group.sort_values(x), x))
    return pd.DataFrame.from_records(records, columns=columns)


def _series_scaling(group: pd.DataFrame, x: str) -> list[dict]:
    base = group.iloc[0]
    use_tps = group["tokens_per_s_per_gpu_mean"].notna().all()
    records = []
    for _, row in group.iterrows():
        scale = float(row[x]) / float(base[x])
        gpus = _gpus(row)
        if use_tps:
            per_gpu_ratio = row["tokens_per_s_per_gpu_mean"] / base["tokens_per_s_per_gpu_mean"]
            basis = "tokens/s/GPU"
        else:
            per_gpu_ratio = (base["step_time_mean_s_mean"] / row["step_time_mean_s_mean"]) / scale
            basis = "step time"
        tps = row["tokens_per_s_per_gpu_mean"] * gpus if use_tps and gpus else math.nan
        record = {c: row[c] for c in CONFIG_FIELDS}
        record.update({"series": row["series"], "base_" + x: base[x], "tokens_per_s": tps,
                       "speedup": per_gpu_ratio * scale, "efficiency": per_gpu_ratio,
                       "basis": basis})
        records.append(record)
    return records


def _gpus(row: pd.Series) -> float | None:
    gpus = _num(row.get("gpus"))
    if gpus is None and _num(row.get("nodes")) and _num(row.get("gpus_per_node")):
        gpus = float(row["nodes"]) * float(row["gpus_per_node"])
    return gpus


def best_configs(configs: pd.DataFrame, metric: str = "tokens_per_s_per_gpu",
                 noise_pct: float = DEFAULT_NOISE_PCT) -> pd.DataFrame:
    """The best configuration per model and node count by ``metric`` (its direction known),
    with the configurations within noise of it (``tied_with``: what sets each apart, e.g. its
    site) and its margin over the next one (``margin_pct``, against ``noise_threshold_pct``)."""
    spec = METRICS[metric]
    show = ["model", "nodes", "site", "tp", "pp", "cp", "vpp", "mbs", "gbs", "seq_len", "precision"]
    columns = [*show, "metric", "value", "std", "n", "n_configs", "runner_up_value", "margin_pct",
               "noise_pct", "tied_with"]
    rows = configs[configs[f"{metric}_mean"].notna() & configs["model"].notna()]
    if rows.empty:
        return pd.DataFrame(columns=columns)
    records = []
    for _key, group in rows.groupby(["model", "nodes"], sort=True, dropna=False):
        ordered = group.sort_values(f"{metric}_mean", ascending=not spec.higher_is_better)
        top = ordered.iloc[0]
        record = {c: top[c] for c in show}
        record.update(metric=metric, value=top[f"{metric}_mean"], std=top[f"{metric}_std"],
                      n=int(top[f"{metric}_n"]), n_configs=len(group), runner_up_value=math.nan,
                      margin_pct=math.nan, noise_pct=math.nan, tied_with=[])
        for i, (_, other) in enumerate(ordered.iloc[1:].iterrows()):
            gap, threshold = _gap_pct(top, other, metric, noise_pct)
            if i == 0:
                record.update(runner_up_value=other[f"{metric}_mean"], margin_pct=gap, noise_pct=threshold)
            if gap <= threshold:
                record["tied_with"].append(difference_label(top, other))
        records.append(record)
    return pd.DataFrame.from_records(records, columns=columns)


def _gap_pct(top: pd.Series, other: pd.Series, metric: str, noise_pct: float) -> tuple[float, float]:
    """How far ``other`` is behind ``top`` (% of top) and the noise threshold for the two."""
    mean = float(top[f"{metric}_mean"])
    gap = abs(float(other[f"{metric}_mean"]) - mean) / abs(mean) * 100.0 if mean else math.inf
    stds = [_num(row[f"{metric}_std"]) for row in (top, other)]
    threshold, _ = noise_threshold_pct(mean, math.nan if stds[0] is None else stds[0], int(top[f"{metric}_n"]),
                                       math.nan if stds[1] is None else stds[1], int(other[f"{metric}_n"]),
                                       noise_pct)
    return gap, threshold


def difference_label(base: pd.Series, other: pd.Series) -> str:
    """What sets ``other`` apart from ``base``: its site, then the job fields that differ
    ('xe9680-4cx7', 'TP 2, GBS 256')."""
    parts = [str(other["site"])] if _text(other["site"]) != _text(base["site"]) else []
    parts += [f"{name.upper() if len(name) <= 3 else name} {_text(other[name])}" for name in JOB_FIELDS
              if name not in ("model", "nodes") and _text(other[name]) != _text(base[name])]
    return ", ".join(parts) or "an identical configuration"


def cost_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """Time and cost of the target steps on both sides of each pair, and the gain per dollar."""
    columns = ["model", "nodes", "baseline", "candidate", "base_time_s", "cand_time_s",
               "base_cost_usd", "cand_cost_usd", "time_saved_s", "extra_cost_usd",
               "saved_s_per_extra_usd", "within_noise", "assessment"]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    keys = ["pair", "model", "nodes", "baseline", "candidate"]
    times = pairs[pairs["metric"] == "time_to_target_s"]
    costs = pairs[pairs["metric"] == "cost_to_target_usd"]
    if times.empty or costs.empty:
        return pd.DataFrame(columns=columns)
    both = times.merge(costs, on=keys, suffixes=("_t", "_c"))
    records = [_cost_record(row) for _, row in both.iterrows()]
    return pd.DataFrame.from_records(records, columns=columns)


def _cost_record(row: pd.Series) -> dict:
    saved = row["base_mean_t"] - row["cand_mean_t"]
    extra = row["cand_mean_c"] - row["base_mean_c"]
    per_usd = saved / extra if extra > 0 else math.nan
    if extra <= 0 and saved >= 0:
        assessment = "no dearer and at least as fast"
    elif extra > 0 and saved <= 0:
        assessment = "dearer and not faster"
    elif extra > 0:
        assessment = f"{saved:.0f} s saved for ${extra:.2f} more"
    else:
        assessment = f"${-extra:.2f} cheaper, {-saved:.0f} s slower"
    return {"model": row["model"], "nodes": row["nodes"], "baseline": row["baseline"],
            "candidate": row["candidate"], "base_time_s": row["base_mean_t"],
            "cand_time_s": row["cand_mean_t"], "base_cost_usd": row["base_mean_c"],
            "cand_cost_usd": row["cand_mean_c"], "time_saved_s": saved, "extra_cost_usd": extra,
            "saved_s_per_extra_usd": per_usd, "within_noise": bool(row["within_noise_t"]),
            "assessment": assessment}


def compare_runs(runs: pd.DataFrame, by: str | None = None, metrics: tuple[str, ...] | None = None,
                 baseline: Any = None, x: str = "nodes",
                 noise_pct: float = DEFAULT_NOISE_PCT) -> Comparison:
    """Build every comparison table from a runs table (see the module docstring)."""
    for name in metrics or ():
        if name not in METRICS:
            raise ResultsError(f"unknown metric {name!r}", hint=f"one of {', '.join(METRICS)}")
    for name, value in (("--by", by), ("--x", x)):
        if value is not None and value not in CONFIG_FIELDS:
            raise ResultsError(f"{name} {value!r} is not a parameter field",
                               hint=f"one of {', '.join(CONFIG_FIELDS)}")
    runs, missing = normalize_runs(runs)
    notes = [f"columns missing from the results (older schema?): {', '.join(missing)}"] if missing else []
    configs = aggregate_repeats(runs)
    metrics = tuple(metrics or DEFAULT_METRICS)
    pair_metrics = tuple(dict.fromkeys((*metrics, "time_to_target_s", "cost_to_target_usd")))
    chosen = by or choose_by(configs)
    wide, base_value = (pair_configs(configs, chosen, baseline) if chosen else (pd.DataFrame(), None))
    if chosen and wide.empty:
        notes.append(f"no runs pair up by {chosen}: no two configurations differ only in {chosen}")
    elif not chosen:
        notes.append("no runs pair up: no two configurations differ in exactly one compared field")
    all_pairs = metric_pairs(wide, chosen or "", pair_metrics, noise_pct)
    shown = all_pairs[all_pairs["metric"].isin(metrics)].reset_index(drop=True)
    return Comparison(by=chosen, baseline=base_value, metrics=metrics, configs=configs,
                      pairs=shown, summary=summarize_pairs(shown), scaling=scaling_table(configs, x),
                      best=best_configs(configs, noise_pct=noise_pct), costs=cost_table(all_pairs),
                      noise_pct=noise_pct, notes=notes)
