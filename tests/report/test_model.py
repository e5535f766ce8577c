"""The report model: findings, tables and charts from the hand-built set, and every bad input."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa

from slurmkit.report.model import build_report, build_report_from_frames, synthetic_mask
from slurmkit.results import store

NOW = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc)
CHARTS = ["time_to_target", "ratio", "tokens_per_gpu", "tflops_per_gpu", "scaling_efficiency",
          "mfu", "step_time_distribution", "loss"]


def _build(runs, steps=None):
    steps = steps if steps is not None else pd.DataFrame(columns=["run_id", "step", "step_time_s", "loss"])
    return build_report_from_frames(runs, steps, "T", results_label="res", now=NOW)


def test_full_report_from_a_results_folder(results_dir):
    report = build_report(results_dir, "Hand set")
    assert report.title == "Hand set"
    assert [c.name for c in report.charts] == CHARTS
    assert all(c.figure is not None for c in report.charts)
    assert report.findings[0].text == ("8 adapters vs 4 adapters (extrapolated time for the target steps): "
                                  "m7 faster by 16.7% on 2 nodes, within noise on 1 node.")
    assert "1 of 11 runs carry no parameters" in report.notices[0]
    assert any(f.text.startswith("2 of 11 runs did not complete: oom 1, incomplete 1") for f in report.findings)
    assert report.sites.columns == ["", "A", "B"]
    assert ["Adapters per node", "4", "8"] in report.sites.rows
    assert [t.title for t in report.tables] == [
        "8 adapters vs 4 adapters: extrapolated time for the target steps (s)",
        "8 adapters vs 4 adapters: mean step time (s)", "8 adapters vs 4 adapters: tokens/s/GPU",
        "Summary per model: 8 adapters vs 4 adapters",
        "Cost of the target steps: 8 adapters vs 4 adapters",
        "Scaling against the smallest node count", "Best configuration per model and node count"]
    summary = report.tables[3]
    assert summary.rows[0] == ["m7", "8 adapters", "mean step time (s)", "2", "+8.8%", "+1.0% … +16.7%", "1"]
    assert len(report.runs.rows) == 11
    assert report.failures.rows[0][:3] == ["m7-n2-A-r2", "failed", "oom"]
    assert ("Runs", "11 (0 synthetic)") in report.provenance


def test_cost_and_scaling_findings_read_right(runs, steps):
    findings = [f.text for f in _build(runs, steps).findings]
    assert ("Cost of 8 adapters instead of 4 adapters, m7, 500 steps (extrapolated time × nodes × "
            "price): on 1 node +$1.36 and no time gain beyond noise; on 2 nodes +$0.83 and saves 1.7 "
            "min, 120 s per extra $. Prices per node-hour: source not recorded (set cost_source in the "
            "site config).") in findings
    assert ("Scaling, m7 · 4 adapters: 2 nodes reach 90% efficiency against 1 node (speed-up 1.80x "
            "for 2x the nodes, by tokens/s/GPU).") in findings


def test_empty_results_make_a_report_that_says_so(tmp_path):
    (tmp_path / "results").mkdir()
    report = build_report(tmp_path / "results")
    assert report.notices[0].startswith("The results folder holds no runs")
    assert report.charts == [] and report.findings == [] and report.runs is None


def test_one_run_only(runs, steps):
    one = runs.iloc[[0]]
    report = _build(one, steps)
    assert "The results hold a single run: nothing to pair or scale against." in report.notices
    assert any(n.startswith("no runs pair up") for n in report.notices)
    drawn = {c.name for c in report.charts if c.figure is not None}
    assert drawn == {"time_to_target", "tokens_per_gpu", "tflops_per_gpu", "mfu",
                     "step_time_distribution", "loss"}
    missing = [c for c in report.charts if c.figure is None]
    assert missing[0].name == "scaling_efficiency" and missing[0].missing_reason


def test_all_runs_failed(runs):
    report = _build(runs.assign(status="failed", failure_reason="nccl_timeout"))
    assert any(n.startswith("None of the 11 runs completed") for n in report.notices)
    assert all(c.figure is None for c in report.charts)              # never an empty chart
    assert [f.text for f in report.findings] == ["11 of 11 runs did not complete: nccl timeout 11."]
    assert len(report.failures.rows) == 11


def test_runs_with_no_pairs(runs, steps):
    report = _build(runs[runs["site"] != "B"], steps)
    assert any("no runs pair up" in n for n in report.notices)
    assert "ratio" not in [c.name for c in report.charts]
    assert "Pairs" not in " ".join(t.title for t in report.tables)


def test_missing_columns_from_an_older_schema(tmp_path, runs):
    """A runs table written with fewer columns (an older layout) reads, and the report says so."""
    from deltalake import DeltaTable, write_deltalake

    folder = tmp_path / "old" / "runs"
    keep = ["run_id", "status", "model", "site", "nodes", "time_to_target_s"]
    table = pa.Table.from_pandas(runs[keep].dropna(subset=["model"]), preserve_index=False)
    DeltaTable.create(folder, table.schema, configuration={"slurmkit.schema_version": str(store.SCHEMA_VERSION)},
                      raise_if_key_not_exists=False)
    write_deltalake(folder, table, mode="append")
    report = build_report(tmp_path / "old")
    assert any("columns missing from the results (older schema?)" in n for n in report.notices)
    assert report.findings[0].text.startswith("B vs A (extrapolated time for the target steps): m7 faster by 16.7%")


def test_synthetic_runs_are_flagged(runs):
    runs = runs.assign(job_id=["synthetic-1"] * 3 + ["5"] * (len(runs) - 3))
    assert synthetic_mask(runs).sum() == 3
    report = _build(runs)
    assert report.notices[0].startswith("3 of 11 runs come from SYNTHETIC logs")
    logs = {row[0]: row[1] for row in report.runs.rows}
    assert logs["m7-n1-A-r0"] == "SYNTHETIC" and logs["m70-n2-A-r0"] == "trainer"
