"""Property test: whatever a runs table holds (nulls, zeros, failures, odd mixes), the report
builds and renders without an exception."""
from __future__ import annotations

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slurmkit.report.html import render_html
from slurmkit.report.model import build_report_from_frames

maybe = lambda values: st.sampled_from([*values, None])  # noqa: E731
metric = st.one_of(st.none(), st.just(0.0), st.floats(min_value=1e-3, max_value=1e6))
row = st.fixed_dictionaries({
    "model": maybe(["m7", "m70"]), "site": maybe(["A", "B"]), "nodes": maybe([1, 2, 4]),
    "adapters_per_node": maybe([4, 8]), "cost_per_node_hour": maybe([0.0, 10.0]),
    "gpus_per_node": maybe([8]), "tp": maybe([1, 2]), "gbs": maybe([128]), "repeat": maybe([0, 1]),
    "status": st.sampled_from(["completed", "failed", "incomplete"]),
    "failure_reason": maybe(["oom", "nccl_timeout"]), "time_to_target_s": metric,
    "step_time_mean_s": metric, "tokens_per_s_per_gpu": metric, "mfu": metric, "steps": maybe([500]),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(row, max_size=12), st.booleans())
def test_any_runs_table_reports(rows, with_steps):
    runs = pd.DataFrame([{"run_id": f"r{i}", **r} for i, r in enumerate(rows)],
                        columns=["run_id", *row.wrapped_strategy.mapping] if not rows else None)
    steps = pd.DataFrame({"run_id": [f"r{i}" for i in range(len(rows)) for _ in range(3)],
                          "step": [s for _ in rows for s in (1, 20, 30)],
                          "step_time_s": [1.0, 2.0, 0.0] * len(rows), "loss": [3.0, None, 1.0] * len(rows)})
    report = build_report_from_frames(runs, steps if with_steps else steps.iloc[0:0], "fuzz")
    html = render_html(report)
    assert "<html" in html
    assert all(c.figure is not None or c.missing_reason for c in report.charts)
