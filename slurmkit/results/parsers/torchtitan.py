"""torchtitan: ``[titan] 2026-02-24 19:46:17,508 - root - INFO - step:  4  loss:  7.62585
grad_norm: 26.6250  memory: 66.91GiB(37.51%)  tps: 10,050  tflops: 314.71  mfu: 13.99%``.

tps, tflops and memory are per GPU; 2024 versions print ``wps`` instead of ``tps`` and no
tflops. Fields are ANSI-coloured on terminals (also seen without the ESC byte after a copy).
No step time is printed: it is derived from the timestamps of successive records. Without a
rank filter every rank prints the same step; the driver keeps one row per step.
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

from slurmkit.results.parsers.base import Format, diff_step_time, timestamps
from slurmkit.results.parsers.numbers import float_array, int_array

PATTERN = re.compile(
    rb"step:\s*(?P<step>\d+)\s+loss:\s*(?P<loss>[^\s]+)"
    rb"(?:\s+grad_norm:\s*(?P<grad>[^\s]+))?"
    rb"(?:\s+memory:\s*(?P<mem>[\d.]+)GiB(?:\([^)]*\))?)?"
    rb"(?:\s+(?:tps|wps):\s*(?P<tps>[\d.,]+[KMG]?))?"
    rb"(?:\s+tflops:\s*(?P<tflops>[^\s]+))?")


class Torchtitan(Format):
    name = "torchtitan"
    keyword = b"step:"
    pattern = PATTERN
    splittable = False  # step time comes from the previous record
    lookbehind = 48  # "[titan] 2026-02-24 19:46:17,508 - root - INFO - "
    strip_bare_ansi = True

    def columns(self, raw: dict[str, list[Any]]) -> dict[str, pa.Array]:
        steps, times = int_array(raw["step"]), timestamps(raw["pre"])
        return {"step": steps, "time": times, "step_time_s": diff_step_time(steps, times),
                "loss": float_array(raw["loss"]), "grad_norm": float_array(raw["grad"]),
                "mem_gib": float_array(raw["mem"]), "tokens_per_s_per_gpu": float_array(raw["tps"]),
                "tflops_per_gpu": float_array(raw["tflops"])}


FORMAT = Torchtitan()
