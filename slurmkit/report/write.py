"""Write a results folder's report: the HTML file and, when asked, the PDF, from one report model."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

STAGES = 3  # the calls of ``on_stage``: model built, HTML written, PDF written (or skipped)


def write_reports(results: Path | str, html_path: Path | str, pdf_path: Path | str | None, title: str | None,
                  by: str | None = None, baseline: object = None, noise_pct: float = 1.0,
                  on_stage: Callable[[str], None] = lambda stage: None) -> list[str]:
    """Build the report model once, write HTML (and PDF); return one line per file plus a
    summary. ``on_stage`` is called after each of the STAGES (a progress bar)."""
    from slurmkit.report.html import write_html
    from slurmkit.report.model import build_report

    model = build_report(results, title, by=by, baseline=baseline, noise_pct=noise_pct)
    on_stage("model")
    lines = [f"wrote {write_html(model, html_path)}"]
    on_stage("html")
    if pdf_path:
        from slurmkit.report.pdf import write_pdf
        lines.append(f"wrote {write_pdf(model, pdf_path)}")
    on_stage("pdf")
    drawn = sum(c.figure is not None for c in model.charts)
    lines.append(f"{len(model.findings)} findings, {drawn} charts, {len(model.notices)} notices")
    return lines
