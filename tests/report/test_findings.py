"""Findings phrasing: node lists, noise, failures, capping."""
from __future__ import annotations

import pandas as pd

from slurmkit.report.compare import compare_runs
from slurmkit.report.findings import MAX_LINES_PER_KIND, _capped, _nodes_text, failure_findings, pair_findings


def test_node_lists_read_naturally():
    assert _nodes_text([1]) == "on 1 node" and _nodes_text([8]) == "on 8 nodes"
    assert _nodes_text([4, 1, 2]) == "on 1, 2 and 4 nodes"


def test_pair_finding_states_gain_and_noise(runs):
    assert pair_findings(compare_runs(runs)) == [
        "8 adapters vs 4 adapters (extrapolated time for the target steps): m7 faster by 16.7% on 2 nodes, "
        "within noise on 1 node."]


def test_failures_count_reasons():
    runs = pd.DataFrame({"status": ["completed", "failed", "failed", "incomplete"],
                         "failure_reason": [None, "oom", "oom", None]})
    assert failure_findings(runs) == ["3 of 4 runs did not complete: oom 2, incomplete 1."]
    assert failure_findings(runs.assign(status="completed")) == ["All 4 runs completed."]


def test_long_lists_are_capped():
    lines = [str(i) for i in range(MAX_LINES_PER_KIND + 3)]
    assert _capped(lines, "things")[-1] == "…and 3 more things (see the tables)."


def test_several_shapes_per_node_count_give_a_range_not_a_list(runs, make_run):
    extra = pd.DataFrame([make_run("m7", 2, s, 0, time_s=t, tps=v, tp=2)
                          for s, t, v in (("A", 700.0, 80.0), ("B", 665.0, 84.0))])
    c = compare_runs(pd.concat([runs, extra]))
    assert len(c.costs) == 3                                      # one row per pair, no cross product
    assert pair_findings(c) == [
        "8 adapters vs 4 adapters (extrapolated time for the target steps): m7 +5.0% to +16.7% on 2 nodes "
        "(2 configurations, 2 beyond noise), within noise on 1 node."]


def test_scaling_finding_per_model_and_variant(runs):
    from slurmkit.report.findings import scaling_findings
    assert scaling_findings(compare_runs(runs))[0] == (
        "Scaling, m7 · 4 adapters: 2 nodes reach 90% efficiency against 1 node (speed-up 1.80x "
        "for 2x the nodes, by tokens/s/GPU).")
