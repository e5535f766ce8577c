"""The shipped published numbers and the rule that matches them to measured configurations."""
from __future__ import annotations

import pandas as pd
import pytest

from slurmkit.report.reference import gpu_key, load_reference, matching_reference, model_key, reference_label


def test_every_published_number_names_its_source():
    ref = load_reference()
    assert len(ref) >= 80
    assert ref["source"].notna().all() and (ref["source"].str.len() > 10).all()
    assert set(ref["metric"]) <= {"tokens_per_s_per_gpu", "tflops_per_gpu", "step_time_s", "mfu",
                                  "time_to_train_min"}
    row = ref[(ref["source_id"] == "nemo-24.07-fp8") & (ref["model"] == "llama2-70b")
              & (ref["metric"] == "tokens_per_s_per_gpu")].iloc[0]
    assert (row["value"], row["gpus"], row["tp"], row["pp"], row["derived"]) == (1728, 64, 4, 4, False)


def test_names_normalise():
    assert model_key("Llama 2 7B") == model_key("LLAMA2_7B") == "llama27b"
    assert gpu_key("NVIDIA H100 80GB HBM3") == gpu_key("H100-SXM5-80GB") == "h100sxm"
    assert gpu_key("H100 PCIe") == "h100pcie" and gpu_key("L40S") == "l40s"
    assert gpu_key("NVIDIA GB200") == "gb200" and gpu_key("B200") == "b200"  # not the B200 inside GB200


def test_match_needs_model_gpu_precision_task_and_sequence():
    configs = pd.DataFrame([dict(model="llama2-7b", gpu_model="H100 SXM", precision="bf16",
                                 workload="pretrain", seq_len=4096, gbs=128)])
    found = matching_reference(load_reference(), configs, "tokens_per_s_per_gpu")
    assert list(found["value"]) == [11088]
    assert "derived from published" in reference_label(found.iloc[0])
    other = configs.assign(seq_len=2048)
    assert matching_reference(load_reference(), other, "tokens_per_s_per_gpu").empty
    nulls = configs.assign(gpu_model=None)
    assert matching_reference(load_reference(), nulls, "tokens_per_s_per_gpu").empty


def test_a_published_global_batch_must_match_too():
    configs = pd.DataFrame([dict(model="llama2-7b", gpu_model="H100 SXM", precision="fp8",
                                 workload="pretrain", seq_len=4096, gbs=256)])
    assert matching_reference(load_reference(), configs, "tokens_per_s_per_gpu").empty
    found = matching_reference(load_reference(), configs.assign(gbs=128), "tokens_per_s_per_gpu")
    assert sorted(found["value"]) == [16154, 16934]


# --- published numbers of the Llama 3 shapes, and their FLOPs formula ---------------------------

# Architectures as their published configs give them (layers, hidden, ffn, heads, kv heads, vocab).
LLAMA = {"llama2-7b": (32, 4096, 11008, 32, 32, 32000), "llama2-13b": (40, 5120, 13824, 40, 40, 32000),
         "llama2-70b": (80, 8192, 28672, 64, 8, 32000), "llama3-8b": (32, 4096, 14336, 32, 8, 128256),
         "llama3-70b": (80, 8192, 28672, 64, 8, 128256)}


def _gflop_per_token(model: str, seq: int, causal: bool) -> float:
    """NeMo's llama FLOPs per token (research/reference-results.md 6.2); causal halves s/h."""
    L, h, ffn, a, g, V = LLAMA[model]
    attention = 12 * seq / h * (0.5 if causal else 1.0)
    return L * h * h * (12 + 12 * g / a + 18 * ffn / h + attention + 6 * V / (L * h)) / 1e9


def test_each_published_tflops_follows_the_formula_its_row_names():
    """TFLOPS / tokens per second is the per-token FLOPs of the formula in `flops_formula`: the
    'causal' mark of the 25.09+ rows is what the numbers say, not a guess."""
    ref = load_reference()
    keys = ["source_id", "model", "task", "precision", "gpus", "gbs"]
    tflops = ref[(ref["metric"] == "tflops_per_gpu") & ref["model"].isin(LLAMA) & (ref["task"] == "pretrain")]
    tokens = ref[ref["metric"] == "tokens_per_s_per_gpu"].set_index(keys)["value"]
    checked = set()
    for row in tflops.itertuples():
        if (row.source_id, row.model, row.task, row.precision, row.gpus, row.gbs) not in tokens.index:
            continue
        per_token = row.value * 1e3 / tokens[(row.source_id, row.model, row.task, row.precision, row.gpus, row.gbs)]
        causal = row.flops_formula == "causal"
        assert per_token == pytest.approx(_gflop_per_token(row.model, int(row.seq_len), causal), rel=0.01), row
        checked.add((row.software, row.model))
    assert {("NeMo 25.09", "llama3-8b"), ("NeMo 25.11", "llama3-70b"), ("NeMo 26.02", "llama3-70b"),
            ("NeMo 24.05", "llama3-8b"), ("NeMo 24.07", "llama3-70b")} <= checked


