"""The performance model's parts: the memory estimate agrees with validate's, the step model's
terms respond to what they model, and the estimate is labelled derived."""
from __future__ import annotations

import itertools

import pytest

from slurmkit.config.catalog import BUILTIN
from slurmkit.perf import estimate, flops_per_token, memory_estimate, nodes_needed, step_time
from slurmkit.perf.flops import CAUSAL
from slurmkit.plan.memory import Layout
from slurmkit.plan.memory import estimate as validate_estimate
from tests.perf import published as P


def params(model: str = "llama2-70b", **kw) -> dict:
    base = P.params(model, "pretrain", "bf16", 4, {"tp": 4, "pp": 4, "vpp": 5}, 128, 4096, P.site())
    return {**base, **kw}


@pytest.mark.parametrize("model", sorted(BUILTIN))
def test_memory_is_validates_estimate_for_every_catalogue_model(model):
    m = BUILTIN[model]
    grid = itertools.product(("pretrain", "lora", "ptuning"), ("nemo", "torchrun"), ("fsdp", "ddp"), (1, 2),
                             (1, 4), (1, 2), (None, 4), (False, True), ("selective", "full"))
    for workload, launcher, parallel, tp, pp, cp, vpp, sp, recompute in grid:
        layout = Layout(workload, launcher, parallel, tp, pp, cp, 2, vpp, sp, 1, 64, 2048, recompute)
        p = {**params(model), "workload": workload, "launcher": launcher, "parallel": parallel, "tp": tp,
             "pp": pp, "cp": cp, "dp": 2, "vpp": vpp, "sequence_parallel": sp, "mbs": 1, "gbs": 64,
             "seq_len": 2048, "recompute": recompute}
        mine, theirs = memory_estimate(p, 3.0), validate_estimate(m, layout, 3.0)
        assert mine.total_gib == pytest.approx(theirs.total_gib, rel=1e-9), (workload, launcher, tp, pp)


def test_the_causal_formula_halves_only_the_attention_score_term():
    p = params("llama2-7b")
    full, causal = flops_per_token(p), flops_per_token(p, CAUSAL)
    L, h, s = p["model_layers"], p["model_hidden"], p["seq_len"]
    assert full - causal == pytest.approx(6 * L * h * s)
    assert full == pytest.approx(46.1e9, rel=0.005)  # research reference-results.md section 6.4


def test_the_bubble_follows_pp_minus_one_over_m_plus_pp_minus_one_and_shrinks_with_vpp():
    plain = step_time(params(vpp=None, gbs=32, dp=1))  # m = 32 micro-batches
    assert plain.bubble_s / (plain.compute_s + plain.bubble_s) == pytest.approx(3 / 35)
    interleaved = step_time(params(vpp=5, gbs=32, dp=1))
    assert interleaved.bubble_s / (interleaved.compute_s + interleaved.bubble_s) == pytest.approx(3 / 35 / 5)


def test_fewer_adapters_slow_only_the_inter_node_collectives():
    p = params("llama2-7b", tp=1, pp=1, vpp=None, nodes=8, gpus=64, dp=64, gbs=64)
    site = P.site()
    eight, four = step_time({**p, "adapters_per_node": 8}, site), step_time({**p, "adapters_per_node": 4}, site)
    # 8 NDR adapters (376 GB/s) just outrun NVLink's ring (369 GB/s), which then bounds; 4 do not
    assert 1.9 < four.dp_s / eight.dp_s < 2.1
    assert four.compute_s == eight.compute_s and four.total_s > eight.total_s
    one_node = {**p, "nodes": 1, "gpus": 8, "dp": 8}
    assert step_time({**one_node, "adapters_per_node": 4}, site).total_s == step_time(one_node, site).total_s


def test_the_estimate_reports_fit_cost_and_checkpoint():
    site = {**P.site(), "cost_per_node_hour": 10.0}
    e = estimate(params(steps=100, checkpoint_interval=50), site)
    assert e.as_dict()["kind"] == "derived"
    assert e.fits is (e.memory.total_gib <= P.site()["gpu"]["mem_gib"])
    assert e.checkpoints == 2 and e.checkpoint_gb == pytest.approx(BUILTIN["llama2-70b"].params() * 14 / 1e9)
    assert e.cost == pytest.approx(10.0 * 4 * e.run_s / 3600)
    assert e.run_s == pytest.approx(100 * e.step_time_s + 2 * e.checkpoint_s)


def test_sizing_finds_the_fewest_nodes_for_a_target():
    p = params(steps=1000)
    one_hour = nodes_needed(p, P.site(), target_hours=1.0)
    assert one_hour.nodes is not None and one_hour.hours is not None and one_hour.hours <= 1.0
    fewer = {**p, "nodes": one_hour.nodes // 2, "gpus": one_hour.nodes // 2 * 8, "dp": one_hour.nodes // 2 // 2}
    if fewer["dp"] and p["gbs"] % fewer["dp"] == 0:
        assert 1000 * estimate(fewer, P.site()).step_time_s / 3600 > 1.0
    assert nodes_needed(p, P.site(), target_hours=1e-6).nodes is None
