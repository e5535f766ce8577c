"""Megatron-LM and forks (Megatron-DeepSpeed/BigScience, Megatron-Bridge, epfLLM).

Record: `` [YYYY-MM-DD HH:MM:SS] iteration  n/  N | consumed samples: ... | elapsed time per
iteration (ms): ... | throughput per GPU (TFLOP/s/GPU): ... | learning rate: ... | global batch
size: ... | lm loss: ... | ... | grad norm: ... |``. Fields are optional and in a fixed order;
elapsed time is in ms, or s in Megatron-DeepSpeed; ``TFLOPs:`` is Megatron-DeepSpeed's per-GPU
figure. ``iteration n`` counts completed iterations (1-based), so step = n. Values are averages
over ``--log-interval`` iterations. Hard-wrapped records (terminal copies) match because the
key names accept any whitespace, newlines included.
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from slurmkit.parsers.base import Format, timestamps
from slurmkit.parsers.numbers import float_array, int_array


def _key(words: str) -> bytes:
    """A field name that tolerates wrapped whitespace between its words."""
    return re.escape(words).replace("\\ ", "\\s+").encode()


_V = rb"\s*(?P<%s>[^\s|]+)\s*\|"
_SKIP = rb"(?:[^|\n]*\|)*?"  # other fields on the same line, skipped lazily
PATTERN = re.compile(
    rb"iteration\s+(?P<step>\d+)/\s*(?P<total>\d+)\s*\|"
    rb"(?:\s*" + _key("consumed samples:") + _V % b"samples" + rb")?"
    rb"(?:\s*" + _key("consumed tokens:") + rb"\s*\d+\s*\|)?"
    rb"(?:\s*" + _key("elapsed time per iteration") + rb"\s+\((?P<unit>ms|s)\):" + _V % b"elapsed"
    + rb")?"
    rb"(?:\s*" + _key("throughput per GPU (TFLOP/s/GPU):") + _V % b"tflops" + rb")?"
    rb"(?:\s*" + _key("learning rate:") + _V % b"lr" + rb")?"
    rb"(?:\s*" + _key("global batch size:") + rb"\s*\d+\s*\|)?"
    rb"(?:\s*(?:lm\s+)?loss:" + _V % b"loss" + rb")?"
    rb"(?:" + _SKIP + rb"\s*grad\s+norm:" + _V % b"grad" + rb")?"
    rb"(?:" + _SKIP + rb"\s*TFLOPs:\s*(?P<ds_tflops>[^\s|]+))?")


class Megatron(Format):
    name = "megatron"
    keyword = b"iteration"
    pattern = PATTERN
    lookbehind = 23  # " [2024-04-06 03:02:12] " before "iteration"
    done_markers = (b"[after training is done]",)

    def columns(self, raw: dict[str, list[Any]]) -> dict[str, pa.Array]:
        elapsed = float_array(raw["elapsed"])
        in_ms = pc.equal(pa.array(raw["unit"], pa.binary()).cast(pa.string()), "ms")
        step_time = pc.if_else(pc.fill_null(in_ms, True), pc.divide(elapsed, 1000.0), elapsed)
        tflops = pc.coalesce(float_array(raw["tflops"]), float_array(raw["ds_tflops"]))
        return {"step": int_array(raw["step"]), "time": timestamps(raw["pre"]),
                "step_time_s": step_time, "loss": float_array(raw["loss"]),
                "lr": float_array(raw["lr"]), "grad_norm": float_array(raw["grad"]),
                "consumed_samples": int_array(raw["samples"]), "tflops_per_gpu": tflops}


FORMAT = Megatron()
