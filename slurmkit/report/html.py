"""Render a report model to one self-contained HTML file (inline CSS and SVG, no network)."""
from __future__ import annotations

from pathlib import Path

import jinja2
from markupsafe import Markup

from slurmkit.atomic import write_text_atomic
from slurmkit.report.charts import figure_svg
from slurmkit.report.kinds import DEFINITIONS, MARKS, legend, short_legend
from slurmkit.report.model import Report

_TEMPLATES = Path(__file__).resolve().parent / "templates"


def render_html(report: Report) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    svgs = {c.name: Markup(figure_svg(c.figure)) for c in report.charts if c.figure is not None}
    return env.get_template("report.html.j2").render(report=report, svgs=svgs, legend=legend(),
                                                     short_legend=short_legend(), marks=MARKS,
                                                     definitions=DEFINITIONS)


def write_html(report: Report, path: Path | str) -> Path:
    path = Path(path)
    write_text_atomic(path, render_html(report))
    return path
