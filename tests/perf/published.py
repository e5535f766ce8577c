"""The published shapes of slurmkit/data/reference_results.csv as model inputs, for the calibration
test: each shape's parameters (the plan's flat keys) on a DGX H100-class site, and its published
value. Layout fields a table leaves out are filled from the sources named in ``LAYOUT_GAPS``."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slurmkit.config.catalog import BUILTIN
from slurmkit.config.site import load_site

ROOT = Path(__file__).resolve().parents[2]
CSV = ROOT / "slurmkit" / "data" / "reference_results.csv"
METRIC_ORDER = ("tokens_per_s_per_gpu", "step_time_s", "tflops_per_gpu")

# (source_id, model) -> layout the table does not print, and where it comes from
LAYOUT_GAPS: dict[tuple[str, str], dict[str, Any]] = {
    # NeMo-Framework-Launcher llama2 configs of early 2024 (research reference-results.md 2.4)
    ("nemo-2024-02-bf16", "llama2-7b"): {"tp": 1, "pp": 1, "cp": 1, "mbs": 1},
    ("nemo-2024-02-bf16", "llama2-13b"): {"tp": 1, "pp": 4, "vpp": 10, "cp": 1, "mbs": 1},
    ("nemo-2024-02-bf16", "llama2-70b"): {"tp": 4, "pp": 4, "vpp": 20, "cp": 1, "mbs": 1},
    # 24.05 omits CP and VP: the 24.07 table's values for the same model and GPU count
    ("nemo-24.05-fp8", "llama2-13b"): {"vpp": 10, "cp": 1},
    ("nemo-24.05-fp8", "llama2-70b"): {"vpp": 20, "cp": 1},
    ("nemo-24.05-fp8", "llama3-8b"): {"cp": 2},
    ("nemo-24.05-fp8", "llama3-70b"): {"vpp": 5, "cp": 2},
    # fine-tuning tables print TP and PP only: ASSUMED the model's pretraining VP (not published)
    ("nemo-24.07-fp8-ft", "llama2-13b"): {"vpp": 10},
    ("nemo-24.05-fp8-ft", "llama2-13b"): {"vpp": 10},
    ("nemo-24.07-fp8-ft", "llama2-70b"): {"vpp": 20},
    ("nemo-24.05-fp8-ft", "llama2-70b"): {"vpp": 20},
}
# MLPerf Training v4.1, Dell XE9680 Llama 2 70B LoRA (mlcommons/training_results_v4.1 Dell
# results/*/llama2_70b_lora/result_0.txt): global_batch_size 8 and gradient_accumulation_steps
# 4/4/2/1 on 1/2/4/8 nodes, so DP x MBS = 2/2/4/8; the model-parallel 4 (1 node) and 8 (more) are
# read as TP4 and TP4 x CP2 (NVIDIA's tp4pp1cp2 LoRA configs; an assumption); sequence 8192 FP8.
MLPERF_LAYOUT = {1: {"tp": 4, "cp": 1, "dp": 2}, 2: {"tp": 4, "cp": 2, "dp": 2},
                 4: {"tp": 4, "cp": 2, "dp": 4}, 8: {"tp": 4, "cp": 2, "dp": 8}}
MLPERF_SEQ_LEN, MLPERF_GBS = 8192, 8
# evaluation: 173 samples every 384 training samples from sample 1536 on (the same logs)
MLPERF_EVAL = {"samples": 173, "every": 384, "first": 1536}


@dataclass(frozen=True)
class Shape:
    source_id: str
    model: str
    task: str
    precision: str
    nodes: int
    metric: str
    published: float
    params: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.source_id, self.model, self.task, self.nodes)

    @property
    def label(self) -> str:
        return f"{self.source_id} {self.model} {self.task} {self.precision} {self.nodes}n"


def site() -> dict[str, Any]:
    """The DGX H100-class site the published numbers ran on (8x H100 SXM, NVLink, 8x NDR)."""
    return load_site("xe9680-8cx7")[0].model_dump()


def _model(name: str) -> str:
    return "llama3-70b" if name == "llama3.1-70b" else "llama3-8b" if name == "llama3.1-8b" else name


def _int(value: str, default: int | None = None) -> int | None:
    return int(float(value)) if value not in ("", None) else default


def params(model: str, task: str, precision: str, nodes: int, layout: dict[str, Any],
           gbs: int, seq_len: int, site_dict: dict[str, Any]) -> dict[str, Any]:
    m = BUILTIN[_model(model)]
    gpn = 8
    tp, pp, cp = layout.get("tp", 1), layout.get("pp", 1), layout.get("cp", 1)
    gpus = nodes * gpn
    dp = layout.get("dp") or gpus // (tp * pp * cp)
    peak = site_dict["gpu"]["peak_tflops_fp8" if precision == "fp8" else "peak_tflops_bf16"]
    return {
        "workload": task, "launcher": "nemo", "model": model, "nodes": nodes, "gpus_per_node": gpn,
        "gpus": tp * pp * cp * dp, "tp": tp, "pp": pp, "cp": cp, "vpp": layout.get("vpp"), "dp": dp,
        "sequence_parallel": tp > 1, "mbs": layout.get("mbs", 1), "gbs": gbs, "seq_len": seq_len,
        "precision": precision, "steps": 100, "recompute": "selective", "parallel": None,
        "model_params": m.params(), "model_layers": m.layers, "model_hidden": m.hidden,
        "model_ffn_hidden": m.ffn_hidden, "model_heads": m.heads, "model_kv_heads": m.kv_heads,
        "model_vocab": m.vocab, "gpu_model": site_dict["gpu"]["model"], "gpu_mem_gib": site_dict["gpu"]["mem_gib"],
        "gpu_peak_tflops": peak, "adapters_per_node": 8, "adapter_rate_gbps": 400.0,
        "checkpoint_interval": None, "cost_per_node_hour": None,
    }


def shapes() -> list[Shape]:
    """One shape per (source, model, task, precision, nodes), with its preferred metric."""
    site_dict = site()
    rows: dict[tuple, dict[str, dict[str, str]]] = {}
    with CSV.open() as f:
        for row in csv.DictReader(f):
            if row["family"] == "mlperf_training":
                continue
            key = (row["source_id"], row["model"], row["task"], row["precision"], int(row["nodes"]))
            rows.setdefault(key, {})[row["metric"]] = row
    out = []
    for (source, model, task, precision, nodes), by_metric in rows.items():
        metric = next((m for m in METRIC_ORDER if m in by_metric), None)
        if metric is None:
            continue
        row = by_metric[metric]
        layout = {k: _int(row[c]) for k, c in (("tp", "tp"), ("pp", "pp"), ("cp", "cp"), ("vpp", "vpp"), ("mbs", "mbs"))
                  if _int(row[c]) is not None}
        layout = {**layout, **LAYOUT_GAPS.get((source, model), {})}
        p = params(model, task, precision, nodes, layout, int(row["gbs"]), int(row["seq_len"]), site_dict)
        out.append(Shape(source, model, task, precision, nodes, metric, float(row["value"]), p))
    return out


def mlperf_rows() -> dict[int, float]:
    """nodes -> published time to train (minutes) of the Dell XE9680 Llama 2 70B LoRA rows."""
    with CSV.open() as f:
        return {int(r["nodes"]): float(r["value"]) for r in csv.DictReader(f)
                if r["source_id"] == "mlperf-v4.1-dell" and r["metric"] == "time_to_train_min"}


def mlperf_params(nodes: int) -> dict[str, Any]:
    return params("llama2-70b", "lora", "fp8", nodes, MLPERF_LAYOUT[nodes], MLPERF_GBS, MLPERF_SEQ_LEN, site())
