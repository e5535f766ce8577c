"""The findings summary: a few sentences written from the comparison's numbers.

Each sentence answers one of the questions a report must answer at a glance (how much faster is
one configuration than the other, how well does it scale, which configuration is best, is the
gain worth the cost, what failed, how do we compare with published numbers). "Within noise" is
decided by :func:`slurmkit.report.compare.noise_threshold_pct` (repeat spread, or a stated threshold).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from slurmkit.report.compare import METRICS, Comparison
from slurmkit.report.kinds import DERIVED, MEASURED, metric_kind
from slurmkit.report.labels import value_text, variant_label
from slurmkit.report.reference import architecture_key, matching_reference, reference_label, software_text

MAX_LINES_PER_KIND = 6


@dataclass(frozen=True)
class Finding:
    """One sentence of the summary and what its figures are: measured or derived."""

    text: str
    kind: str

    def __str__(self) -> str:
        return self.text


def write_findings(comparison: Comparison, runs: pd.DataFrame, reference: pd.DataFrame,
                   price_sources: dict[str, str] | None = None) -> list[Finding]:
    """Findings, most important first; empty when there is nothing to say. ``price_sources``:
    where each site's cost per node-hour comes from (its site config's ``cost_source``)."""
    metric = headline_metric(comparison)
    pair_kind = metric_kind(metric) if metric else DERIVED
    return [*(Finding(t, pair_kind) for t in pair_findings(comparison)),
            *(Finding(t, DERIVED) for t in cost_findings(comparison, price_sources or {})),
            *(Finding(t, DERIVED) for t in scaling_findings(comparison)),
            *(Finding(t, DERIVED) for t in best_findings(comparison)),
            *(Finding(t, DERIVED) for t in reference_findings(comparison, reference)),
            *(Finding(t, MEASURED) for t in failure_findings(runs))]


def _nodes_text(nodes: list) -> str:
    values = sorted(int(n) for n in nodes if pd.notna(n))
    if not values:
        return ""
    if len(values) == 1:
        return f"on {values[0]} node" + ("s" if values[0] != 1 else "")
    return "on " + ", ".join(str(v) for v in values[:-1]) + f" and {values[-1]} nodes"


def headline_metric(comparison: Comparison) -> str | None:
    """time for the target steps when compared, else the first compared metric."""
    present = set(comparison.pairs["metric"]) if not comparison.pairs.empty else set()
    for metric in ("time_to_target_s", *comparison.metrics):
        if metric in present:
            return metric
    return None


def pair_findings(comparison: Comparison) -> list[str]:
    """'8 adapters vs 4 adapters: llama2-70b faster by 4.2% on 8 nodes; llama2-7b within noise.'"""
    metric, by = headline_metric(comparison), comparison.by
    if metric is None or by is None:
        return []
    rows = comparison.pairs[comparison.pairs["metric"] == metric]
    lines = []
    for candidate, group in rows.groupby(rows["candidate"].map(value_text), sort=True):
        parts = [_model_phrase(model, mine) for model, mine in group.groupby("model", sort=True)]
        head = (f"{variant_label(by, candidate)} vs "
                f"{variant_label(by, comparison.baseline)} ({METRICS[metric].label})")
        lines.append(f"{head}: " + "; ".join(parts) + ".")
    return lines


def _model_phrase(model: str, rows: pd.DataFrame) -> str:
    """Per node count, largest first: the verdict, or the gain range over several shapes;
    node counts where every pair is within noise are listed together."""
    parts, noise = [], []
    for nodes, mine in sorted(rows.groupby("nodes", dropna=False), key=lambda g: -_num_or(g[0])):
        if mine["within_noise"].all():
            noise.append(nodes)
        elif len(mine) == 1:
            parts.append(f"{mine['verdict'].iloc[0]} {_nodes_text([nodes])}")
        else:
            beyond = int((~mine["within_noise"]).sum())
            parts.append(f"{mine['gain_pct'].min():+.1f}% to {mine['gain_pct'].max():+.1f}% "
                         f"{_nodes_text([nodes])} ({len(mine)} configurations, {beyond} beyond noise)")
    if noise:
        parts.append("within noise " + ("at every node count" if not parts else _nodes_text(noise)))
    return f"{model} " + ", ".join(parts)


def _num_or(value: Any, default: float = 0.0) -> float:
    return float(value) if pd.notna(value) else default


def cost_findings(comparison: Comparison, price_sources: dict[str, str] | None = None) -> list[str]:
    """Per model: extra cost and time saved of the candidate, per node count (medians when a
    node count has several configurations), ending with where the prices come from."""
    lines: list[str] = []
    costs, by = comparison.costs, comparison.by
    if by is None:  # costs are of a candidate against the baseline of a compared field
        return lines
    for (model, candidate), group in costs.groupby(["model", costs["candidate"].map(value_text)], sort=True):
        parts = [_cost_phrase(nodes, mine) for nodes, mine in group.groupby("nodes", sort=True)]
        lines.append(f"Cost of {variant_label(by, candidate)} instead of "
                     f"{variant_label(by, comparison.baseline)}, {model}, "
                     f"{_target_steps(comparison)} (extrapolated time × nodes × price): "
                     + "; ".join(parts) + ".")
    lines = _capped(lines, "cost comparisons")
    if lines:
        lines[-1] += f" {price_text(price_sources or {})}"
    return lines


def price_text(price_sources: dict[str, str]) -> str:
    """'Prices: illustrative (xe9680-4cx7, xe9680-8cx7).' or 'Prices: source not recorded.'"""
    if not price_sources:
        return "Prices per node-hour: source not recorded (set cost_source in the site config)."
    by_source: dict[str, list[str]] = {}
    for site, source in sorted(price_sources.items()):
        by_source.setdefault(source, []).append(site)
    return "Prices per node-hour: " + "; ".join(f"{source} ({', '.join(sites)})"
                                                 for source, sites in by_source.items()) + "."


def _cost_phrase(nodes: Any, rows: pd.DataFrame) -> str:
    extra, saved_s = rows["extra_cost_usd"].median(), rows["time_saved_s"].median()
    several = f" (median of {len(rows)} configurations)" if len(rows) > 1 else ""
    if rows["within_noise"].all():
        return f"{_nodes_text([nodes])} {_signed_usd(extra)} and no time gain beyond noise{several}"
    saved = f"saves {saved_s / 60:.1f} min" if saved_s >= 0 else f"loses {-saved_s / 60:.1f} min"
    per_usd = f", {saved_s / extra:,.0f} s per extra $" if extra > 0 and saved_s > 0 else ""
    return f"{_nodes_text([nodes])} {_signed_usd(extra)} and {saved}{per_usd}{several}"


def _signed_usd(amount: float) -> str:
    return f"+${amount:,.2f}" if amount >= 0 else f"−${-amount:,.2f}"


def _target_steps(comparison: Comparison) -> str:
    steps = comparison.configs["steps"].dropna().unique()
    return f"{int(steps[0])} steps" if len(steps) == 1 else "the target steps"


def scaling_findings(comparison: Comparison) -> list[str]:
    """Efficiency at the largest node count, per model and variant (a range over shapes)."""
    scaling = comparison.scaling
    if scaling.empty:
        return []
    field = comparison.by if comparison.by and comparison.by in scaling.columns else "site"
    tops = scaling.sort_values("nodes").groupby("series", sort=False).tail(1)
    lines = []
    for (model, variant), group in tops.groupby(["model", tops[field].map(value_text)], sort=True):
        top = group.iloc[0]
        if len(group) == 1:
            how = (f"{top['efficiency'] * 100:.0f}% efficiency against {int(top['base_nodes'])} "
                   f"node{'s' if top['base_nodes'] != 1 else ''} (speed-up {top['speedup']:.2f}x for "
                   f"{top['nodes'] / top['base_nodes']:g}x the nodes, by {top['basis']})")
            where = f"{int(top['nodes'])} nodes"
        else:
            lo, hi = (f"{v * 100:.0f}%" for v in (group["efficiency"].min(), group["efficiency"].max()))
            how = (f"{lo if lo == hi else f'{lo} to {hi}'} efficiency against their smallest node "
                   f"count ({len(group)} configurations)")
            where = f"up to {int(group['nodes'].max())} nodes"
        lines.append(f"Scaling, {model} · {variant_label(field, variant)}: {where} reach {how}.")
    return _capped(lines, "scaling series")


def best_findings(comparison: Comparison) -> list[str]:
    """The best configuration of each model at its largest node count, named only when it is
    ahead of every other one by more than the noise; otherwise the tie is the finding."""
    lines = []
    best = comparison.best
    for model, group in best.groupby("model", sort=True):
        top = group.sort_values("nodes").iloc[-1]
        if top["n_configs"] < 2:
            continue
        shape = ", ".join(f"{k.upper()} {int(top[k])}" for k in ("tp", "pp", "mbs", "gbs")
                          if pd.notna(top[k]))
        where = f"{model} {_nodes_text([top['nodes']])} ({top['n_configs']} configurations compared)"
        value = f"{top['site']}, {shape}: {top['value']:,.0f} tokens/s/GPU"
        noise = f"noise ±{top['noise_pct']:.1f}%"
        if top["tied_with"]:
            lines.append(f"No best {where}: {value} and {', '.join(top['tied_with'])} "
                         f"({top['runner_up_value']:,.0f}) tie within noise "
                         f"({top['margin_pct']:.1f}% apart, {noise}).")
        else:
            lines.append(f"Best {where}: {value}, ahead of the next by {top['margin_pct']:.1f}% "
                         f"({noise}).")
    return _capped(lines, "best configurations")


def reference_findings(comparison: Comparison, reference: pd.DataFrame) -> list[str]:
    """Measured vs published tokens/s/GPU where model, GPU, shape and node count match."""
    configs = comparison.configs
    refs = matching_reference(reference, configs, "tokens_per_s_per_gpu")
    lines = []
    for _, ref in refs.iterrows():
        mine = configs[(configs["model"].map(architecture_key) == architecture_key(ref["model"]))
                       & (configs["nodes"] == ref["nodes"])
                       & configs["tokens_per_s_per_gpu_mean"].notna()]
        if mine.empty:
            continue
        best = mine.sort_values("tokens_per_s_per_gpu_mean").iloc[-1]
        share = best["tokens_per_s_per_gpu_mean"] / ref["value"] * 100
        lines.append(f"Published reference, {ref['model']} {_nodes_text([ref['nodes']])}: "
                     f"{best['tokens_per_s_per_gpu_mean']:,.0f} tokens/s/GPU from the runs' step "
                     f"time, {share:.0f}% of {ref['value']:,.0f} "
                     f"({reference_label(ref, software_text(best.get('software')))}).")
    return _capped(lines, "reference comparisons")


def failure_findings(runs: pd.DataFrame) -> list[str]:
    """'3 of 40 runs failed: oom 2, nccl_timeout 1.'"""
    if runs.empty:
        return []
    failed = runs[runs["status"] != "completed"]
    if failed.empty:
        return [f"All {len(runs)} runs completed."]
    reasons = failed["failure_reason"].astype("string").fillna(failed["status"].astype("string"))
    counts = reasons.value_counts()
    detail = ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in counts.items())
    return [f"{len(failed)} of {len(runs)} runs did not complete: {detail}."]


def _capped(lines: list[str], what: str) -> list[str]:
    if len(lines) <= MAX_LINES_PER_KIND:
        return lines
    return lines[:MAX_LINES_PER_KIND] + [f"…and {len(lines) - MAX_LINES_PER_KIND} more {what} (see the tables)."]
