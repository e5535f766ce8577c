"""compare: exact numbers on the hand-built results set of conftest.py."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from slurmkit.errors import ResultsError
from slurmkit.report.compare import (
    METRICS,
    aggregate_repeats,
    choose_by,
    compare_runs,
    noise_threshold_pct,
    normalize_runs,
    pair_key_columns,
    verdict,
)


def _pair(c, model, nodes, metric):
    rows = c.pairs[(c.pairs["model"] == model) & (c.pairs["nodes"] == nodes) & (c.pairs["metric"] == metric)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_repeats_aggregate_to_mean_std_count_of_completed_runs(runs):
    configs = aggregate_repeats(normalize_runs(runs)[0])
    row = configs[(configs["model"] == "m7") & (configs["nodes"] == 1) & (configs["site"] == "A")].iloc[0]
    assert row["time_to_target_s_mean"] == 1010.0
    assert row["time_to_target_s_std"] == pytest.approx(math.sqrt(200.0))  # sample std of 1000, 1020
    assert row["time_to_target_s_n"] == 2
    failed_cfg = configs[(configs["model"] == "m7") & (configs["nodes"] == 2) & (configs["site"] == "A")].iloc[0]
    assert (failed_cfg["n_runs"], failed_cfg["n_completed"]) == (3, 2)
    assert failed_cfg["time_to_target_s_mean"] == 600.0
    # The log without parameters stays alone instead of swallowing other anonymous runs.
    assert configs["config_id"].str.startswith("run:").sum() == 1
    assert len(configs) == 6


def test_auto_by_finds_the_adapter_count_and_pairs_by_all_other_fields(runs):
    c = compare_runs(runs)
    assert c.by == "adapters_per_node" and c.baseline == 4
    assert sorted(set(zip(c.pairs["model"], c.pairs["nodes"]))) == [("m7", 1), ("m7", 2)]
    assert "site" not in pair_key_columns("adapters_per_node")      # follows the compared field
    assert "cost_per_node_hour" not in pair_key_columns("site")
    assert {"model", "nodes", "tp", "gbs", "precision"} <= set(pair_key_columns("site"))


def test_pair_numbers_delta_ratio_gain_and_verdict(runs):
    c = compare_runs(runs)
    two = _pair(c, "m7", 2, "time_to_target_s")
    assert (two["base_mean"], two["cand_mean"], two["delta"]) == (600.0, 500.0, -100.0)
    assert two["ratio"] == pytest.approx(500 / 600)
    assert two["gain_pct"] == pytest.approx(100 / 6)
    assert two["noise_basis"] == "repeats" and two["noise_pct"] == 1.0  # zero spread: the stated floor
    assert two["verdict"] == "faster by 16.7%"
    tps = _pair(c, "m7", 2, "tokens_per_s_per_gpu")
    assert tps["gain_pct"] == pytest.approx(20.0) and tps["verdict"] == "faster by 20.0%"


def test_within_noise_is_decided_from_repeat_spread(runs):
    c = compare_runs(runs)
    one = _pair(c, "m7", 1, "time_to_target_s")
    assert one["change_pct"] == pytest.approx(-1000 / 1010)          # -0.99%
    # two standard errors of the difference: 2 * sqrt(200/2 + 200/2) / 1010
    assert one["noise_pct"] == pytest.approx(200 * math.sqrt(200.0) / 1010)
    assert bool(one["within_noise"]) and one["verdict"] == "within noise (±2.8%)"


def test_noise_threshold_without_repeats_is_the_stated_one():
    assert noise_threshold_pct(100.0, math.nan, 1, math.nan, 1, 1.5) == (1.5, "threshold")
    assert noise_threshold_pct(100.0, 2.0, 2, 2.0, 2, 1.0) == (pytest.approx(4.0), "repeats")


def test_verdict_words_follow_metric_direction():
    assert verdict(METRICS["step_time_mean_s"], 3.1, False, 1.0) == "faster by 3.1%"
    assert verdict(METRICS["step_time_mean_s"], -3.1, False, 1.0) == "slower by 3.1%"
    assert verdict(METRICS["mfu"], 2.0, False, 1.0) == "higher by 2.0%"
    assert verdict(METRICS["cost_to_target_usd"], -5.0, False, 1.0) == "dearer by 5.0%"


def test_summary_per_model(runs):
    s = compare_runs(runs).summary
    row = s[(s["model"] == "m7") & (s["metric"] == "time_to_target_s")].iloc[0]
    assert row["n_pairs"] == 2 and row["n_within_noise"] == 1
    assert row["gain_max_pct"] == pytest.approx(100 / 6)
    assert row["gain_mean_pct"] == pytest.approx((100 / 6 + 1000 / 1010) / 2)


def test_scaling_against_the_smallest_node_count_of_each_series(runs):
    sc = compare_runs(runs).scaling
    a = sc[sc["site"] == "A"].sort_values("nodes")
    assert list(a["nodes"]) == [1, 2]
    assert list(a["efficiency"]) == pytest.approx([1.0, 0.9])
    assert list(a["speedup"]) == pytest.approx([1.0, 1.8])
    assert list(a["tokens_per_s"]) == pytest.approx([800.0, 1440.0])
    b = sc[sc["site"] == "B"].sort_values("nodes")
    assert b["efficiency"].iloc[1] == pytest.approx(108 / 101)
    assert set(sc["model"]) == {"m7"}                      # m70 has one node count: no series


def test_best_configuration_per_model_and_node_count(runs):
    best = compare_runs(runs).best
    two = best[(best["model"] == "m7") & (best["nodes"] == 2)].iloc[0]
    assert (two["site"], two["value"], two["n_configs"]) == ("B", 108.0, 2)
    assert best[(best["model"] == "m70")].iloc[0]["n_configs"] == 1


def test_cost_benefit_from_cost_per_node_hour(runs):
    costs = compare_runs(runs).costs.sort_values("nodes")
    two = costs.iloc[1]
    assert two["base_cost_usd"] == pytest.approx(600 / 3600 * 2 * 10)
    assert two["cand_cost_usd"] == pytest.approx(500 / 3600 * 2 * 15)
    assert two["time_saved_s"] == 100.0
    assert two["saved_s_per_extra_usd"] == pytest.approx(100 / (500 / 3600 * 30 - 600 / 3600 * 20))
    assert two["assessment"] == "100 s saved for $0.83 more" and not two["within_noise"]
    assert bool(costs.iloc[0]["within_noise"])


def test_explicit_by_site_and_baseline(runs):
    c = compare_runs(runs, by="site", baseline="B", metrics=("tokens_per_s_per_gpu",))
    assert c.by == "site" and c.baseline == "B"
    assert set(c.pairs["metric"]) == {"tokens_per_s_per_gpu"}
    assert _pair(c, "m7", 2, "tokens_per_s_per_gpu")["gain_pct"] == pytest.approx(-100 / 6)


def test_no_pairs_is_a_note_not_an_error(runs):
    one_site = runs[runs["site"] != "B"]
    c = compare_runs(one_site)
    assert c.by is None and c.pairs.empty and c.costs.empty
    assert c.notes[-1].startswith("no runs pair up")
    assert not c.scaling.empty                                   # still scales


def test_all_failed_and_missing_columns(runs):
    failed = runs.assign(status="failed")
    c = compare_runs(failed)
    assert c.pairs.empty and c.scaling.empty and c.best.empty
    old = runs.drop(columns=["mfu", "adapters_per_node", "cost_per_node_hour"])
    c = compare_runs(old)
    assert c.by == "site"
    assert "mfu" in c.notes[0] and "older schema" in c.notes[0]


def test_ambiguous_keys_are_left_out(runs, make_run):
    # a second site with 8 adapters: (m7, 1 node, 8 adapters) is no longer one configuration
    extra = pd.DataFrame([make_run("m7", 1, "C", 0, time_s=900.0, tps=110.0, adapters_per_node=8)])
    c = compare_runs(pd.concat([runs, extra]), by="adapters_per_node")
    assert set(c.pairs["nodes"]) == {2}


def test_bad_arguments_are_clear_errors(runs):
    with pytest.raises(ResultsError, match="unknown metric 'speed'"):
        compare_runs(runs, metrics=("speed",))
    with pytest.raises(ResultsError, match="--by 'colour' is not a parameter field"):
        compare_runs(runs, by="colour")
    with pytest.raises(ResultsError, match="--baseline '3' is not a value of adapters_per_node"):
        compare_runs(runs, by="adapters_per_node", baseline="3")
    with pytest.raises(ResultsError, match="runs table has no status column"):
        compare_runs(pd.DataFrame({"run_id": ["x"]}))


def test_choose_by_none_when_nothing_varies(runs):
    configs = aggregate_repeats(normalize_runs(runs[runs["site"] == "A"])[0])
    assert choose_by(configs) is None


def test_baseline_given_as_text_matches_numbers(runs):
    c = compare_runs(runs, by="adapters_per_node", baseline="8")
    assert c.baseline == 8 and set(c.pairs["candidate"]) == {4}


@pytest.mark.parametrize("field, values", [("parallel", ["ddp", "fsdp"]), ("recompute", ["selective", "full"]),
                                           ("lr", [3e-4, 1e-4]), ("checkpoint_interval", [None, 100])])
def test_runs_that_differ_in_a_launcher_knob_are_separate_configurations(make_run, field, values):
    rows = [make_run("m7", 1, "A", r, time_s=1000.0, tps=100.0 + r, **{field: values[r % 2]}) for r in range(4)]
    configs = aggregate_repeats(normalize_runs(pd.DataFrame(rows))[0])
    assert len(configs) == 2 and set(configs["n_runs"]) == {2}
    assert sorted(configs["tokens_per_s_per_gpu_mean"]) == [101.0, 102.0]  # (100, 102) and (101, 103)
    assert field in pair_key_columns("adapters_per_node")


def test_runs_in_different_containers_are_never_pooled(make_run):
    # the same shape on the same site, measured in two container releases: two configurations
    rows = [make_run("m7", 1, "A", r, time_s=t, tps=v, container_image=image, software=label)
            for r, (t, v, image, label) in enumerate([
                (1000.0, 100.0, "nvcr.io/nvidia/nemo:24.05", "NeMo 24.05"),
                (1000.0, 100.0, "nvcr.io/nvidia/nemo:24.05", "NeMo 24.05"),
                (800.0, 125.0, "nvcr.io/nvidia/nemo:24.07", "NeMo 24.07")])]
    configs = aggregate_repeats(normalize_runs(pd.DataFrame(rows))[0])
    by_image = configs.set_index("container_image")
    assert len(configs) == 2
    assert by_image.loc["nvcr.io/nvidia/nemo:24.05", "tokens_per_s_per_gpu_n"] == 2
    assert by_image.loc["nvcr.io/nvidia/nemo:24.07", "tokens_per_s_per_gpu_mean"] == 125.0
    assert by_image.loc["nvcr.io/nvidia/nemo:24.07", "software"] == "NeMo 24.07"
