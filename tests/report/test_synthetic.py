"""The demo's synthetic log generator: labelled, deterministic, modelled on published numbers."""
from __future__ import annotations

import json

import pytest

from slurmkit.samples.synthetic import allreduce_s, model_step_time_s, synthetic_log

LLAMA2_7B = dict(model="llama2-7b", model_params=6_738_415_616, model_layers=32, model_hidden=4096,
                 model_ffn_hidden=11008, model_heads=32, model_kv_heads=32, model_vocab=32000,
                 seq_len=4096, gbs=128, tp=1, pp=1, gpus_per_node=8, gpu_peak_tflops=989.0,
                 adapter_rate_gbps=400.0, steps=500, warmup_steps=10)


def params(nodes: int, adapters: int = 8) -> dict:
    return {**LLAMA2_7B, "nodes": nodes, "gpus": 8 * nodes, "dp": 8 * nodes, "adapters_per_node": adapters}


def test_one_node_matches_the_published_bf16_throughput():
    # 128 x 4096 tokens x 46.1 GFLOP/token / (8 x 989 TFLOPS x 51.7% MFU) = 5.90 s, as NeMo's 511 TFLOPS
    step = model_step_time_s(params(1))
    assert step == pytest.approx(128 * 4096 / (8 * 11_088), rel=0.01)


def test_fewer_adapters_slow_the_cross_node_all_reduce_only():
    assert allreduce_s(params(1, 4)) == allreduce_s(params(1, 8))          # NVLink inside a node
    assert allreduce_s(params(8, 4)) == pytest.approx(2 * allreduce_s(params(8, 8)))
    assert model_step_time_s(params(8, 4)) > model_step_time_s(params(8, 8))


def test_log_is_labelled_deterministic_and_carries_provenance():
    text = synthetic_log("run-a", params(2), 3)
    lines = text.splitlines()
    assert lines[0].startswith("# SYNTHETIC LOG")
    assert lines[1].startswith("SLURMKIT_PROVENANCE ")
    provenance = json.loads(lines[1].split(" ", 1)[1])
    assert provenance["job_id"] == "synthetic-3" and provenance["params"]["nodes"] == 2
    assert lines[2].startswith("Training epoch 0, iteration 0/499 | ")
    assert len([line for line in lines if line.startswith("Training epoch")]) == 500
    assert text == synthetic_log("run-a", params(2), 3)
    assert text != synthetic_log("run-b", params(2), 3)
