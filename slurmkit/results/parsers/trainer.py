"""The project's example trainer (``python -m slurmkit.trainer``, docs/contracts.md):
``SKTRAIN step=<n>/<N> loss=.. lr=.. grad_norm=.. step_time_s=.. tokens_per_s_per_gpu=..
time_unix=..`` from rank 0, and ``SKTRAIN done steps=<n> final_loss=..`` at the end."""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

from slurmkit.results.parsers.base import Format, unix_times
from slurmkit.results.parsers.numbers import float_array, int_array

PATTERN = re.compile(
    rb"SKTRAIN step=(?P<step>\d+)/(?P<total>\d+) loss=(?P<loss>\S+) lr=(?P<lr>\S+)"
    rb" grad_norm=(?P<grad>\S+) step_time_s=(?P<step_time>\S+)"
    rb" tokens_per_s_per_gpu=(?P<tps>\S+) time_unix=(?P<time>[\d.]+)")


class Trainer(Format):
    name = "trainer"
    keyword = b"SKTRAIN step="
    pattern = PATTERN
    done_markers = (b"SKTRAIN done",)

    def columns(self, raw: dict[str, list[Any]]) -> dict[str, pa.Array]:
        return {"step": int_array(raw["step"]), "time": unix_times(raw["time"]),
                "loss": float_array(raw["loss"]), "lr": float_array(raw["lr"]),
                "grad_norm": float_array(raw["grad"]),
                "step_time_s": float_array(raw["step_time"]),
                "tokens_per_s_per_gpu": float_array(raw["tps"])}


FORMAT = Trainer()
