"""MLPerf training logs: ``:::MLLOG {json}`` (possibly after an ``srun -l`` label).

Steps come from ``tracked_stats`` events: ``metadata.step`` (which counts SAMPLES in some
benchmarks, e.g. GPT-3: when every step is a multiple of the logged ``global_batch_size`` it is
divided by it and kept as consumed_samples) and ``value.train_step_timing`` (s). Run facts:
time to train = run_stop - run_start (``time_ms``), outcome = ``run_stop.metadata.status``
(success -> completed, aborted -> failed). Events repeated by every rank are harmless: steps
are de-duplicated and run facts read once. The legacy v0.6 ``:::MLL`` format is not parsed.
"""
from __future__ import annotations

import json
import re
from typing import Any

import pyarrow as pa

from slurmkit.results.parsers.base import Format
from slurmkit.results.parsers.numbers import INT_LIMIT, fit_float

PATTERN = re.compile(rb":::MLLOG (?P<json>\{[^\r\n]*\})")


class MLLog(Format):
    name = "mllog"
    keyword = b":::MLLOG"
    pattern = PATTERN
    splittable = False  # global_batch_size, logged once, is needed by later records

    def columns(self, raw: dict[str, list[Any]]) -> dict[str, pa.Array]:
        step, step_time, time_ms = [], [], []
        for text in raw["json"]:
            event = _load(text)
            if event is None:
                continue
            key, meta, value = event.get("key"), _object(event.get("metadata")), event.get("value")
            self._note(key, event, meta, value)
            if key == "tracked_stats" and _int64(meta.get("step")):
                step.append(int(meta["step"]))
                timing = _object(value).get("train_step_timing")
                step_time.append(fit_float(timing) if timing is not None and _is_number(timing) else None)
                time_ms.append(event.get("time_ms") if _int64(event.get("time_ms")) else None)
        samples: list[int | None] = [None] * len(step)
        gbs = self.facts.get("gbs")
        if gbs and step and all(s % gbs == 0 for s in step):
            samples = list(step)
            step = [s // gbs for s in step]
        times = pa.array([int(t) if t is not None else None for t in time_ms], pa.int64())
        return {"step": pa.array(step, pa.int64()), "step_time_s": pa.array(step_time, pa.float64()),
                "consumed_samples": pa.array(samples, pa.int64()),
                "time": times.cast(pa.timestamp("ms", tz="UTC"))}

    def _note(self, key: Any, event: dict, meta: dict, value: Any) -> None:
        if key == "global_batch_size" and isinstance(value, int) and _int64(value) and value > 0:
            self.facts["gbs"] = value
        elif key == "run_start":
            if _int64(event.get("time_ms")):
                self.facts.setdefault("run_start_ms", event.get("time_ms"))
        elif key == "run_stop":
            if _int64(event.get("time_ms")):
                self.facts["run_stop_ms"] = event.get("time_ms")
            self.facts["mlperf_status"] = meta.get("status")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int64(value: Any) -> bool:
    """A finite number below numbers.INT_LIMIT (bool excluded)."""
    return _is_number(value) and value == value and abs(value) < INT_LIMIT


def _object(value: Any) -> dict:
    """A JSON object of the record, or an empty one for any other JSON type (``"metadata": [1]``)."""
    return value if isinstance(value, dict) else {}


def _load(text: bytes) -> dict | None:
    try:
        event = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting past ~1000
        return None
    return event if isinstance(event, dict) else None


FORMAT = MLLog()
