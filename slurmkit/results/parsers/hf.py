"""Hugging Face Trainer (and LlamaFactory / ms-swift variants): python-dict log lines
``{'loss': 2.1488, 'grad_norm': 1.5, 'learning_rate': 0.000114, 'epoch': 0.62}``.

The dicts carry no step number: the step is the ordinal of the loss record (1, 2, ...) unless
the dict has ms-swift's ``'global_step/max_steps': '350/1881'``. LlamaFactory adds
``train_tokens_per_second`` (all GPUs together, so it is not a per-GPU value and is not stored)
and ``train_runtime``. The final ``{'train_runtime': ...}`` dict marks a finished run.
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

from slurmkit.results.parsers.base import Format
from slurmkit.results.parsers.numbers import float_array, int_array

PATTERN = re.compile(rb"\{'loss': (?P<loss>[^,}\s]+)(?P<rest>[^}\r\n]*)\}")
_FIELD = re.compile(rb"'([a-z_/()]+)': '?([^,'}\s]+)")


class HuggingFace(Format):
    name = "hf"
    keyword = b"{'loss': "
    pattern = PATTERN
    splittable = False  # records are numbered across the whole file
    done_markers = (b"'train_loss'",)  # only in the final summary dict

    def __init__(self) -> None:
        super().__init__()
        self._steps_seen = 0  # one instance per file: records are numbered across ranges

    def columns(self, raw: dict[str, list[Any]]) -> dict[str, pa.Array]:
        grad, lr, step = [], [], []
        for rest in raw["rest"]:
            found = dict(_FIELD.findall(rest))
            grad.append(found.get(b"grad_norm"))
            lr.append(found.get(b"learning_rate"))
            gs = found.get(b"global_step/max_steps")
            step.append(gs.split(b"/")[0] if gs else None)
        ordinal = [str(self._steps_seen + i + 1).encode() for i in range(len(step))]
        self._steps_seen += len(step)
        steps = [s if s is not None else o for s, o in zip(step, ordinal)]
        return {"step": int_array(steps), "loss": float_array(raw["loss"]),
                "grad_norm": float_array(grad), "lr": float_array(lr)}

    def total_steps(self, raw: dict[str, list[Any]]) -> int | None:
        for rest in reversed(raw.get("rest", [])):
            m = re.search(rb"'global_step/max_steps': '\d+/(\d+)'", rest)
            if m:
                return int_array([m.group(1)])[0].as_py() or None  # (bounded; 5000 digits too)
        return None


FORMAT = HuggingFace()
