"""Render a report model to PDF with reportlab (pure Python; charts as PNG from matplotlib).

The text uses DejaVu Sans, the font matplotlib ships, so the PDF needs no system font and shows
the same characters as the charts (±, ×, −, …).
"""
from __future__ import annotations

import io
from pathlib import Path
from xml.sax.saxutils import escape

import matplotlib
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Image,
    KeepTogether,
    LongTable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    TableStyle,
)

from slurmkit.atomic import write_bytes_atomic
from slurmkit.report.charts import figure_png
from slurmkit.report.kinds import legend, mark, short_legend
from slurmkit.report.model import Chart, Report
from slurmkit.report.tables import Table, marked_text

PAGE = landscape(A4)
WRAP_CHARS = 40
SHORT_TABLE_ROWS = 24
MARGIN = 14 * mm
INK, MUTED, ACCENT, RULE = (colors.HexColor(c) for c in ("#1d2330", "#5b6475", "#0072B2", "#e3e6ec"))


def _register_fonts() -> tuple[str, str]:
    fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    if "DejaVuSans" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("DejaVuSans", str(fonts / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(fonts / "DejaVuSans-Bold.ttf")))
    return "DejaVuSans", "DejaVuSans-Bold"


def _styles() -> dict[str, ParagraphStyle]:
    body, bold = _register_fonts()
    base = ParagraphStyle("body", fontName=body, fontSize=9, leading=12.5, textColor=INK)
    return {
        "body": base,
        "title": ParagraphStyle("title", base, fontName=bold, fontSize=20, leading=24, spaceAfter=4),
        "meta": ParagraphStyle("meta", base, fontSize=8, textColor=MUTED, spaceAfter=10),
        "h2": ParagraphStyle("h2", base, fontName=bold, fontSize=13, leading=16, spaceBefore=14,
                             spaceAfter=6, textColor=ACCENT, keepWithNext=1),
        "h3": ParagraphStyle("h3", base, fontName=bold, fontSize=9.5, spaceBefore=8, spaceAfter=4,
                             keepWithNext=1),
        "finding": ParagraphStyle("finding", base, leftIndent=10, borderPadding=(3, 6, 3, 6),
                                  backColor=colors.HexColor("#f3f7fb"), spaceAfter=6),
        "notice": ParagraphStyle("notice", base, textColor=colors.HexColor("#8a5a00"),
                                 backColor=colors.HexColor("#fff6e0"), borderPadding=5, spaceAfter=8),
        "cell": ParagraphStyle("cell", base, fontSize=7, leading=8.6),
        "cellnum": ParagraphStyle("cellnum", base, fontSize=7, leading=8.6, alignment=TA_RIGHT),
        "head": ParagraphStyle("head", base, fontName=bold, fontSize=7, leading=8.6),
        "note": ParagraphStyle("note", base, fontSize=7.5, textColor=MUTED, spaceAfter=6),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _table(table: Table, styles: dict[str, ParagraphStyle], width: float) -> list:
    """A long table; short cells stay plain strings (far faster than a Paragraph each) sized to
    their text, long ones wrap in the width that is left."""
    body_font, head_font = styles["cell"].fontName, styles["head"].fontName
    columns, rows = marked_text(table)  # measured/derived marks: 'Step (s) [m]'
    wrap = [any(len(row[i]) > WRAP_CHARS for row in rows) for i in range(len(columns))]
    widths = [max([stringWidth(h, head_font, 7), *(stringWidth(r[i], body_font, 7) for r in rows
                                                   if not wrap[i])]) + 8
              for i, h in enumerate(columns)]
    spare = max(width - sum(w for w, x in zip(widths, wrap) if not x), 0)
    widths = [max(spare / sum(wrap), 90.0) if x else w for w, x in zip(widths, wrap)]
    body = [[_p(cell, styles["cell"]) if wrap[i] else cell for i, cell in enumerate(row)]
            for row in rows]
    right = [("ALIGN", (i, 0), (i, -1), "RIGHT") for i, num in enumerate(table.numeric) if num]
    grid = LongTable([columns, *body], colWidths=widths, repeatRows=1, hAlign="LEFT")
    grid.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, 0), head_font, 7, 8.6),
        ("FONT", (0, 1), (-1, -1), body_font, 7, 8.6),
        *right,
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f4f5f8")),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    out = [_p(table.title, styles["h3"]), grid]
    if table.note:
        out.append(_p(table.note, styles["note"]))
    if table.marked:
        out.append(_p(short_legend(), styles["note"]))
    return out


