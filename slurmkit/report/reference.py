"""Published reference numbers (NeMo performance tables, dgxc-benchmarking, MLPerf) to plot
beside measured runs.

The shipped CSV (``slurmkit/data/reference_results.csv``) holds one row per published data point
with its source; see ``/work/shared/research/reference-results.md`` for how each was read. A point
is drawn beside a measured series only where model, GPU, precision, workload and sequence length
match, so a chart never compares unlike things; rows of the run's own software version are
preferred, and a comparison across versions (or with a run of unknown version) says so in its
label.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from slurmkit.perf.calibration import gpu_family

FAMILY_NAMES = {"nemo_perf": "NVIDIA NeMo perf. table", "dgxc": "NVIDIA dgxc-benchmarking",
                "megatron_bridge": "NVIDIA Megatron-Bridge perf. summary",
                "mlperf_training": "MLPerf Training"}
SHAPE_COLUMNS = ["model", "gpu_model", "precision", "workload", "seq_len"]
# NeMo's FLOPs formula discounts causal attention from 25.09 on (reference-results.md section 6.2);
# TFLOPS and MFU counted that way are not comparable with slurmkit's 2024 formula.
CAUSAL = "causal"
CAUSAL_SENSITIVE = ("tflops_per_gpu", "mfu")
SOFTWARE_SEPARATOR = " / "
REFERENCE_CSV = Path(__file__).resolve().parents[1] / "data" / "reference_results.csv"


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


# Llama 3.1 keeps Llama 3's layers, widths, heads and vocabulary (slurmkit.config.catalog); only its RoPE
# scaling and longest context differ, which leave a step's work at a given sequence length as it
# was: published Llama 3.1 numbers (dgxc-benchmarking) stand beside Llama 3 runs of the same shape.
SAME_ARCHITECTURE = {"llama318b": "llama38b", "llama3170b": "llama370b"}


def architecture_key(name: object) -> str:
    """model_key, with a model that has another's architecture mapped to it."""
    key = model_key(name)
    return SAME_ARCHITECTURE.get(key, key)


def gpu_key(name: object) -> str:
    """A GPU family key: 'H100 SXM', 'NVIDIA H100 80GB HBM3' and 'H100-SXM5-80GB' -> 'h100sxm'
    (the performance model's, so published rows and estimates name GPUs alike)."""
    return gpu_family(name)


def matching_reference(reference: pd.DataFrame, configs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Reference rows of ``metric`` whose model, GPU, precision, task and sequence length match a
    measured configuration, and its global batch when the source gives one (a null on the
    measured side never matches).

    Per configuration, rows published with the configuration's software (``software``, e.g.
    "NeMo 24.05") are preferred: where the shape has some, the other versions' rows are left out
    for it. The result carries ``measured_software``: the sorted labels of the configurations
    each row was kept for ("" for a configuration without one), which :func:`reference_label`
    turns into a visible cross-version note. TFLOPS and MFU rows counted with causal-attention
    FLOPs (``flops_formula`` "causal", NeMo 25.09 and later) are never matched: slurmkit counts
    the 2024 formula (slurmkit.results.metrics), so their numbers are not comparable.
    """
    refs = reference[reference["metric"] == metric]
    if metric in CAUSAL_SENSITIVE and "flops_formula" in refs.columns:
        refs = refs[refs["flops_formula"].astype("string").fillna("") != CAUSAL]
    if refs.empty or configs.empty:
        return refs.iloc[0:0].assign(measured_software=pd.Series(dtype=object))
    measured = configs.reindex(columns=[*SHAPE_COLUMNS, "gbs", "software"]).dropna(subset=SHAPE_COLUMNS)
    gbs = refs["gbs"] if "gbs" in refs.columns else pd.Series(None, index=refs.index, dtype=object)
    software = refs["software"] if "software" in refs.columns else pd.Series(None, index=refs.index, dtype=object)
    by_shape: dict[tuple, list[tuple[int, float, str]]] = {}  # shape -> (position, published GBS, software)
    for i, (r, g, sw) in enumerate(zip(refs.itertuples(), gbs, software)):
        key = _shape_key(r.model, r.gpu, r.precision, r.task, r.seq_len)
        by_shape.setdefault(key, []).append((i, g, software_text(sw)))
    kept: dict[int, set[str]] = {}
    for r in measured.itertuples():
        mine = software_text(r.software)
        found = [(i, sw) for i, g, sw in by_shape.get(_shape_key(r.model, r.gpu_model, r.precision, r.workload,
                                                                 r.seq_len), [])
                 if pd.isna(g) or (pd.notna(r.gbs) and int(g) == int(r.gbs))]
        same = [(i, sw) for i, sw in found if mine and sw == mine]
        for i, _ in same or found:
            kept.setdefault(i, set()).add(mine)
    order = sorted(kept)
    out = refs.iloc[order].copy()
    out["measured_software"] = [SOFTWARE_SEPARATOR.join(sorted(kept[i])) for i in order]
    return out


def _shape_key(model: Any, gpu: Any, precision: Any, task: Any, seq_len: Any) -> tuple:
    seq = int(seq_len) if pd.notna(seq_len) else -1
    return (architecture_key(model), gpu_key(gpu), str(precision).lower(), str(task).lower(), seq)


def software_text(value: object) -> str:
    """A software label as text; "" for none (a log slurmkit did not launch)."""
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def version_note(published: object, measured: object) -> str:
    """'' when the run used the published software, else 'published with NeMo 24.07; this run:
    NeMo 24.05' ('version unknown' for a run without a software label). ``measured`` may hold
    several labels joined by SOFTWARE_SEPARATOR (a row kept for several configurations)."""
    published = software_text(published)
    labels = software_text(measured).split(SOFTWARE_SEPARATOR)
    if labels == [published] and published:
        return ""
    names = [label or "version unknown" for label in labels]
    who = "this run" if len(names) == 1 else "these runs"
    return f"published with {published or 'version unknown'}; {who}: {', '.join(names)}"


def reference_label(row: pd.Series, measured: object = None) -> str:
    """Legend text of a published point, e.g. 'published: NVIDIA NeMo perf. table, NeMo 24.07';
    compared with a run of another (or unknown) version: 'published: NVIDIA NeMo perf. table —
    published with NeMo 24.07; this run: NeMo 24.05'. ``measured``: the run's software label;
    None takes the row's ``measured_software`` (from :func:`matching_reference`)."""
    kind = "derived from published" if row["derived"] else "published"
    family = FAMILY_NAMES.get(row["family"], row["family"])
    if model_key(row["model"]) in SAME_ARCHITECTURE:  # say which model was measured
        family = f"{family} ({row['model']})"
    if measured is None:
        measured = row.get("measured_software")
    note = version_note(row["software"], measured)
    return f"{kind}: {family} — {note}" if note else f"{kind}: {family}, {row['software']}"


def config_software(configs: pd.DataFrame, runs: pd.DataFrame) -> pd.Series:
    """The software label of each configuration, from its runs' ``software`` (labels joined by
    SOFTWARE_SEPARATOR when repeats differ; None when no run carries one)."""
    if "software" not in runs.columns or "run_ids" not in configs.columns:
        return pd.Series(None, index=configs.index, dtype=object)
    by_run = dict(zip(runs["run_id"].astype(str), runs["software"].map(software_text)))
    labels = [sorted({by_run.get(str(r), "") for r in ids} - {""}) for ids in configs["run_ids"]]
    return pd.Series([SOFTWARE_SEPARATOR.join(x) or None for x in labels], index=configs.index, dtype=object)
