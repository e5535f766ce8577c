import pytest

from slurmkit.config.catalog import BUILTIN
from slurmkit.plan.memory import Layout, estimate, trainable_params


def layout(**kw):
    base = dict(workload="pretrain", launcher="nemo", parallel="fsdp", tp=1, pp=1, cp=1, dp=8, vpp=None,
                sequence_parallel=False, mbs=1, gbs=128, seq_len=4096, recompute="selective")
    return Layout(**{**base, **kw})


def test_model_state_is_16_bytes_per_param_without_sharding():
    m = BUILTIN["llama2-7b"]
    e = estimate(m, layout(dp=1), overhead_gib=0)
    state = e.weights_gib + e.grads_gib + e.optimizer_gib
    assert state == pytest.approx(16 * m.params() / 2**30, rel=1e-5)


def test_distributed_optimizer_shards_over_dp():
    m = BUILTIN["llama2-7b"]
    one, eight = estimate(m, layout(dp=1)), estimate(m, layout(dp=8))
    assert eight.optimizer_gib == pytest.approx(one.optimizer_gib / 8)
    assert eight.weights_gib == one.weights_gib


def test_tp_and_pp_split_weights():
    m = BUILTIN["llama2-70b"]
    e = estimate(m, layout(tp=4, pp=4, dp=1))
    assert e.weights_gib == pytest.approx(2 * (20 * m.layer_params() + m.vocab * m.hidden) / 4 / 2**30)


def test_fsdp_shards_everything_and_ddp_nothing():
    m = BUILTIN["llama2-7b"]
    fsdp = estimate(m, layout(launcher="torchrun", parallel="fsdp", dp=16))
    ddp = estimate(m, layout(launcher="torchrun", parallel="ddp", dp=16))
    assert fsdp.weights_gib == pytest.approx(ddp.weights_gib / 16)
    assert fsdp.optimizer_gib == pytest.approx(ddp.optimizer_gib / 16)


def test_peft_freezes_the_base():
    m = BUILTIN["llama2-70b"]
    sft = estimate(m, layout(workload="sft", tp=2, pp=4, dp=1))
    lora = estimate(m, layout(workload="lora", tp=2, pp=4, dp=1))
    assert lora.weights_gib == sft.weights_gib
    assert lora.optimizer_gib < 0.01 * sft.optimizer_gib
    assert trainable_params(m, "lora") < 0.01 * m.params()
    assert trainable_params(m, "ptuning") < trainable_params(m, "lora")


def test_recompute_and_sequence_parallel_shrink_activations():
    m = BUILTIN["llama2-70b"]
    base = dict(tp=4, pp=4, dp=2, vpp=5)
    selective = estimate(m, layout(**base)).activations_gib
    with_sp = estimate(m, layout(sequence_parallel=True, **base)).activations_gib
    full = estimate(m, layout(sequence_parallel=True, recompute="full", **base)).activations_gib
    assert full < with_sp < selective


def test_reference_cases_fit_or_not():
    m7, m70 = BUILTIN["llama2-7b"], BUILTIN["llama2-70b"]
    assert estimate(m7, layout()).total_gib < 79.6  # 7B on one XE9680
    assert estimate(m70, layout(tp=8, dp=1)).total_gib > 79.6  # 70B cannot train on one node
    assert estimate(m70, layout(tp=4, pp=4, dp=4, vpp=5, sequence_parallel=True)).total_gib < 79.6
