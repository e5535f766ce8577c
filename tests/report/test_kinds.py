"""Measured vs derived everywhere (issue 12.1) and claims within the evidence (issue 12.2)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd

from slurmkit.report.compare import METRICS, compare_runs
from slurmkit.report.findings import best_findings, price_text
from slurmkit.report.kinds import DERIVED, MEASURED, METRIC_KINDS
from slurmkit.report.model import build_report_from_frames
from slurmkit.report.runs import runs_table, time_in_steps_s
from slurmkit.report.tables import to_text

_spec = importlib.util.spec_from_file_location("report_conftest", Path(__file__).with_name("conftest.py"))
assert _spec and _spec.loader
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)
run_row = _conftest.run_row  # the hand-built set's row maker


def test_every_metric_has_a_kind():
    assert set(METRIC_KINDS) == set(METRICS)


def test_steps_are_last_step_over_target_and_times_are_marked():
    runs = pd.DataFrame([run_row("m7", 1, "A", 0, time_s=1000.0, tps=100.0, slurm_elapsed_s=1200.0),
                         run_row("m7", 1, "A", 1, status="failed", last_step=32040, steps_completed=1,
                                 steps_target=500150)])
    steps = pd.DataFrame({"run_id": runs["run_id"].iloc[0], "step": range(1, 501), "step_time_s": 2.0})
    table = runs_table(runs, steps, pd.Series(False, index=runs.index))
    col = {name: i for i, name in enumerate(table.columns)}
    rows = {row[0]: row for row in table.rows}
    assert rows["m7-n1-A-r0"][col["Steps"]] == "500/500"
    assert rows["m7-n1-A-r1"][col["Steps"]] == "32,040/500,150"          # the last step, not logged rows
    assert [rows["m7-n1-A-r0"][col[c]] for c in ("Wall (min)", "In steps (min)", "Outside steps (min)",
                                                 "Target, extrapolated (min)")] == ["20.0", "16.7", "3.3", "16.7"]
    kinds = dict(zip(table.columns, table.kinds))
    assert [kinds[c] for c in ("Steps", "Step (s)", "Wall (min)", "In steps (min)")] == [MEASURED] * 4
    assert [kinds[c] for c in ("Outside steps (min)", "Target, extrapolated (min)", "MFU")] == [DERIVED] * 3
    assert kinds["Run"] == kinds["Nodes"] == ""                            # parameters: neither
    assert "[m]" in to_text(table, "table").splitlines()[1]


def test_a_logged_value_in_a_derived_column_is_marked_on_its_cell():
    runs = pd.DataFrame([run_row("m7", 1, "A", 0, time_s=1000.0, tps=100.0),
                         run_row("m7", 1, "B", 0, time_s=1000.0, tps=100.0, tflops_formula="logged")])
    table = runs_table(runs, pd.DataFrame(), pd.Series(False, index=runs.index))
    i = table.columns.index("TFLOPS/GPU")
    assert table.kinds[i] == DERIVED
    assert sorted(row[i] for row in table.cell_kinds) == ["", MEASURED]


def test_time_in_steps_needs_every_step():
    steps = pd.DataFrame({"run_id": ["a", "a", "b", "b"], "step": [1, 2, 1, 3], "step_time_s": [1.0, 2.0, 1.0, 1.0]})
    assert time_in_steps_s(steps).to_dict() == {"a": 3.0}


def test_a_best_inside_the_noise_is_a_tie(runs):
    close = runs.assign(tokens_per_s_per_gpu=runs["tokens_per_s_per_gpu"].where(runs["site"] != "B", 100.5),
                        nodes=1)
    lines = best_findings(compare_runs(close[close["model"] == "m7"], by="site"))
    assert lines and lines[0].startswith("No best m7 on 1 node") and "tie within noise" in lines[0]
    apart = runs[(runs["model"] == "m7") & (runs["nodes"] == 2)]
    lines = best_findings(compare_runs(apart, by="site"))
    assert lines[0].startswith("Best m7 on 2 nodes (2 configurations compared): B") and "ahead of the next by 16.7%" in lines[0]  # (108 - 90) / 108


def test_costs_name_their_price_source():
    assert price_text({"a": "illustrative", "b": "illustrative"}) == "Prices per node-hour: illustrative (a, b)."
    assert "source not recorded" in price_text({})


def test_findings_and_charts_say_what_they_are(runs, steps):
    report = build_report_from_frames(runs, steps, "t")
    assert {f.kind for f in report.findings} <= {MEASURED, DERIVED} and report.findings
    kinds = {c.name: c.kind for c in report.charts}
    assert kinds["time_to_target"] == DERIVED and kinds["loss"] == MEASURED


def test_compare_json_carries_kinds(cli, results_dir):
    code, out, _ = cli("compare", str(results_dir), "--format", "json")
    doc = json.loads(out)
    assert {(p["metric"], p["kind"]) for p in doc["pairs"]} >= {("time_to_target_s", DERIVED),
                                                                ("step_time_mean_s", MEASURED)}
