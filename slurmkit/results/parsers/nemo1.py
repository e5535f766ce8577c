"""NeMo 1.x: the PyTorch Lightning progress bar is the only per-step record.

``Epoch 0:   6%|██ | 32040/500150 [6:28:43<94:39:17, 1.37it/s, v_num=95nc,
reduced_train_loss=2.590, global_step=3.2e+4, consumed_samples=2.56e+7, train_step_timing in
s=0.615, val_loss=7.040]``, redrawn with ``\\r`` (many states per physical line, other messages
glued on). The step is the bar counter ``n`` (completed steps, 1-based; ``global_step`` is n-1
and is printed with 3 significant digits once large, so it is not used). Values are rounded;
NaN loss prints as ``nan.0``. A refresh may repeat the previous step's postfix under the new
counter: the driver keeps the last record per step.
"""
from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from slurmkit.results.parsers.base import Format
from slurmkit.results.parsers.numbers import float_array, int_array, text_array

# Locates a bar state (up to its closing "]" or the next \r / \n); no groups.
PATTERN = re.compile(rb"\| *\d+/\d+ \[[^\]\r\n]*")
_VAL = r"[^,\]]*"
# Pulls the fields out of each bar state (RE2, via Arrow), one small pattern per field.
FIELDS = (r"\| *(?P<step>\d+)/(?P<total>\d+) \[",
          r", *reduced_train_loss=(?P<loss>" + _VAL + r")",
          r", *consumed_samples=(?P<samples>" + _VAL + r")",
          r", *train_step_timing in s=(?P<step_time>" + _VAL + r")")

# Found by the key of each bar state's ","-separated pieces, the regex above only where that
# finds nothing (see base.quick_fields; the regexes allow only spaces after the comma).
QUICK_KEYS = ((FIELDS[1], "loss", ("reduced_train_loss=",), None),
              (FIELDS[2], "samples", ("consumed_samples=",), None),
              (FIELDS[3], "step_time", ("train_step_timing in s=",), None))
_VALUE = r"^(?P<v>" + _VAL + r")"  # after a key's "="


class NeMo1(Format):
    name = "nemo"
    keyword = b"reduced_train_loss="
    pattern = PATTERN
    fields = FIELDS
    done_markers = (b"Trainer.fit` stopped", b"Trainer.fit stopped")
    quick = (",", " ", "=", _VALUE, QUICK_KEYS)  # FIELDS[0]: "| n/N [" starts every bar state

    def columns(self, raw: dict[str, list[Any]]) -> dict[str, pa.Array]:
        loss = float_array(raw["loss"])
        # a state without a loss (validation bar, other tqdm bar) is not a training step
        step = pc.if_else(pc.is_valid(loss), int_array(raw["step"]), pa.scalar(None, pa.int64()))
        return {"step": step, "loss": loss,
                "consumed_samples": int_array(raw["samples"]),
                "step_time_s": float_array(raw["step_time"])}

    def total_steps(self, raw: dict[str, Any]) -> int | None:
        """N of the last training bar (validation bars have their own n/N)."""
        training = pc.is_valid(text_array(raw["loss"]))
        return super().total_steps({"total": pc.filter(raw["total"], training)})


FORMAT = NeMo1()
