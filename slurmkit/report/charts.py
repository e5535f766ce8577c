"""Comparison charts, drawn with matplotlib's object API (``Figure``; no pyplot global state).

Every chart function takes tables built by :mod:`slurmkit.report.compare` and a :class:`Palette`, and
returns a ``Figure`` or ``None`` when there is nothing to draw (the report says why instead of
showing an empty chart). One palette per report keeps one colour per compared configuration
(e.g. per adapter count or site) and one marker per model across every chart.
"""
from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from slurmkit.report.compare import METRICS
from slurmkit.report.labels import value_text, variant_label
from slurmkit.report.reference import architecture_key, matching_reference, reference_label

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.typing import RcKeyType

# {model: ([(variant, label, shape, rows sorted by x)], number of configurations)}
Series = dict[str, tuple[list[tuple[Any, str, str, pd.DataFrame]], int]]

# Okabe-Ito: distinguishable for colour-blind readers and in greyscale print.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
REFERENCE_MARKERS = ("*", "X", "P", "h")
MAX_BOXES_PER_MODEL = 16
MAX_SERIES_PER_PANEL = 10
MAX_BARS = 24
LINESTYLES = ("-", "--", ":", "-.")
SHAPE_FIELDS = ("workload", "launcher", "tp", "pp", "cp", "vpp", "sequence_parallel", "mbs", "gbs",
                "seq_len", "precision", "steps", "dataset")
SHORT_NAMES = {"tp": "TP", "pp": "PP", "cp": "CP", "vpp": "VPP", "mbs": "MBS", "gbs": "GBS",
               "seq_len": "seq", "sequence_parallel": "SP"}
MAX_LOSS_LINES = 12
STYLE: dict[RcKeyType, Any] = {"font.size": 9, "axes.titlesize": 11, "axes.titleweight": "bold", "axes.labelsize": 9,
         "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
         "grid.color": "#dddddd", "grid.linewidth": 0.6, "legend.fontsize": 8,
         "legend.frameon": False, "svg.fonttype": "none", "svg.hashsalt": "slurmkit"}


@dataclass
class Palette:
    """Colour per value of the compared field, marker per model; labels for both."""

    field: str
    # dataclasses.field: the name `field` is this class's first field
    colours: dict[str, str] = dataclasses.field(default_factory=dict)
    markers: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def for_configs(cls, configs: pd.DataFrame, field_name: str) -> Palette:
        present = configs.get(field_name, pd.Series(dtype=object)).dropna()
        values = [value_text(v) for v in sorted(set(present), key=_sort_key)]
        models = sorted({str(v) for v in configs.get("model", pd.Series(dtype=object)).dropna()})
        return cls(field_name, {v: COLOURS[i % len(COLOURS)] for i, v in enumerate(values)},
                   {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(models)})

    def colour(self, value: object) -> str:
        return self.colours.get(value_text(value), "#777777")

    def marker(self, model: object) -> str:
        return self.markers.get(str(model), "o")

    def variant_label(self, value: object) -> str:
        return variant_label(self.field, value)


def _sort_key(value: object) -> tuple:
    return (0, float(value), "") if isinstance(value, (int, float)) else (1, 0.0, str(value))


def new_figure(width_in: float = 7.0, height_in: float = 3.8) -> Figure:
    with matplotlib.rc_context(STYLE):
        return Figure(figsize=(width_in, height_in), layout="constrained")


def shape_fields(configs: pd.DataFrame) -> list[str]:
    """The job fields (TP, GBS, ...) that vary among ``configs``: they name separate lines."""
    return [f for f in SHAPE_FIELDS if f in configs.columns and configs[f].map(value_text).nunique() > 1]


def shape_label(row: pd.Series, fields: list[str]) -> str:
    return " ".join(f"{SHORT_NAMES.get(f, f)} {value_text(row[f])}" for f in fields)


