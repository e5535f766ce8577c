"""charts: the data behind the artists (lines, bars, labels, legends), not pixels."""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
from matplotlib.figure import Figure

from slurmkit.report import charts
from slurmkit.report.compare import compare_runs


@pytest.fixture
def comparison(runs):
    return compare_runs(runs)


@pytest.fixture
def palette(comparison):
    return charts.Palette.for_configs(comparison.configs, comparison.by)


def _lines(ax):
    """{label: (xdata, ydata)} of the labelled lines, error-bar lines included."""
    found = {ln.get_label(): ln for ln in ax.lines if not ln.get_label().startswith("_")}
    found.update({c.get_label(): c.lines[0] for c in ax.containers if hasattr(c, "has_xerr")})
    return {label: (list(ln.get_xdata()), list(ln.get_ydata())) for label, ln in found.items()}


def _legend(fig):
    return [t.get_text() for t in fig.legends[0].get_texts()]


def test_palette_gives_one_colour_per_variant_and_one_marker_per_model(comparison, palette):
    assert palette.colours == {"4": charts.COLOURS[0], "8": charts.COLOURS[1]}
    assert palette.markers == {"m7": "o", "m70": "s"}
    assert palette.variant_label(8) == "8 adapters"
    assert charts.variant_label("site", "xe9680-8cx7") == "xe9680-8cx7"
    assert charts.variant_label("tp", 2) == "tp=2"


def test_time_to_target_chart_one_panel_per_model_minutes_per_variant(comparison, palette):
    fig = charts.time_to_target_chart(comparison.configs, palette)
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title(loc="left") for ax in axes] == ["m7", "m70"]
    m7 = _lines(axes[0])
    assert m7["4 adapters"] == ([1.0, 2.0], [pytest.approx(1010 / 60), pytest.approx(10.0)])
    assert m7["8 adapters"][1] == [pytest.approx(1000 / 60), pytest.approx(500 / 60)]
    assert axes[0].containers[0].lines[0].get_color() == palette.colour(4)
    assert axes[0].get_ylabel() == "" and fig.get_supylabel() == "Time for 500 steps (min)"
    assert axes[0].get_xlabel() == "Nodes (8 GPUs each)"
    assert fig._suptitle.get_text() == "Time for 500 steps"
    assert _legend(fig) == ["4 adapters", "8 adapters"]


def test_throughput_chart_draws_matching_published_points(comparison, palette):
    reference = pd.DataFrame([
        dict(model="M7", gpu="H100 SXM", precision="bf16", task="pretrain", seq_len=4096, nodes=1,
             metric="tokens_per_s_per_gpu", value=120.0, software="NeMo 24.01", family="nemo_perf",
             derived=False),
        dict(model="m7", gpu="H100 SXM", precision="fp8", task="pretrain", seq_len=4096, nodes=1,
             metric="tokens_per_s_per_gpu", value=999.0, software="NeMo 24.07", family="nemo_perf",
             derived=False)])
    configs = comparison.configs.assign(software="NeMo 24.01")   # the runs' container
    fig = charts.throughput_chart(configs, palette, reference)
    ax = fig.axes[0]
    published = [c for c in ax.collections if c.get_label().startswith("published")]
    assert len(published) == 1                                   # fp8 row does not match bf16 runs
    assert published[0].get_offsets().tolist() == [[1.0, 120.0]]
    assert "published: NVIDIA NeMo perf. table, NeMo 24.01" in _legend(fig)
    unknown = charts.throughput_chart(comparison.configs, palette, reference)  # runs without a label
    assert ("published: NVIDIA NeMo perf. table — published with NeMo 24.01; this run: version unknown"
            in _legend(unknown))


def test_mfu_chart_in_percent(comparison, palette):
    fig = charts.mfu_chart(comparison.configs, palette, None)
    m7 = _lines(fig.axes[0])
    assert m7["8 adapters"][1][1] == pytest.approx(108 * 0.05 / 989 * 100)
    assert fig.get_supylabel() == "MFU (% of peak dense TFLOPS)"


def test_efficiency_chart(comparison, palette):
    fig = charts.efficiency_chart(comparison.scaling, comparison.configs, palette)
    lines = _lines(fig.axes[0])
    assert lines["4 adapters"] == ([1.0, 2.0], [pytest.approx(100.0), pytest.approx(90.0)])
    assert lines["ideal (100%)"][1] == [100.0, 100.0]