def test_llama3_rows_from_megatron_bridge_and_nemo_launcher():
    ref = load_reference()
    mb = ref[(ref["family"] == "megatron_bridge") & (ref["metric"] == "tokens_per_s_per_gpu")]
    assert sorted(zip(mb["software"], mb["model"], mb["gbs"], mb["value"])) == [
        ("NeMo 25.09", "llama3-70b", 128, 1619), ("NeMo 25.09", "llama3-8b", 128, 14079),
        ("NeMo 25.11", "llama3-70b", 128, 1602), ("NeMo 25.11", "llama3-8b", 128, 14451),
        ("NeMo 26.02", "llama3-70b", 256, 1621), ("NeMo 26.04", "llama3-70b", 256, 1633)]
    assert (ref.loc[ref["family"] == "megatron_bridge", "flops_formula"] == "causal").all()
    assert ref.loc[ref["family"] != "megatron_bridge", "flops_formula"].isin(["megatron2024_full"]).sum() > 100
    assert mb["source"].str.match(r"NVIDIA-NeMo/Megatron-Bridge docs/performance-summary\.md@[0-9a-f]{12}$").all()
    l3 = ref[(ref["software"] == "NeMo 24.05") & ref["model"].str.startswith("llama3")
             & (ref["metric"] == "tokens_per_s_per_gpu")]
    assert sorted(zip(l3["model"], l3["tp"], l3["pp"], l3["value"])) == [
        ("llama3-70b", 4, 4, 1444), ("llama3-8b", 1, 1, 11879)]
    # a derived number says so, and how it was derived
    dgxc = ref[(ref["source_id"] == "dgxc-25.02") & (ref["metric"] == "tokens_per_s_per_gpu")]
    assert dgxc["derived"].all() and dgxc["notes"].str.startswith("DERIVED: published").all()
    first = dgxc[(dgxc["model"] == "llama3.1-70b") & (dgxc["precision"] == "bf16") & (dgxc["gpus"] == 64)].iloc[0]
    assert (first["value"], first["gbs"]) == (pytest.approx(71756 / 64, abs=0.05), 128)


def test_every_row_has_the_columns_a_comparison_needs():
    ref = load_reference()
    for column in ("source", "published_date", "software", "precision", "model", "task", "metric",
                   "value"):
        assert ref[column].notna().all(), column
    assert ref["software"].str.match(r"^NeMo \d\d\.\d\d$").all()
    timed = ref[ref["metric"] != "time_to_train_min"]
    assert timed["flops_formula"].isin(["megatron2024_full", "causal"]).all()
    assert timed["seq_len"].notna().all() and timed["gbs"].notna().all()


# --- matching by software version ---------------------------------------------------------------

def _llama3_70b(software, gbs=128) -> pd.DataFrame:
    return pd.DataFrame([dict(model="llama3-70b", gpu_model="H100 SXM", precision="fp8", workload="pretrain",
                              seq_len=8192, gbs=gbs, software=software)])


def test_rows_of_the_runs_own_version_are_preferred():
    ref = load_reference()
    same = matching_reference(ref, _llama3_70b("NeMo 24.07"), "tokens_per_s_per_gpu")
    assert list(zip(same["software"], same["value"])) == [("NeMo 24.07", 1524)]
    assert reference_label(same.iloc[0]) == "published: NVIDIA NeMo perf. table, NeMo 24.07"
    bridge = matching_reference(ref, _llama3_70b("NeMo 25.11"), "tokens_per_s_per_gpu")
    assert list(zip(bridge["software"], bridge["value"])) == [("NeMo 25.11", 1602)]
    assert reference_label(bridge.iloc[0]) == "published: NVIDIA Megatron-Bridge perf. summary, NeMo 25.11"


