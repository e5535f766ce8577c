"""Megatron-LM and forks (Megatron-DeepSpeed/BigScience, Megatron-Bridge, epfLLM).

Record: `` [YYYY-MM-DD HH:MM:SS] iteration  n/  N | consumed samples: ... | elapsed time per
iteration (ms): ... | throughput per GPU (TFLOP/s/GPU): ... | learning rate: ... | global batch
size: ... | lm loss: ... | ... | grad norm: ... |``. Fields are optional and in a fixed order;
elapsed time is in ms, or s in Megatron-DeepSpeed; ``TFLOPs:`` is Megatron-DeepSpeed's per-GPU
figure. ``iteration n`` counts completed iterations (1-based), so step = n. Values are averages
over ``--log-interval`` iterations. Hard-wrapped records (terminal copies) match because the
key names accept any whitespace, newlines included, and a record's text extends over
continuation lines.
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from slurmkit.results.parsers.base import REGEX_SPACE, Format, timestamps
from slurmkit.results.parsers.numbers import float_array, int_array, text_array


def _key(words: str) -> str:
    """A field name that tolerates wrapped whitespace between its words."""
    return re.escape(words).replace("\\ ", "\\s+")


# Locates a record: its line, plus up to 3 continuation lines while a line does not end with
# "|" and the next starts with a lowercase word (a hard-wrapped copy).
PATTERN = re.compile(rb"iteration\s+\d+/\s*\d+\s*\|[^\n]*(?:(?<![|\s])\n(?=[ \t]*[a-z])[^\n]*){0,3}")
_V = r"\s*(?P<%s>[^\s|]+)"
# One RE2 pattern per field, searched in each record's text (via Arrow). A field starts after
# a "|", so "lm loss" never matches inside "load_balancing_loss".
FIELDS = (
    r"iteration\s+(?P<step>\d+)/\s*(?P<total>\d+)",
    r"\|\s*" + _key("consumed samples:") + _V % "samples",
    r"\|\s*" + _key("elapsed time per iteration") + r"\s+\((?P<unit>ms|s)\):" + _V % "elapsed",
    r"\|\s*" + _key("throughput per GPU (TFLOP/s/GPU):") + _V % "tflops",
    r"\|\s*" + _key("learning rate:") + _V % "lr",
    r"\|\s*(?:lm\s+)?loss:" + _V % "loss",
    r"\|\s*grad\s+norm:" + _V % "grad",
    r"\|\s*TFLOPs:" + _V % "ds_tflops",
)

# Most records spell every key canonically (one space between words), so the fields are found
# by looking up the key of each of the record's "|"-separated pieces (base.quick_fields), one
# hash lookup for all fields instead of a regex search per field.
# Records where that finds nothing (no such field, or a key spelled otherwise: hard-wrapped,
# doubled spaces) get the field's regex from FIELDS, so the result is the regex's (one case
# aside: a record holding the same key twice, first spelled otherwise, keeps the canonical one;
# tests/parse/test_megatron.py checks the equality on generated records).
# (field regex, value group, canonical keys, unit group and the unit each key implies)
QUICK_KEYS = (
    (FIELDS[1], "samples", ("consumed samples:",), None),
    (FIELDS[2], "elapsed", ("elapsed time per iteration (ms):", "elapsed time per iteration (s):"),
     ("unit", ("ms", "s"))),
    (FIELDS[3], "tflops", ("throughput per GPU (TFLOP/s/GPU):",), None),
    (FIELDS[4], "lr", ("learning rate:",), None),
    (FIELDS[5], "loss", ("lm loss:", "loss:"), None),
    (FIELDS[6], "grad", ("grad norm:",), None),
    (FIELDS[7], "ds_tflops", ("TFLOPs:",), None),
)
_VALUE = r"^[" + REGEX_SPACE + r"]*(?P<v>[^\s|]+)"  # after a key's ":"


class Megatron(Format):
    name = "megatron"
    keyword = b"iteration"
    pattern = PATTERN
    fields = FIELDS
    lookbehind = 23  # " [2024-04-06 03:02:12] " before "iteration"
    done_markers = (b"[after training is done]",)
    quick = ("|", REGEX_SPACE, ":", _VALUE, QUICK_KEYS)  # FIELDS[0]: "iteration n/ N" starts a record

    def columns(self, raw: dict[str, list[Any]]) -> dict[str, pa.Array]:
        elapsed = float_array(raw["elapsed"])
        in_ms = pc.equal(text_array(raw["unit"]), "ms")
        step_time = pc.if_else(pc.fill_null(in_ms, True), pc.divide(elapsed, 1000.0), elapsed)
        tflops = pc.coalesce(float_array(raw["tflops"]), float_array(raw["ds_tflops"]))
        return {"step": int_array(raw["step"]), "time": timestamps(raw["pre"], bracketed=True),
                "step_time_s": step_time, "loss": float_array(raw["loss"]),
                "lr": float_array(raw["lr"]), "grad_norm": float_array(raw["grad"]),
                "consumed_samples": int_array(raw["samples"]), "tflops_per_gpu": tflops}


FORMAT = Megatron()

