"""The time of one training step: compute, pipeline bubble and the communication left exposed.

step = compute x (1 + bubble) + exposed TP + exposed CP + PP sends + exposed DP, where

- compute = tokens x causal FLOPs per token x workload factor / (GPUs x peak x efficiency);
  PEFT (LoRA, p-tuning) skips the frozen weights' gradients: forward 1/3 + input gradients 1/3
  of full training; full recompute runs the forward twice (slurmkit.perf.calibration: efficiency);
- bubble: (pp-1)/(m+pp-1) of the pipelined time, / vpp when interleaved (m micro-batches per
  data-parallel rank), so compute grows by bubble / (1 - bubble);
- TP: per layer and micro-batch 4 all-reduce equivalents (2 forward, 2 backward; +2 with full
  recompute) of the s x b x h BF16 activations, ring volume 2(t-1)/t, over the intra-node link
  (NVLink or PCIe) at LINK_EFFICIENCY, a TP_EXPOSED fraction not hidden by TP-comm overlap;
- CP: ring attention passes K and V (cp-1) times forward and twice that backward; CP_EXPOSED of it
  is not hidden behind the attention kernels;
- PP: one activation forward and one gradient backward per micro-batch and virtual stage,
  inter-node when a model replica spans nodes, PP_EXPOSED of it not hidden;
- DP: the distributed optimizer's gradient reduce-scatter plus parameter all-gather (ring volume
  2(n-1)/n of the BF16 gradients, n = dp x cp) over NVLink in one node, else over the node's
  adapters (count x rate x ADAPTER_EFFICIENCY, shared by the node's DP groups); it overlaps the
  last micro-batch's backward and the first one's forward, and at least DP_MIN_EXPOSED of it
  shows.

Every constant is named in docs/estimate.md with its source or marked an assumption.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slurmkit.perf.calibration import efficiency as calibrated_efficiency
from slurmkit.perf.flops import CAUSAL, attention_flops_per_token, flops_per_token
from slurmkit.perf.memory import GRAD_BYTES, stage_params, trainable_params

ACT_BYTES = 2  # BF16 activations on the wire (FP8 runs keep BF16 communication)
LINK_EFFICIENCY = 0.82  # NCCL ring busbw / NVLink per-direction peak (~370 of 450 GB/s; nccl-tests#212)
ADAPTER_EFFICIENCY = 0.94  # 46-48 of 50 GB/s per NDR adapter (nccl-tests#290)
NO_LINK_GBYTES_PER_S = 16.0  # assumption: no intra-node link given -> PCIe Gen4 x16 through the host
NO_ADAPTER_GBITS = 100.0  # assumption: no adapters given -> one 100 Gb/s Ethernet port per node
TP_EXPOSED = 0.3  # assumption: NeMo's TP-comm overlap hides ~70% of TP traffic on H100
CP_EXPOSED = 0.5  # assumption: half of the K/V ring exchange waits
DP_MIN_EXPOSED = 0.1  # assumption: bucketing leaves at least 10% of the DP traffic exposed
PP_EXPOSED = 0.5  # assumption: Megatron's interleaved schedule overlaps half of the stage sends
FP8_OVER_BF16 = 2.0  # dense FP8 peak / BF16 peak on Hopper, Ada and Blackwell
PEFT_FACTOR = 2 / 3  # forward + input gradients, no weight gradients of the frozen base
RECOMPUTE_FULL_FACTOR = 4 / 3  # a second forward (1/3 of a full training step)


@dataclass(frozen=True)
class StepTime:
    compute_s: float
    bubble_s: float
    tp_s: float
    cp_s: float
    pp_s: float
    dp_s: float  # the whole DP collective time
    dp_exposed_s: float
    efficiency: float
    calibrated: bool

    @property
    def total_s(self) -> float:
        return self.compute_s + self.bubble_s + self.tp_s + self.cp_s + self.pp_s + self.dp_exposed_s


def _i(p: dict[str, Any], key: str, default: int = 1) -> int:
    value = p.get(key)
    return int(value) if value else default


def link_gbytes_per_s(site: dict[str, Any] | None) -> float:
    """Achievable intra-node GPU-to-GPU bandwidth per direction."""
    gpu = (site or {}).get("gpu") or {}
    peak = float(gpu.get("link_gbytes_per_s") or 0.0)
    return peak * LINK_EFFICIENCY if peak > 0 else NO_LINK_GBYTES_PER_S


def node_network_gbytes_per_s(p: dict[str, Any]) -> float:
    """Achievable inter-node bandwidth of one node: adapters x rate x efficiency."""
    count, rate = _i(p, "adapters_per_node", 0), float(p.get("adapter_rate_gbps") or 0.0)
    if count <= 0 or rate <= 0:
        return NO_ADAPTER_GBITS / 8
    return count * rate / 8 * ADAPTER_EFFICIENCY


def compute_flops(p: dict[str, Any]) -> tuple[float, float]:
    """(matmul FLOPs, attention score/context FLOPs) the GPUs execute in one step: causal
    attention, PEFT and full recompute counted."""
    factor = PEFT_FACTOR if p.get("workload") in ("lora", "ptuning") else 1.0
    if p.get("recompute") == "full":
        factor += 1 / 3  # the second forward
    tokens = float(p["gbs"]) * p["seq_len"] * factor
    attention = attention_flops_per_token(p, CAUSAL)
    return tokens * (flops_per_token(p, CAUSAL) - attention), tokens * attention


def step_time(p: dict[str, Any], site: dict[str, Any] | None = None,
              efficiency: float | None = None) -> StepTime:
    """The modelled step time of a job's parameters on a site (see the module docstring)."""
    tp, pp, cp, dp = _i(p, "tp"), _i(p, "pp"), _i(p, "cp"), _i(p, "dp")
    vpp, mbs, gpn = _i(p, "vpp"), _i(p, "mbs"), _i(p, "gpus_per_node", 8)
    gpus = tp * pp * cp * dp
    eff, calibrated = (efficiency, True) if efficiency else calibrated_efficiency(p.get("gpu_model"), p.get("precision"))
    peak = float(p.get("gpu_peak_tflops") or 0.0) * 1e12 or 1e12
    matmul, attention = compute_flops(p)
    # FP8 recipes run the attention kernels in BF16, at half the FP8 peak
    attention_peak = peak / FP8_OVER_BF16 if str(p.get("precision")).lower() == "fp8" else peak
    compute = (matmul / peak + attention / attention_peak) / (gpus * eff)
    micro = max(1, p["gbs"] // (mbs * dp))
    bubble_share = (pp - 1) / (micro + pp - 1) / vpp if pp > 1 else 0.0
    bubble = compute * bubble_share / (1 - bubble_share)
    link, network = link_gbytes_per_s(site) * 1e9, node_network_gbytes_per_s(p) * 1e9
    activation = p["seq_len"] / cp * mbs * p["model_hidden"] * ACT_BYTES
    layers = p["model_layers"] / pp
    tp_s = 0.0
    if tp > 1:
        collectives = 6 if p.get("recompute") == "full" else 4
        tp_bw = link if tp <= gpn else network / gpn
        tp_s = TP_EXPOSED * layers * micro * collectives * 2 * (tp - 1) / tp * activation / tp_bw
    cp_s = 0.0
    if cp > 1:
        kv = activation * (p.get("model_kv_heads") or p["model_heads"]) / p["model_heads"] * 2 / tp
        cp_bw = link if tp * cp <= gpn else network / gpn
        cp_s = CP_EXPOSED * layers * micro * 3 * (cp - 1) * kv / cp_bw
    pp_s = 0.0
    if pp > 1:
        pp_bw = link if tp * cp * pp <= gpn else network / gpn
        pp_s = PP_EXPOSED * 2 * micro * vpp * activation / tp / pp_bw
    dp_s = _dp_seconds(p, dp * cp, gpn, link, network)
    exposed = max(DP_MIN_EXPOSED * dp_s, dp_s - compute / micro) if dp_s else 0.0
    return StepTime(compute, bubble, tp_s, cp_s, pp_s, dp_s, exposed, eff, calibrated)


def _dp_seconds(p: dict[str, Any], n: int, gpn: int, link: float, network: float) -> float:
    """Gradient reduce-scatter + parameter all-gather over the DP x CP group of n ranks."""
    if n <= 1:
        return 0.0
    if p.get("workload") in ("lora", "ptuning"):
        grad_bytes = trainable_params(p) * GRAD_BYTES / _i(p, "tp")
    else:
        grad_bytes = stage_params(p) * GRAD_BYTES
    volume = 2 * (n - 1) / n * grad_bytes
    if _i(p, "nodes") <= 1:
        return volume / link
    # every GPU of the node reduces its own shard; members of one group inside a node share the
    # node's traffic, so the node sends gpn / members_in_node shards' worth over its adapters
    members_in_node = max(1, gpn // (_i(p, "tp") * _i(p, "pp")))
    return max(volume / link, volume * gpn / members_in_node / network)