def _section(title: str, table: Table, styles: dict[str, ParagraphStyle], width: float) -> list:
    """A heading and its table, kept on one page when the table is short."""
    parts = [_p(title, styles["h2"]), *_table(table, styles, width)]
    return [KeepTogether(parts)] if len(table.rows) <= SHORT_TABLE_ROWS else parts


def _chart(chart: Chart, styles: dict[str, ParagraphStyle], max_w: float, max_h: float) -> list:
    if chart.figure is None:
        return [_p(chart.title, styles["h3"]), _p(f"Not drawn: {chart.missing_reason}.", styles["note"])]
    width_in, height_in = chart.figure.get_size_inches()
    scale = min(max_w / (width_in * 72), max_h / (height_in * 72))
    image = Image(io.BytesIO(figure_png(chart.figure)), width=width_in * 72 * scale,
                  height=height_in * 72 * scale, hAlign="LEFT")
    caption = f"[{mark(chart.kind)}] {chart.caption}" if chart.kind else chart.caption
    return [KeepTogether([image, _p(caption, styles["note"])])]


def render_pdf(report: Report) -> bytes:
    styles = _styles()
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN,
                            topMargin=MARGIN, bottomMargin=MARGIN, title=report.title,
                            author="slurmkit", creator="slurmkit", invariant=True)
    story = [_p(report.title, styles["title"]),
             _p(f"Generated {report.generated_at} by slurmkit", styles["meta"])]
    story += [_p(n, styles["notice"]) for n in report.notices]
    story.append(_p("Every figure is marked [m] measured or [d] derived. " + legend(), styles["body"]))
    story.append(_p("Findings", styles["h2"]))
    story += [_p(f"{f.text} [{mark(f.kind)}]", styles["finding"]) for f in report.findings] or [
        _p("No findings: the results hold nothing to compare.", styles["note"])]
    if report.sites:
        story += _section("Sites", report.sites, styles, doc.width)
    if report.charts:
        story += [PageBreak(), _p("Charts", styles["h2"])]
        for chart in report.charts:
            story += _chart(chart, styles, doc.width * 0.8, doc.height * 0.43)
    if report.tables:
        story.append(PageBreak())
    for i, table in enumerate(report.tables):
        parts = _table(table, styles, doc.width)
        if i == 0:  # the section heading stays with its first table
            parts.insert(0, _p("Comparison", styles["h2"]))
        story += [KeepTogether(parts)] if len(table.rows) <= SHORT_TABLE_ROWS else parts
    if report.runs:
        story += [PageBreak(), *_section("Runs", report.runs, styles, doc.width)]
    if report.failures:
        story += _section("Failed and incomplete runs", report.failures, styles, doc.width)
    story.append(_p("Provenance", styles["h2"]))
    story += [_p(f"{k}: {v}", styles["body"]) for k, v in report.provenance]
    doc.build(story, onFirstPage=_footer, onLaterPages=_footer)
    return buf.getvalue()


def _footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
    canvas.saveState()
    canvas.setFont("DejaVuSans", 7)
    canvas.setFillColor(MUTED)
    canvas.drawRightString(PAGE[0] - MARGIN, 8 * mm, f"slurmkit report · page {doc.page}")
    canvas.restoreState()


def write_pdf(report: Report, path: Path | str) -> Path:
    path = Path(path)
    write_bytes_atomic(path, render_pdf(report))
    return path
