"""NeMo 2.x / Megatron-Bridge through NeMo: ``Training epoch E, iteration i/N | key: value |``.

``iteration i/N`` is 0-based and N is max_steps - 1, so step = i + 1 and the target is N + 1.
Keys vary by version (order too): lr, global_batch_size, global_step, consumed_samples,
reduced_train_loss, ``train_step_timing in s`` (seconds), val_loss, max_memory_reserved /
max_memory_allocated (bytes), TFLOPS_per_GPU. Early 2024 versions print no step timing.
``Validation: iteration k/K`` lines are not steps.
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from slurmkit.results.parsers.base import Format
from slurmkit.results.parsers.numbers import float_array, int_array

PATTERN = re.compile(rb"Training epoch \d+, iteration (?P<step>\d+)/(?P<total>\d+)(?P<tail>[^\r\n]*)")
_FIELD = re.compile(rb"\|\s*([A-Za-z_][A-Za-z_ ]*?):\s*([^\s|]+)")
_KEYS = {b"lr": "lr", b"consumed_samples": "samples", b"reduced_train_loss": "loss",
         b"train_step_timing in s": "step_time", b"TFLOPS_per_GPU": "tflops",
         b"max_memory_reserved": "mem_bytes"}


class NeMo2(Format):
    name = "nemo2"
    keyword = b"Training epoch "
    pattern = PATTERN

    def columns(self, raw: dict[str, list[Any]]) -> dict[str, pa.Array]:
        fields: dict[str, list[bytes | None]] = {v: [] for v in _KEYS.values()}
        for tail in raw["tail"]:
            found = dict(_FIELD.findall(tail))
            for key, col in _KEYS.items():
                fields[col].append(found.get(key))
        mem_gib = pc.divide(float_array(fields["mem_bytes"]), float(2**30))
        return {"step": pc.add(int_array(raw["step"]), 1), "lr": float_array(fields["lr"]),
                "loss": float_array(fields["loss"]),
                "consumed_samples": int_array(fields["samples"]),
                "step_time_s": float_array(fields["step_time"]),
                "tflops_per_gpu": float_array(fields["tflops"]), "mem_gib": mem_gib}

    def total_steps(self, raw: dict[str, list[Any]]) -> int | None:
        total = super().total_steps(raw)
        return None if total is None else total + 1


FORMAT = NeMo2()