def test_ratio_chart_bars_are_gains_grey_within_noise(comparison):
    fig = charts.ratio_chart(comparison.pairs, "time_to_target_s", "8 adapters vs 4 adapters")
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == [pytest.approx(1000 / 1010), pytest.approx(100 / 6)]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["m7\n1 nodes", "m7\n2 nodes"]
    assert ax.patches[0].get_facecolor()[:3] == pytest.approx((0xBB / 255,) * 3)   # within noise
    assert [t.get_text() for t in ax.texts] == ["+1.0%", "+16.7%"]
    assert fig._suptitle.get_text() == "8 adapters vs 4 adapters: gain in extrapolated time for the target steps"


def test_step_time_box_chart_after_warmup(comparison, palette, steps):
    fig = charts.step_time_box_chart(steps, comparison.configs, palette)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["1 n\n2.02 s", "1 n\n2 s", "2 n\n1.2 s", "2 n\n1 s"]
    # steps 11..20 of two repeats (2.0 s and 2.04 s), each x 0.99 / 1.01: median 2.0198 s
    whiskers = sorted(w.get_ydata()[1] for w in ax.lines[0:2])
    assert whiskers == pytest.approx([(1.98 / 2.0198 - 1) * 100, (2.0604 / 2.0198 - 1) * 100])


def test_loss_chart_one_line_per_configuration(comparison, palette, steps):
    fig = charts.loss_chart(steps, comparison.configs, palette)
    lines = [ln for ax in fig.axes for ln in ax.lines]
    assert len(lines) == 5                                       # five completed configurations
    assert list(lines[0].get_ydata())[:2] == pytest.approx([9.9, 9.8])


def test_charts_return_none_when_there_is_nothing_to_draw(comparison, palette):
    empty = comparison.configs.iloc[0:0]
    assert charts.time_to_target_chart(empty, palette) is None
    assert charts.ratio_chart(comparison.pairs.iloc[0:0], "time_to_target_s", "x") is None
    assert charts.efficiency_chart(comparison.scaling.iloc[0:0], empty, palette) is None
    assert charts.loss_chart(pd.DataFrame(columns=["run_id", "step", "loss"]), comparison.configs, palette) is None
    assert charts.step_time_box_chart(pd.DataFrame(), comparison.configs, palette) is None


def test_svg_is_inline_and_deterministic(comparison, palette):
    fig = charts.time_to_target_chart(comparison.configs, palette)
    svg = charts.figure_svg(fig)
    assert svg.startswith("<svg") and "<?xml" not in svg
    assert ">Time for 500 steps<" in svg                                 # text kept as text
    assert svg == charts.figure_svg(charts.time_to_target_chart(comparison.configs, palette))
    assert charts.figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_pyplot_global_state():
    code = ("import sys, pandas as pd; from slurmkit.report import charts;"
            "from slurmkit.report import html, pdf, model;"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_each_shape_gets_its_own_line_and_style(runs, make_run):
    extra = [make_run("m7", n, s, 0, time_s=t, tps=v, tp=2)
             for (n, s, t, v) in ((1, "A", 1100.0, 95.0), (2, "A", 700.0, 80.0))]
    c = compare_runs(pd.concat([runs, pd.DataFrame(extra)]))
    palette = charts.Palette.for_configs(c.configs, c.by)
    fig = charts.time_to_target_chart(c.configs, palette)
    m7 = _lines(fig.axes[0])
    assert set(m7) == {"4 adapters · TP 1", "8 adapters · TP 1", "4 adapters · TP 2"}
    assert m7["4 adapters · TP 2"][1] == [pytest.approx(1100 / 60), pytest.approx(700 / 60)]
    styles = {c.get_label(): c.lines[0].get_linestyle() for c in fig.axes[0].containers}
    assert styles["4 adapters · TP 1"] == styles["8 adapters · TP 1"] != styles["4 adapters · TP 2"]


def test_many_pairs_merge_into_one_bar_per_model_and_node_count(comparison, monkeypatch):
    monkeypatch.setattr(charts, "MAX_BARS", 1)
    fig = charts.ratio_chart(comparison.pairs, "time_to_target_s", "x")
    assert len(fig.axes[0].patches) == 2 and fig._suptitle.get_text().endswith("(mean over shapes)")
    doubled = pd.concat([comparison.pairs, comparison.pairs.assign(gain_pct=0.0, within_noise=True)])
    heights = [p.get_height() for p in charts.ratio_chart(doubled, "time_to_target_s", "x").axes[0].patches]
    assert heights == [pytest.approx(1000 / 1010 / 2), pytest.approx(100 / 12)]