def _series(configs: pd.DataFrame, column: str, palette: Palette, x: str, higher_is_better: bool
            ) -> Series:
    """{model: [(variant, label, rows sorted by x)]}: one line per configuration but ``x``.

    A panel with more than MAX_SERIES_PER_PANEL lines keeps the best ones by their mean.
    """
    wanted = dict.fromkeys(["model", palette.field, x, f"{column}_mean", f"{column}_std",
                            *(f for f in SHAPE_FIELDS if f in configs.columns)])
    rows = configs.loc[configs[f"{column}_mean"].notna() & configs[x].notna() & configs["model"].notna(),
                       list(wanted)]
    panels: Series = {}
    for model, mine in rows.groupby(rows["model"].astype(str), sort=True):
        fields = shape_fields(mine)
        keys = [mine[palette.field].map(value_text), *(mine[f].map(value_text) for f in fields)]
        lines = []
        for _, group in mine.groupby(keys, sort=True):
            first = group.iloc[0]
            shape = shape_label(first, fields)
            label = " · ".join(filter(None, [palette.variant_label(first[palette.field]), shape]))
            lines.append((first[palette.field], label, shape, group.sort_values(x)))
        if len(lines) > MAX_SERIES_PER_PANEL:
            lines.sort(key=lambda line: line[3][f"{column}_mean"].mean(), reverse=higher_is_better)
            lines = sorted(lines[:MAX_SERIES_PER_PANEL], key=lambda line: line[1])
        panels[model] = (lines, len(mine.groupby(keys)))
    return panels


def line_chart(configs: pd.DataFrame, column: str, palette: Palette, *, title: str, ylabel: str,
               scale: float = 1.0, x: str = "nodes", reference: pd.DataFrame | None = None) -> Figure | None:
    """``column``'s mean against ``x``: one panel per model (their scales differ), one line per
    configuration (colour: the compared variant; line style: the shape), std of repeats as error
    bars, matching published points as hollow black markers."""
    panels = _series(configs, column, palette, x, METRICS[column].higher_is_better)
    if not panels:
        return None
    refs = matching_reference(reference, configs, column) if reference is not None else None
    with matplotlib.rc_context(STYLE):
        fig, axes = _panels(len(panels))
        for ax, (model, (lines, total)) in zip(axes, panels.items()):
            styles = {shape: LINESTYLES[i % len(LINESTYLES)]
                      for i, shape in enumerate(dict.fromkeys(line[2] for line in lines))}
            for variant, label, shape, group in lines:
                std = group[f"{column}_std"].astype(float).fillna(0.0) * scale
                ax.errorbar(group[x].astype(float), group[f"{column}_mean"].astype(float) * scale,
                            yerr=std, color=palette.colour(variant), marker=palette.marker(model),
                            linestyle=styles[shape], capsize=3,
                            linewidth=1.6, markersize=5, label=label)
            if refs is not None:
                _draw_reference(ax, refs[refs["model"].map(architecture_key) == architecture_key(model)], scale, x)
            shown = f" (best {len(lines)} of {total})" if total > len(lines) else ""
            ax.set_title(model + shown, loc="left", fontsize=9)
            _axis(ax, configs[x])
        _frame(fig, axes, title, _x_label(configs, x), ylabel)
    return fig


