"""Turn comparison DataFrames into display tables (header + rows of strings).

Formatting happens once here so the HTML report, the PDF report and ``slurmkit compare`` print
the same numbers the same way.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from slurmkit.report.compare import METRICS


@dataclass
class Table:
    """A titled table of strings; ``numeric`` marks right-aligned columns."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool] = field(default_factory=list)
    note: str = ""

    def __post_init__(self) -> None:
        if not self.numeric:
            self.numeric = [False] * len(self.columns)


def is_null(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def fmt_number(value: Any, digits: int = 0) -> str:
    """Thousands separators, fixed decimals, '–' for null."""
    if is_null(value):
        return "–"
    if isinstance(value, (bool,)):
        return "yes" if value else "no"
    if isinstance(value, (int,)) or (hasattr(value, "is_integer") and digits == 0 and float(value).is_integer()):
        return f"{int(value):,}"
    return f"{float(value):,.{digits}f}"


def fmt_text(value: Any) -> str:
    if is_null(value):
        return "–"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def fmt_plain(value: Any) -> str:
    """A parameter value: 989.0 -> '989', 79.6 -> '79.6', 92.5 -> '92.5', text as is."""
    if isinstance(value, float) and not is_null(value):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}".rstrip("0").rstrip(".")
    return fmt_text(value)


def fmt_metric(metric: str, value: Any) -> str:
    """A metric value in its display unit (MFU as %, seconds with 2-3 digits, money in $)."""
    if is_null(value):
        return "–"
    if metric == "mfu":
        return f"{float(value) * 100:.1f}%"
    if metric == "cost_to_target_usd":
        return f"${float(value):,.2f}"
    if metric.endswith("_s"):
        return f"{float(value):,.3f}" if abs(float(value)) < 100 else f"{float(value):,.0f}"
    return f"{float(value):,.1f}" if abs(float(value)) < 100 else f"{float(value):,.0f}"


def metric_header(metric: str) -> str:
    spec = METRICS[metric]
    unit = {"": "", "s": " (s)", "tokens/s": "", "TFLOPS": "", "USD": " ($)"}[spec.unit]
    return f"{spec.label}{unit}" if metric != "mfu" else "MFU (%)"


def frame_table(title: str, frame: pd.DataFrame,
                columns: list[tuple[str, str, Callable[[Any], str], bool]], note: str = "") -> Table:
    """A Table from ``frame`` given (header, column, formatter, numeric) specs."""
    rows = [[fmt(row[col]) if col in frame.columns else "–" for _, col, fmt, _ in columns]
            for _, row in frame.iterrows()]
    return Table(title, [h for h, *_ in columns], rows, [n for *_, n in columns], note)


PAIRS_NOTE = ("Runs are paired when every parameter except the compared field matches; repeats "
              "are aggregated (mean ± std, n). Within noise: the change is smaller than two standard "
              "errors of the repeats, or than the stated threshold when there are no repeats.")


def _mean_std(prefix: str) -> Callable[[pd.Series], str]:
    def show(row: pd.Series) -> str:
        text = fmt_metric(row["metric"], row[f"{prefix}_mean"])
        if not is_null(row[f"{prefix}_std"]) and row[f"{prefix}_n"] >= 2:
            text += f" ± {fmt_metric(row['metric'], row[f'{prefix}_std'])}"
        return f"{text} (n={row[f'{prefix}_n']})"
    return show


def pairs_tables(pairs: pd.DataFrame, by_label: str, base_label: str) -> list[Table]:
    """One table per metric, one row per pair: baseline and candidate mean ± std (n), ratio,
    change and verdict."""
    tables: list[Table] = []
    several = pairs["candidate"].map(fmt_text).nunique() > 1
    for metric in dict.fromkeys(pairs["metric"]):
        rows = pairs[pairs["metric"] == metric]
        frame = rows.assign(base_text=rows.apply(_mean_std("base"), axis=1),
                            cand_text=rows.apply(_mean_std("cand"), axis=1))
        columns = [("Model", "model", fmt_text, False), ("Nodes", "nodes", fmt_number, True),
                   (f"{base_label} (baseline)", "base_text", fmt_text, True),
                   ("Candidate" if several else by_label.split(" vs ")[0], "cand_text", fmt_text, True),
                   ("Ratio", "ratio", lambda v: f"{v:.3f}", True),
                   ("Change", "change_pct", lambda v: f"{v:+.1f}%", True),
                   ("Verdict", "verdict", fmt_text, False)]
        if several:
            columns.insert(3, ("Compared with", "candidate", fmt_text, False))
        tables.append(frame_table(f"{by_label}: {metric_header(metric)}", frame, columns,
                                  note=PAIRS_NOTE if not tables else ""))
    return tables


def to_text(table: Table, fmt: str) -> str:
    """Render for the terminal: table (aligned), markdown, csv or json."""
    if fmt == "json":
        return json.dumps([dict(zip(table.columns, row)) for row in table.rows], indent=2,
                          ensure_ascii=False)
    if fmt == "csv":
        frame = pd.DataFrame(table.rows, columns=table.columns)
        return frame.to_csv(index=False).rstrip("\n")
    if fmt == "markdown":
        head = "| " + " | ".join(table.columns) + " |"
        rule = "|" + "|".join("---:" if n else "---" for n in table.numeric) + "|"
        body = ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in table.rows]
        return "\n".join([f"### {table.title}", "", head, rule, *body])
    widths = [max([len(h), *(len(r[i]) for r in table.rows)]) for i, h in enumerate(table.columns)]
    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w)
                         for c, w, n in zip(cells, widths, table.numeric)).rstrip()
    return "\n".join([table.title, line(table.columns), line(["-" * w for w in widths]),
                      *(line(r) for r in table.rows)])