def test_a_run_of_another_version_sees_every_version_marked():
    ref = load_reference()
    found = matching_reference(ref, _llama3_70b("NeMo 26.02"), "tokens_per_s_per_gpu")  # 26.02 published GBS 256
    assert sorted(set(found["software"])) == ["NeMo 24.05", "NeMo 24.07", "NeMo 24.09", "NeMo 24.12",
                                              "NeMo 25.09", "NeMo 25.11"]   # 24.09/24.12: Llama 3.1
    labels = set(found.apply(reference_label, axis=1))
    assert "published: NVIDIA NeMo perf. table — published with NeMo 24.07; this run: NeMo 26.02" in labels
    assert all("this run: NeMo 26.02" in label for label in labels)


def test_a_run_without_a_version_says_version_unknown():
    found = matching_reference(load_reference(), _llama3_70b(None), "tokens_per_s_per_gpu")
    assert len(found) == 6
    assert ("published: NVIDIA Megatron-Bridge perf. summary — published with NeMo 25.09; this run: "
            "version unknown") in set(found.apply(reference_label, axis=1))


def test_causal_flops_never_meet_2024_tflops():
    """From 25.09 NeMo discounts causal attention; slurmkit's TFLOPS and MFU use the 2024 formula,
    so those rows are left out of TFLOPS and MFU comparisons (tokens/s still compares)."""
    ref = load_reference()
    for metric in ("tflops_per_gpu", "mfu"):
        found = matching_reference(ref, _llama3_70b("NeMo 25.09"), metric)
        assert not (found["flops_formula"] == "causal").any()
    tflops = matching_reference(ref, _llama3_70b("NeMo 25.09"), "tflops_per_gpu")
    assert sorted(tflops["value"]) == [695, 734]                   # 24.05 and 24.07, marked
    assert all("this run: NeMo 25.09" in label for label in tflops.apply(reference_label, axis=1))
    tokens = matching_reference(ref, _llama3_70b("NeMo 25.09"), "tokens_per_s_per_gpu")
    assert list(tokens["value"]) == [1619]


def test_several_versions_among_the_runs_are_named_together():
    configs = pd.concat([_llama3_70b("NeMo 26.02"), _llama3_70b(None)])
    found = matching_reference(load_reference(), configs, "tokens_per_s_per_gpu")
    row = found[found["software"] == "NeMo 24.07"].iloc[0]
    assert reference_label(row) == ("published: NVIDIA NeMo perf. table — published with NeMo 24.07; "
                                     "these runs: version unknown, NeMo 26.02")


# --- what the report shows: chart legends and findings ------------------------------------------

PUBLISHED_2407 = pd.DataFrame([dict(
    model="llama2-7b", gpu="H100 SXM", precision="bf16", task="pretrain", seq_len=4096, gbs=128, nodes=1,
    metric="tokens_per_s_per_gpu", value=120.0, software="NeMo 24.07", family="nemo_perf", derived=False,
    flops_formula="megatron2024_full")])


def _shown(make_run, software):
    """The throughput chart's legend and the reference finding for one llama2-7b run."""
    from slurmkit.report import charts
    from slurmkit.report.compare import compare_runs
    from slurmkit.report.findings import reference_findings
    from slurmkit.report.reference import config_software
    runs = pd.DataFrame([make_run("llama2-7b", 1, "A", 0, time_s=1000.0, tps=100.0, software=software)])
    if software is None:
        runs = runs.drop(columns="software")                      # a log slurmkit did not launch
    comparison = compare_runs(runs)
    comparison.configs["software"] = config_software(comparison.configs, runs)
    palette = charts.Palette.for_configs(comparison.configs, "site")
    fig = charts.throughput_chart(comparison.configs, palette, PUBLISHED_2407)
    marks = [c for c in fig.axes[0].collections if c.get_label().startswith("published")]
    assert [m.get_offsets().tolist() for m in marks] == [[[1.0, 120.0]]]
    return marks[0].get_label(), reference_findings(comparison, PUBLISHED_2407)


def test_same_version_comparison_carries_no_mark(make_run):
    legend, findings = _shown(make_run, "NeMo 24.07")
    assert legend == "published: NVIDIA NeMo perf. table, NeMo 24.07"
    assert findings == ["Published reference, llama2-7b on 1 node: 100 tokens/s/GPU from the runs' step time, 83% of 120 "
                        "(published: NVIDIA NeMo perf. table, NeMo 24.07)."]


def test_cross_version_comparison_is_marked_in_legend_and_finding(make_run):
    legend, findings = _shown(make_run, "NeMo 24.05")
    assert legend == "published: NVIDIA NeMo perf. table — published with NeMo 24.07; this run: NeMo 24.05"
    assert findings[0].endswith("(published: NVIDIA NeMo perf. table — published with NeMo 24.07; "
                                "this run: NeMo 24.05).")


