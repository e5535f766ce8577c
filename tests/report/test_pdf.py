"""PDF report: page count and extracted text, from the same report model as the HTML."""
from __future__ import annotations

import io

from pypdf import PdfReader

from slurmkit.report.model import build_report
from slurmkit.report.pdf import render_pdf, write_pdf


def _text(data: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(data))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_pages_and_text(results_dir, tmp_path):
    path = write_pdf(build_report(results_dir, "Hand set"), tmp_path / "r.pdf")
    pages, text = _text(path.read_bytes())
    assert 4 <= pages <= 12
    flat = " ".join(text.split())
    for expected in ("Hand set", "Findings", "8 adapters vs 4 adapters (extrapolated time for the target steps): m7 faster by 16.7%",
                     "Sites", "8 adapters vs 4 adapters: extrapolated time for the target steps (s)", "Cost of the target steps",
                     "Charts", "m7-n2-A-r2", "CUDA out of memory", "Provenance", "slurmkit version"):
        assert expected in flat, expected
    assert "page 1" in flat                                           # footer on every page
    assert PdfReader(path).metadata.title == "Hand set"


def test_pdf_draws_every_chart_as_an_image(results_dir):
    reader = PdfReader(io.BytesIO(render_pdf(build_report(results_dir))))
    images = sum(len(page.images) for page in reader.pages)
    assert images == 8


def test_empty_results_pdf_says_so(tmp_path):
    (tmp_path / "results").mkdir()
    pages, text = _text(render_pdf(build_report(tmp_path / "results")))
    assert pages == 1 and "The results folder holds no runs" in " ".join(text.split())