def _panels(count: int, height_in: float = 3.2) -> tuple[Figure, list[Axes]]:
    """A figure with ``count`` panels, at most three per row."""
    ncols = min(count, 3)
    nrows = -(-count // ncols)
    fig = new_figure(7.2, height_in * nrows + 0.9)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for extra in axes[count:]:
        extra.set_visible(False)
    return fig, list(axes[:count])


def _draw_reference(ax: Axes, refs: pd.DataFrame, scale: float, x: str) -> None:
    """Published points: large hollow black markers, one legend entry per source."""
    if x not in refs.columns or refs.empty:
        return
    labels = refs.apply(reference_label, axis=1)
    for i, (label, group) in enumerate(refs.groupby(labels, sort=True)):
        ax.scatter(group[x].astype(float), group["value"].astype(float) * scale,
                   marker=REFERENCE_MARKERS[i % len(REFERENCE_MARKERS)], s=90, facecolors="none",
                   edgecolors="#222222", linewidths=1.2, zorder=5, label=label)


def _x_label(configs: pd.DataFrame, x: str) -> str:
    if x != "nodes":
        return x
    per_node = configs.get("gpus_per_node", pd.Series(dtype=object)).dropna().unique()
    return f"Nodes ({int(per_node[0])} GPUs each)" if len(per_node) == 1 else "Nodes"


def _axis(ax: Axes, xs: pd.Series, zero: bool = True) -> None:
    """Node counts as ticks (log2 spacing when they span 4x or more); y from zero."""
    ticks = sorted({float(v) for v in xs.dropna()})
    if ticks and all(t > 0 for t in ticks) and max(ticks) / min(ticks) >= 4:
        ax.set_xscale("log", base=2)
    if ticks:
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
    if zero:  # from zero, with headroom so the top line and its markers are not clipped
        top = ax.dataLim.y1
        ax.set_ylim(0, top * 1.1 if np.isfinite(top) and top > 0 else None)


def _frame(fig: Figure, axes: list, title: str, xlabel: str, ylabel: str) -> None:
    """Figure title, shared axis labels and one legend below the panels (duplicates merged)."""
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold", fontsize=11)
    for ax in axes:
        ax.set_xlabel(xlabel)
    fig.supylabel(ylabel, fontsize=9)
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, _legend_handle(handle, len(axes) > 1))
    if entries:
        fig.legend(list(entries.values()), list(entries), loc="outside lower center",
                   ncols=min(3, len(entries)))


def _legend_handle(handle: Artist | ErrorbarContainer, neutral: bool) -> Artist | ErrorbarContainer:
    """With one panel per model the marker only repeats the panel's model: the legend shows the
    line's colour and style alone, true for every panel."""
    line = handle.lines[0] if isinstance(handle, ErrorbarContainer) else handle
    if not neutral or not isinstance(line, Line2D):
        return handle
    return Line2D([], [], color=line.get_color(), linestyle=line.get_linestyle(),
                  linewidth=line.get_linewidth())


def time_to_target_chart(configs: pd.DataFrame, palette: Palette) -> Figure | None:
    """The headline chart: time for the target steps against node count, per configuration."""
    steps = configs["steps"].dropna().unique()
    target = f"{int(steps[0])} steps" if len(steps) == 1 else "the target steps"
    return line_chart(configs, "time_to_target_s", palette, scale=1 / 60,
                      title=f"Time for {target}", ylabel=f"Time for {target} (min)")


def throughput_chart(configs: pd.DataFrame, palette: Palette, reference: pd.DataFrame | None) -> Figure | None:
    return line_chart(configs, "tokens_per_s_per_gpu", palette, reference=reference,
                      title="Throughput per GPU", ylabel="Tokens/s per GPU (tokens/s)")


def tflops_chart(configs: pd.DataFrame, palette: Palette, reference: pd.DataFrame | None) -> Figure | None:
    return line_chart(configs, "tflops_per_gpu", palette, reference=reference,
                      title="Model TFLOPS per GPU", ylabel="TFLOPS per GPU (TFLOP/s)")


def mfu_chart(configs: pd.DataFrame, palette: Palette, reference: pd.DataFrame | None) -> Figure | None:
    return line_chart(configs, "mfu", palette, reference=reference, scale=100.0,
                      title="Model FLOPs utilisation", ylabel="MFU (% of peak dense TFLOPS)")


