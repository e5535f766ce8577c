"""Per-GPU memory estimate of a training job, to refuse jobs that cannot fit before submitting.

Model state follows the mixed-precision Adam accounting (ZeRO paper): 2 bytes of BF16 weights,
2 of gradients, 12 of optimizer state (FP32 master weights and two moments) per parameter.
NeMo and Megatron shard the weights and gradients over TP x PP and, with the distributed
optimizer, the optimizer state also over DP; torchrun FSDP shards everything over all ranks,
DDP nothing. PEFT (LoRA, p-tuning) keeps the base frozen in BF16 and trains a small set.
Activations use the Megatron estimate (Korthikanti et al. 2022) with flash attention, so the
s^2 attention term is gone: 34*s*b*h bytes per layer, divided by TP with sequence parallelism.
"""
from __future__ import annotations

from dataclasses import dataclass

from slurmkit.config.catalog import ModelArch

# One accounting with the performance model (slurmkit.perf.memory, which works on a plan's flat
# parameters where this works on the config's typed model): its byte counts and estimate type.
from slurmkit.perf.memory import (
    GIB,
    GRAD_BYTES,
    LORA_RANK,
    OPTIMIZER_BYTES,
    PTUNING_HIDDEN,
    PTUNING_TOKENS,
    WEIGHT_BYTES,
    MemoryEstimate,
)

__all__ = ["Layout", "MemoryEstimate", "estimate", "trainable_params"]


@dataclass(frozen=True)
class Layout:
    """What the estimate needs to know about a job."""

    workload: str
    launcher: str
    parallel: str  # ddp | fsdp (torchrun only)
    tp: int
    pp: int
    cp: int
    dp: int
    vpp: int | None
    sequence_parallel: bool
    mbs: int
    gbs: int
    seq_len: int
    recompute: str  # none | selective | full


def trainable_params(model: ModelArch, workload: str) -> int:
    """Parameters the optimizer updates."""
    if workload == "lora":
        qkv_out = model.hidden + 2 * model.kv_heads * model.head_dim
        return model.layers * LORA_RANK * (model.hidden + qkv_out)
    if workload == "ptuning":
        return PTUNING_TOKENS * model.hidden + 2 * model.hidden * PTUNING_HIDDEN
    return model.params()


def estimate(model: ModelArch, job: Layout, overhead_gib: float = 3.0) -> MemoryEstimate:
    """Estimate the peak memory of the busiest GPU (the first pipeline stage)."""
    if job.launcher == "torchrun":
        shard = job.tp * job.pp * job.cp * job.dp if job.parallel == "fsdp" else 1
        params_per_gpu: float = model.params() / shard
        optimizer_split = 1
    else:
        params_per_gpu = _stage_params(model, job.tp, job.pp)
        optimizer_split = job.dp * job.cp  # distributed optimizer
    grads: float
    optimizer: float
    if job.workload in ("lora", "ptuning"):
        trained = trainable_params(model, job.workload)
        grads, optimizer = trained * GRAD_BYTES, trained * OPTIMIZER_BYTES
    else:
        grads = params_per_gpu * GRAD_BYTES
        optimizer = params_per_gpu * OPTIMIZER_BYTES / optimizer_split
    return MemoryEstimate(
        weights_gib=params_per_gpu * WEIGHT_BYTES / GIB,
        grads_gib=grads / GIB,
        optimizer_gib=optimizer / GIB,
        activations_gib=_activation_bytes(model, job) / GIB,
        overhead_gib=overhead_gib,
    )


def _stage_params(model: ModelArch, tp: int, pp: int) -> float:
    """Parameters on one GPU of the first stage: its layers and the embedding, split over TP."""
    layers = -(-model.layers // pp)
    embedding = model.vocab * model.hidden * (2 if pp == 1 and not model.tied_embeddings else 1)
    return (layers * model.layer_params() + embedding) / tp


def _activation_bytes(model: ModelArch, job: Layout) -> float:
    s, b, h = job.seq_len / job.cp, job.mbs, model.hidden
    if job.recompute == "full":
        per_layer = 2 * s * b * h / (job.tp if job.sequence_parallel else 1)  # layer inputs only
    elif job.sequence_parallel:
        per_layer = 34 * s * b * h / job.tp
    else:
        per_layer = s * b * h * (10 + 24 / job.tp)
    if job.launcher == "torchrun":
        return model.layers * per_layer + s * b * model.vocab * 4
    # 1F1B: the first stage holds up to PP micro-batches; interleaving adds a fraction more
    in_flight: float = min(job.pp, max(1, job.gbs // (job.mbs * job.dp)))
    if job.vpp and job.pp > 1:
        in_flight *= 1 + (job.pp - 1) / (job.pp * job.vpp)
    logits = s * b * model.vocab * 4 / job.tp if job.pp == 1 else 0.0  # FP32 logits on the last stage
    return model.layers / job.pp * in_flight * per_layer + logits
