"""Per-GPU memory of a training job, from the plan's flat parameters.

The same accounting as the estimate behind ``validate`` (slurmkit.plan.memory, which works on the
config's typed model): mixed-precision Adam (ZeRO paper) at 2 bytes of BF16 weights, 2 of
gradients and 12 of optimizer state per parameter; Megatron/NeMo split weights and gradients over
TP x PP and, with the distributed optimizer, the optimizer state over DP x CP; torchrun FSDP
shards everything, DDP nothing; LoRA and p-tuning train a small set over a frozen BF16 base.
Activations follow Korthikanti et al. 2022 with flash attention (34 s b h bytes per layer, / TP
with sequence parallelism; the layer inputs only under full recompute). tests/perf checks that
both give the same numbers for every catalogue model over a grid of layouts.

The architecture details the flat parameters do not carry are inferred: a gated MLP (ffn != 4 h)
means Llama-style layers (RMSNorm, no biases), otherwise GPT-style (LayerNorm, biases); the
embedding is tied when the parameter count leaves room for one V x h table only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GIB = 1024**3
WEIGHT_BYTES = 2
GRAD_BYTES = 2
OPTIMIZER_BYTES = 12
CHECKPOINT_BYTES = WEIGHT_BYTES + OPTIMIZER_BYTES  # weights + optimizer state, no gradients
LORA_RANK = 32  # NeMo 1.x default adapter_dim, on attention_qkv
PTUNING_HIDDEN = 2048  # NeMo 1.x p-tuning prompt-encoder MLP width
PTUNING_TOKENS = 10
DEFAULT_RESERVED_GIB = 3.0  # CUDA context and NCCL buffers when the site does not say


@dataclass(frozen=True)
class MemoryEstimate:
    weights_gib: float
    grads_gib: float
    optimizer_gib: float
    activations_gib: float
    overhead_gib: float

    @property
    def total_gib(self) -> float:
        return (self.weights_gib + self.grads_gib + self.optimizer_gib + self.activations_gib
                + self.overhead_gib)

    def describe(self) -> str:
        return (f"{self.total_gib:.1f} GiB = weights {self.weights_gib:.1f} + grads {self.grads_gib:.1f}"
                f" + optimizer {self.optimizer_gib:.1f} + activations {self.activations_gib:.1f}"
                f" + overhead {self.overhead_gib:.1f}")


def layer_params(p: dict[str, Any]) -> int:
    """Parameters of one transformer layer (attention, MLP, norms, biases)."""
    h, ffn = p["model_hidden"], p["model_ffn_hidden"]
    kv = p["model_kv_heads"] * (h // p["model_heads"])
    gated = ffn != 4 * h
    attention = 2 * h * h + 2 * h * kv
    mlp = (3 if gated else 2) * h * ffn
    norms = 2 * h if gated else 4 * h
    biases = 0 if gated else h + 2 * kv + h + ffn + h
    return attention + mlp + norms + biases


def _tied(p: dict[str, Any]) -> bool:
    embedding = p["model_params"] - p["model_layers"] * layer_params(p)
    return embedding < 1.5 * p["model_vocab"] * p["model_hidden"]


def trainable_params(p: dict[str, Any]) -> int:
    """Parameters the optimizer updates."""
    workload, h = p.get("workload"), p["model_hidden"]
    if workload == "lora":
        qkv_out = h + 2 * p["model_kv_heads"] * (h // p["model_heads"])
        return int(p["model_layers"] * LORA_RANK * (h + qkv_out))
    if workload == "ptuning":
        return PTUNING_TOKENS * h + 2 * h * PTUNING_HIDDEN
    return int(p["model_params"])


def stage_params(p: dict[str, Any]) -> float:
    """Parameters on one GPU of the first pipeline stage: its layers and the embedding, / TP."""
    tp, pp = p["tp"], p["pp"]
    layers = -(-p["model_layers"] // pp)
    embedding = p["model_vocab"] * p["model_hidden"] * (2 if pp == 1 and not _tied(p) else 1)
    return (layers * layer_params(p) + embedding) / tp


def memory_estimate(p: dict[str, Any], reserved_gib: float = DEFAULT_RESERVED_GIB) -> MemoryEstimate:
    """Peak memory of the busiest GPU (the first pipeline stage)."""
    if p.get("launcher") == "torchrun":
        world = p["tp"] * p["pp"] * p["cp"] * p["dp"]
        per_gpu: float = p["model_params"] / (world if p.get("parallel") == "fsdp" else 1)
        optimizer_split = 1
    else:
        per_gpu = stage_params(p)
        optimizer_split = p["dp"] * p["cp"]  # distributed optimizer
    if p.get("workload") in ("lora", "ptuning"):
        trained = trainable_params(p)
        grads, optimizer = float(trained * GRAD_BYTES), float(trained * OPTIMIZER_BYTES)
    else:
        grads, optimizer = per_gpu * GRAD_BYTES, per_gpu * OPTIMIZER_BYTES / optimizer_split
    return MemoryEstimate(per_gpu * WEIGHT_BYTES / GIB, grads / GIB, optimizer / GIB,
                          _activation_bytes(p) / GIB, reserved_gib)


def _activation_bytes(p: dict[str, Any]) -> float:
    tp, pp, sp = p["tp"], p["pp"], bool(p.get("sequence_parallel"))
    s, b, h, vocab = p["seq_len"] / p["cp"], p["mbs"], p["model_hidden"], p["model_vocab"]
    if p.get("recompute") == "full":
        per_layer = 2 * s * b * h / (tp if sp else 1)  # layer inputs only
    elif sp:
        per_layer = 34 * s * b * h / tp
    else:
        per_layer = s * b * h * (10 + 24 / tp)
    if p.get("launcher") == "torchrun":
        return p["model_layers"] * per_layer + s * b * vocab * 4
    # 1F1B: the first stage holds up to PP micro-batches; interleaving adds a fraction more
    in_flight: float = min(pp, max(1, p["gbs"] // (p["mbs"] * p["dp"])))
    if p.get("vpp") and pp > 1:
        in_flight *= 1 + (pp - 1) / (pp * p["vpp"])
    logits = s * b * vocab * 4 / tp if pp == 1 else 0.0  # FP32 logits on the last stage
    return p["model_layers"] / pp * in_flight * per_layer + logits