def test_run_without_software_is_marked_version_unknown(make_run):
    legend, findings = _shown(make_run, None)
    assert legend == "published: NVIDIA NeMo perf. table — published with NeMo 24.07; this run: version unknown"
    assert "this run: version unknown" in findings[0]


def test_the_report_annotates_configurations_with_their_runs_software(make_run):
    from slurmkit.report.model import build_report_from_frames
    runs = pd.DataFrame([make_run("llama3-70b", 8, "A", r, time_s=1000.0, tps=1400.0, precision="fp8",
                                  seq_len=8192, gbs=128, software="NeMo 24.05") for r in (0, 1)])
    report = build_report_from_frames(runs, pd.DataFrame(columns=["run_id", "step", "step_time_s", "loss"]), "T")
    lines = [f.text for f in report.findings if f.text.startswith("Published reference")]
    assert lines == ["Published reference, llama3-70b on 8 nodes: 1,400 tokens/s/GPU from the runs' step time, 97% of 1,444 "
                     "(published: NVIDIA NeMo perf. table, NeMo 24.05)."]


def test_llama31_numbers_stand_beside_llama3_runs_of_the_same_architecture():
    """The shipped Megatron-Bridge experiments run Llama 3 70B in BF16 (TP4 PP4 CP2 VP5, GBS 128,
    NeMo 26.04); dgxc-benchmarking published that shape for Llama 3.1 70B."""
    from slurmkit.config.catalog import BUILTIN
    from slurmkit.report.reference import SAME_ARCHITECTURE, architecture_key
    for alias, model in (("llama3.1-8b", "llama3-8b"), ("llama3.1-70b", "llama3-70b")):
        a, b = BUILTIN[alias], BUILTIN[model]
        assert (a.layers, a.hidden, a.ffn_hidden, a.heads, a.kv_heads, a.vocab) == (
            b.layers, b.hidden, b.ffn_hidden, b.heads, b.kv_heads, b.vocab)
        assert architecture_key(alias) == architecture_key(model) == model_key(model)
    assert len(SAME_ARCHITECTURE) == 2
    configs = _llama3_70b("NeMo 26.04").assign(precision="bf16")
    found = matching_reference(load_reference(), configs, "tokens_per_s_per_gpu")
    assert sorted(zip(found["software"], found["value"])) == [("NeMo 24.09", 1113.0), ("NeMo 24.12", 1121.2)]
    assert reference_label(found.iloc[0]) == ("derived from published: NVIDIA dgxc-benchmarking (llama3.1-70b) — "
                                              "published with NeMo 24.09; this run: NeMo 26.04")
    mfu = matching_reference(load_reference(), configs, "mfu")
    assert sorted(mfu["value"]) == [0.541, 0.5452]


def test_software_survives_the_results_store_into_the_report(tmp_path, make_run, write):
    """Runs written to the Parquet store (software is a params column) and read back: the report's
    throughput chart and finding carry the cross-version mark."""
    from slurmkit.report.model import build_report
    runs = pd.DataFrame([make_run("llama2-7b", 1, "A", r, time_s=1000.0, tps=16000.0, precision="fp8",
                                  software="NeMo 24.09") for r in (0, 1)])
    steps = pd.DataFrame({"run_id": [], "step": [], "step_time_s": [], "loss": []})
    report = build_report(write(tmp_path / "results", runs, steps))
    chart = next(c for c in report.charts if c.name == "tokens_per_gpu")
    labels = {c.get_label() for c in chart.figure.axes[0].collections if c.get_label().startswith("published")}
    assert labels == {"published: NVIDIA NeMo perf. table — published with NeMo 24.05; this run: NeMo 24.09",
                      "published: NVIDIA NeMo perf. table — published with NeMo 24.07; this run: NeMo 24.09"}
    lines = [f.text for f in report.findings if f.text.startswith("Published reference")]
    assert lines == [
        "Published reference, llama2-7b on 1 node: 16,000 tokens/s/GPU from the runs' step time, 94% of 16,934 (published: "
        "NVIDIA NeMo perf. table — published with NeMo 24.07; this run: NeMo 24.09).",
        "Published reference, llama2-7b on 1 node: 16,000 tokens/s/GPU from the runs' step time, 99% of 16,154 (published: "
        "NVIDIA NeMo perf. table — published with NeMo 24.05; this run: NeMo 24.09)."]
