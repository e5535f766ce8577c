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
from slurmkit.report.kinds import DERIVED, legend, mark, metric_kind


@dataclass
class Table:
    """A titled table of strings; ``numeric`` marks right-aligned columns.

    ``kinds`` says per column whether its figures are measured or derived (slurmkit.report.kinds;
    "" for parameters and labels); a column that mixes both has kind "" and ``cell_kinds`` holds
    each of its cells' kinds ("" elsewhere).
    """

    title: str
    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool] = field(default_factory=list)
    note: str = ""
    kinds: list[str] = field(default_factory=list)
    cell_kinds: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.numeric:
            self.numeric = [False] * len(self.columns)
        if not self.kinds:
            self.kinds = [""] * len(self.columns)
        if not self.cell_kinds:
            self.cell_kinds = [[""] * len(self.columns) for _ in self.rows]

    @property
    def marked(self) -> bool:
        """Whether any figure carries a measured/derived mark (the legend goes with it)."""
        return any(self.kinds) or any(any(row) for row in self.cell_kinds)

    def header_marks(self) -> list[str]:
        return [mark(k) for k in self.kinds]

    def cell_marks(self) -> list[list[str]]:
        return [[mark(k) for k in row] for row in self.cell_kinds]


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


# A column's kind: measured, derived, "" (neither), or a function of the row when it mixes both.
Kind = str | Callable[[pd.Series], str]
Column = tuple[str, str, Callable[[Any], str], bool] | tuple[str, str, Callable[[Any], str], bool, Kind]


def frame_table(title: str, frame: pd.DataFrame, columns: list[Column], note: str = "") -> Table:
    """A Table from ``frame`` given (header, column, formatter, numeric[, kind]) specs; a null
    cell ('–') carries no kind."""
    rows, cell_kinds = [], []
    for _, row in frame.iterrows():
        cells = [spec[2](row[spec[1]]) if spec[1] in frame.columns else "–" for spec in columns]
        rows.append(cells)
        cell_kinds.append([_cell_kind(_kind(spec), row) if cell != "–" else ""
                           for spec, cell in zip(columns, cells)])
    kinds = [k if isinstance(k := _kind(spec), str) else "" for spec in columns]
    for i, kind in enumerate(kinds):
        if not kind:  # a mixed column: its usual kind goes to the header, the others stay on cells
            kinds[i] = _usual([row[i] for row in cell_kinds])
            for row in cell_kinds:
                row[i] = "" if row[i] == kinds[i] else row[i]
    return Table(title, [spec[0] for spec in columns], rows, [spec[3] for spec in columns], note,
                 kinds, cell_kinds)


def _kind(spec: Column) -> Kind:
    return spec[4] if len(spec) == 5 else ""


def _usual(kinds: list[str]) -> str:
    """The most common non-empty kind (derived on a tie), "" when there is none."""
    present = [k for k in kinds if k]
    return max(sorted(set(present)), key=present.count) if present else ""


def _cell_kind(kind: Kind, row: pd.Series) -> str:
    """A mixed column's cell kind; "" in a column of one kind (its header carries the mark)."""
    return "" if isinstance(kind, str) else kind(row)


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
        kind = metric_kind(metric)
        columns: list[Column] = [
            ("Model", "model", fmt_text, False), ("Nodes", "nodes", fmt_number, True),
            (f"{base_label} (baseline)", "base_text", fmt_text, True, kind),
            ("Candidate" if several else by_label.split(" vs ")[0], "cand_text", fmt_text, True, kind),
            ("Ratio", "ratio", lambda v: f"{v:.3f}", True, DERIVED),
            ("Change", "change_pct", lambda v: f"{v:+.1f}%", True, DERIVED),
            ("Verdict", "verdict", fmt_text, False, DERIVED)]
        if several:
            columns.insert(3, ("Compared with", "candidate", fmt_text, False))
        tables.append(frame_table(f"{by_label}: {metric_header(metric)}", frame, columns,
                                  note=PAIRS_NOTE if not tables else ""))
    return tables


def _with_mark(text: str, sign: str) -> str:
    return f"{text} [{sign}]" if sign else text


def marked_text(table: Table) -> tuple[list[str], list[list[str]]]:
    """Headers and rows with their measured/derived marks as text: 'Step (s) [m]', '86 [m]'."""
    head = [_with_mark(h, m) for h, m in zip(table.columns, table.header_marks())]
    rows = [[_with_mark(c, m) for c, m in zip(row, marks)] for row, marks in zip(table.rows, table.cell_marks())]
    return head, rows


def to_text(table: Table, fmt: str) -> str:
    """Render for the terminal: table (aligned), markdown, csv or json; measured/derived marks
    in brackets after headers (and mixed columns' cells), the legend after a marked table."""
    if fmt == "json":
        kinds = [k or [r[i] for r in table.cell_kinds] for i, k in enumerate(table.kinds)]
        return json.dumps({"title": table.title, "legend": legend() if table.marked else "",
                           "kinds": dict(zip(table.columns, kinds)),
                           "rows": [dict(zip(table.columns, row)) for row in table.rows]},
                          indent=2, ensure_ascii=False)
    head, body = marked_text(table)
    foot = [legend()] if table.marked else []
    if fmt == "csv":
        frame = pd.DataFrame(body, columns=head)
        return frame.to_csv(index=False).rstrip("\n")
    if fmt == "markdown":
        top = "| " + " | ".join(head) + " |"
        rule = "|" + "|".join("---:" if n else "---" for n in table.numeric) + "|"
        lines = ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body]
        return "\n".join([f"### {table.title}", "", top, rule, *lines, *(["", *foot] if foot else [])])
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(head)]
    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w)
                         for c, w, n in zip(cells, widths, table.numeric)).rstrip()
    return "\n".join([table.title, line(head), line(["-" * w for w in widths]),
                      *(line(r) for r in body), *foot])