def efficiency_chart(scaling: pd.DataFrame, configs: pd.DataFrame, palette: Palette) -> Figure | None:
    """Scaling efficiency against the smallest node count of each series; 100% drawn as ideal."""
    if scaling.empty:
        return None
    models = sorted({str(m) for m in scaling["model"]})
    with matplotlib.rc_context(STYLE):
        fig, axes = _panels(len(models))
        for ax, model in zip(axes, models):
            ax.axhline(100.0, color="#999999", linestyle="--", linewidth=1, label="ideal (100%)")
            mine = scaling[scaling["model"].astype(str) == model]
            fields = shape_fields(mine)
            for _, group in list(mine.groupby("series", sort=True))[:MAX_SERIES_PER_PANEL]:
                first = group.iloc[0]
                label = " · ".join(filter(None, [palette.variant_label(first[palette.field]),
                                                 shape_label(first, fields)]))
                ax.plot(group["nodes"].astype(float), group["efficiency"].astype(float) * 100.0,
                        color=palette.colour(first[palette.field]), marker=palette.marker(model),
                        linewidth=1.6, markersize=5, label=label)
            ax.set_title(model, loc="left", fontsize=9)
            _axis(ax, mine["nodes"])
        _frame(fig, axes, "Scaling efficiency", _x_label(configs, "nodes"),
               "Efficiency vs smallest node count (%)")
    return fig


def ratio_chart(pairs: pd.DataFrame, metric: str, by_label: str) -> Figure | None:
    """Bars of the candidate's gain over the baseline per model and node count (0 = equal).

    With more than MAX_BARS pairs (several shapes per node count), each bar is the mean gain of
    the pairs of one model, node count and candidate, grey when all of them are within noise.
    """
    rows = pairs[pairs["metric"] == metric]
    if rows.empty:
        return None
    keys = ["model", "candidate", "nodes"]
    merged = len(rows) > MAX_BARS
    if merged:
        rows = rows.groupby(keys, sort=True, dropna=False).agg(
            gain_pct=("gain_pct", "mean"), noise_pct=("noise_pct", "mean"),
            within_noise=("within_noise", "all"), n=("gain_pct", "size")).reset_index()
    rows = rows.sort_values(keys)
    several = rows["candidate"].nunique() > 1
    labels = [f"{m}\n{int(n)} nodes" + (f"\n{c}" if several else "") if pd.notna(n) else str(m)
              for m, n, c in zip(rows["model"], rows["nodes"], rows["candidate"])]
    with matplotlib.rc_context(STYLE):
        fig = new_figure(7.2, 3.8)
        ax = fig.add_subplot()
        colours = ["#BBBBBB" if noise else (COLOURS[2] if gain > 0 else COLOURS[5])
                   for noise, gain in zip(rows["within_noise"], rows["gain_pct"])]
        bars = ax.bar(range(len(rows)), rows["gain_pct"].astype(float), color=colours,
                      yerr=rows["noise_pct"].astype(float), capsize=3, ecolor="#555555")
        ax.bar_label(bars, labels=[f"{g:+.1f}%" for g in rows["gain_pct"]], padding=2, fontsize=7)
        ax.axhline(0.0, color="#333333", linewidth=0.8)
        ax.set_xticks(range(len(rows)), labels, fontsize=7 if len(rows) <= 12 else 5)
        mean = " (mean over shapes)" if merged else ""
        fig.suptitle(f"{by_label}: gain in {METRICS[metric].label}{mean}", x=0.01, ha="left",
                     fontweight="bold", fontsize=11)
        ax.set_ylabel("Gain over baseline (%)")
        ax.set_xlabel("Model and node count (green: better, red: worse, grey: within noise; "
                      "whiskers: noise band)")
    return fig


def step_time_box_chart(steps: pd.DataFrame, configs: pd.DataFrame, palette: Palette) -> Figure | None:
    """Step-time distribution after warm-up, one box per configuration, one panel per model."""
    groups = _steps_by_config(steps, configs, "step_time_s", palette)
    if not groups:
        return None
    models = sorted({g[0] for g in groups})
    with matplotlib.rc_context(STYLE):
        fig = new_figure(7.2, 2.4 * len(models) + 0.9)
        axes = list(fig.subplots(len(models), 1, squeeze=False)[:, 0])
        for ax, model in zip(axes, models):
            mine = [g for g in groups if g[0] == model][:MAX_BOXES_PER_MODEL]
            medians = [float(np.median(g[3])) for g in mine]
            spread = [(g[3] / m - 1.0) * 100.0 for g, m in zip(mine, medians)]
            box = ax.boxplot(spread, patch_artist=True, showfliers=False,
                             tick_labels=[f"{g[1]} n\n{m:.3g} s" for g, m in zip(mine, medians)],
                             medianprops={"color": "#222222"})
            for patch, g in zip(box["boxes"], mine):
                patch.set_facecolor(palette.colour(g[2]))
                patch.set_alpha(0.8)
                patch.set_label(palette.variant_label(g[2]))
            ax.axhline(0.0, color="#999999", linewidth=0.8)
            ax.set_title(model, loc="left", fontsize=9)
            ax.tick_params(axis="x", labelsize=7)
        _frame(fig, axes, "Step-time spread after warm-up",
               "Nodes and median step time (one box per configuration)",
               "Deviation from the configuration's median (%)")
    return fig


