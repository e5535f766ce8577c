"""Published reference numbers (NeMo performance tables, dgxc-benchmarking, MLPerf) to plot
beside measured runs.

The shipped CSV (``slurmkit/data/reference_results.csv``) holds one row per published data point
with its source; see ``/work/shared/research/reference-results.md`` for how each was read. A point
is drawn beside a measured series only where model, GPU, precision, workload and sequence length
match, so a chart never compares unlike things.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

FAMILY_NAMES = {"nemo_perf": "NVIDIA NeMo perf. table", "dgxc": "NVIDIA dgxc-benchmarking",
                "mlperf_training": "MLPerf Training"}
REFERENCE_CSV = Path(__file__).resolve().parent / "data" / "reference_results.csv"


@lru_cache(maxsize=4)
def _load(path: str) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype={"derived": str})
    frame["derived"] = frame["derived"].str.lower().eq("true")
    return frame


def load_reference(path: Path | str | None = None) -> pd.DataFrame:
    """The published numbers, one row per (source, model, shape, metric)."""
    return _load(str(path or REFERENCE_CSV)).copy()


def model_key(name: object) -> str:
    """'Llama 2 7B', 'llama2-7b' and 'LLAMA2_7B' all become 'llama27b'."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def gpu_key(name: object) -> str:
    """A GPU family key: 'H100 SXM', 'NVIDIA H100 80GB HBM3' and 'H100-SXM5-80GB' -> 'h100sxm'."""
    text = model_key(name)
    for chip in ("h200", "h100", "a100", "l40s", "b200", "gb200"):
        if chip in text:
            if "pcie" in text or "nvl" in text:
                return chip + "pcie"
            return chip + "sxm" if chip in ("h100", "h200", "a100") else chip
    return text


def matching_reference(reference: pd.DataFrame, configs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Reference rows of ``metric`` whose model, GPU, precision, task and sequence length match a
    measured configuration, and its global batch when the source gives one (a null on the
    measured side never matches)."""
    refs = reference[reference["metric"] == metric]
    if refs.empty or configs.empty:
        return refs.iloc[0:0]
    measured = configs.reindex(columns=["model", "gpu_model", "precision", "workload", "seq_len", "gbs"]).dropna(
        subset=["model", "gpu_model", "precision", "workload", "seq_len"])
    shapes = {(model_key(r.model), gpu_key(r.gpu_model), str(r.precision).lower(),
               str(r.workload).lower(), int(r.seq_len)): set() for r in measured.itertuples()}
    for r in measured.itertuples():
        key = (model_key(r.model), gpu_key(r.gpu_model), str(r.precision).lower(),
               str(r.workload).lower(), int(r.seq_len))
        shapes[key].add(int(r.gbs) if pd.notna(r.gbs) else None)
    mask = []
    for row in refs.itertuples():
        key = (model_key(row.model), gpu_key(row.gpu), str(row.precision).lower(),
               str(row.task).lower(), int(row.seq_len) if row.seq_len == row.seq_len else -1)
        batches = shapes.get(key)
        gbs = getattr(row, "gbs", None)
        known = gbs is not None and pd.notna(gbs)
        mask.append(batches is not None and (not known or int(gbs) in batches))
    return refs[mask]


def reference_label(row: pd.Series) -> str:
    """Legend text of a published point, e.g. 'published: NVIDIA NeMo perf. table, NeMo 24.07'."""
    kind = "derived from published" if row["derived"] else "published"
    family = FAMILY_NAMES.get(row["family"], row["family"])
    return f"{kind}: {family}, {row['software']}"