def loss_chart(steps: pd.DataFrame, configs: pd.DataFrame, palette: Palette) -> Figure | None:
    """Loss against step for the first run of each configuration (at most MAX_LOSS_LINES)."""
    rows = steps[steps["loss"].notna()]
    first_run = {ids[0]: cfg for cfg, ids in zip(configs.index, configs["run_ids"]) if ids}
    rows = rows[rows["run_id"].isin(first_run)]
    if rows.empty:
        return None
    chosen = sorted(rows["run_id"].unique())[:MAX_LOSS_LINES]
    models = sorted({str(configs.loc[first_run[r], "model"]) for r in chosen})
    with matplotlib.rc_context(STYLE):
        fig, axes = _panels(len(models))
        for run_id, group in rows[rows["run_id"].isin(chosen)].groupby("run_id", sort=True):
            cfg = configs.loc[first_run[run_id]]
            ax = axes[models.index(str(cfg["model"]))]
            nodes = f"{int(cfg['nodes'])} n · " if pd.notna(cfg["nodes"]) else ""
            ax.plot(group["step"].astype(float), group["loss"].astype(float), linewidth=1.0,
                    color=palette.colour(cfg[palette.field]), alpha=0.85,
                    label=f"{nodes}{palette.variant_label(cfg[palette.field])}")
        for ax, model in zip(axes, models):
            ax.set_title(model, loc="left", fontsize=9)
        _frame(fig, axes, "Training loss (first run of each configuration)", "Step", "Loss")
    return fig


def _steps_by_config(steps: pd.DataFrame, configs: pd.DataFrame, column: str, palette: Palette
                     ) -> list[tuple[str, int, str, np.ndarray]]:
    """[(model, nodes, variant, values)] for each configuration with post-warm-up steps."""
    if steps.empty or column not in steps.columns:
        return []
    by_run = {}
    for idx, ids in zip(configs.index, configs["run_ids"]):
        for run_id in ids:
            by_run[run_id] = idx
    rows = steps[steps[column].notna() & steps["run_id"].isin(by_run)]
    out: list[tuple[str, int, str, np.ndarray]] = []
    for idx, group in rows.groupby(rows["run_id"].map(by_run), sort=False):
        cfg = configs.loc[idx]
        warmup = cfg.get("warmup_steps")
        warmup = int(warmup) if pd.notna(warmup) else 0
        values = group.loc[group["step"] > warmup, column].astype(float).to_numpy()
        if len(values) and pd.notna(cfg["model"]):
            nodes = int(cfg["nodes"]) if pd.notna(cfg["nodes"]) else 0
            out.append((str(cfg["model"]), nodes, str(cfg[palette.field]), values))
    return sorted(out, key=lambda g: (g[0], g[1], g[2]))


def figure_svg(fig: Figure) -> str:
    """The figure as an inline SVG element (no XML prolog, text kept as text)."""
    with matplotlib.rc_context(STYLE):
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    _freeze_layout(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def figure_png(fig: Figure, dpi: int = 150) -> bytes:
    """The figure as PNG bytes (for the PDF)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    _freeze_layout(fig)
    return buf.getvalue()


def _freeze_layout(fig: Figure) -> None:
    """Keep the positions the first render's constrained layout found (in inches, so valid for
    any output), so a second render (SVG for HTML, then PNG for PDF) does not solve it again."""
    fig.set_layout_engine("none")
