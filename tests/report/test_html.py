"""HTML report: self-contained, every chart present; opened in headless Chromium with a
screenshot taken and no console errors, exceptions or network requests.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so the test opens no port.
"""
from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from slurmkit.report.html import render_html, write_html
from slurmkit.report.model import build_report

CHARTS = ["time_to_target", "ratio", "tokens_per_gpu", "tflops_per_gpu", "scaling_efficiency",
          "mfu", "step_time_distribution", "loss"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                    reason="headless Chromium not installed (CI installs and runs it)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900", "--remote-debugging-pipe"]


class Browser:
    """Just enough of the DevTools protocol: one page, commands, collected events."""

    def __init__(self, profile: Path) -> None:
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()

        def wire() -> None:  # in the child: the protocol's fixed descriptors 3 (in) and 4 (out)
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=wire, pass_fds=(3, 4))
        os.close(to_child)
        os.close(from_child)
        self._buf, self._next_id, self.events, self.session = b"", 0, [], None

    def call(self, method: str, params: dict | None = None, timeout_s: float = 60.0) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(timeout_s)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_event(self, method: str, timeout_s: float = 60.0) -> dict:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(timeout_s)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buf += chunk
        message, self._buf = self._buf.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable")
        self.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def close(self) -> None:
        try:
            self.session = None
            self.call("Browser.close", timeout_s=10)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._r)
        os.close(self._w)

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, log errors, non-local requests."""
        found = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                found.append(f"console.{p['type']}: {p.get('args')}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                found.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif method == "Network.requestWillBeSent":
                url = p.get("request", {}).get("url", "")
                if not url.startswith(("file:", "data:", "about:")):
                    found.append(f"network request: {url}")
        return found


@pytest.fixture
def html_file(results_dir, tmp_path) -> Path:
    return write_html(build_report(results_dir, "Hand set"), tmp_path / "report.html")


def test_html_is_self_contained_with_every_chart(html_file):
    text = html_file.read_text(encoding="utf-8")
    assert re.findall(r'data-chart="([a-z_]+)"', text) == CHARTS
    assert text.count("<svg") == len(CHARTS)
    assert not re.search(r'(src|href)="(https?:)?//', text)          # nothing fetched from anywhere
    assert "<script" not in text
    for heading in ("Findings", "Sites", "Comparison", "Runs", "Failed and incomplete runs", "Provenance"):
        assert f"<h2>{heading}</h2>" in text
    assert "m7 faster by 16.7% on 2 nodes" in text
    assert "torch.OutOfMemoryError: CUDA out of memory." in text


def test_html_escapes_values(runs, steps, tmp_path):
    from slurmkit.report.model import build_report_from_frames
    hostile = runs.assign(site=runs["site"].replace("A", "<script>alert(1)</script>"))
    text = render_html(build_report_from_frames(hostile, steps, "<b>title</b>"))
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;title&lt;/b&gt;" in text


def test_empty_results_html_says_so(tmp_path):
    (tmp_path / "results").mkdir()
    text = render_html(build_report(tmp_path / "results"))
    assert "The results folder holds no runs" in text and "<svg" not in text


def _browse(html_file: Path, tmp_path: Path, expression: str) -> tuple[object, bytes, list[str]]:
    """Open the report in headless Chromium: the value of ``expression`` (JSON text), a
    full-page PNG screenshot (also written beside the report) and the page's problems."""
    assert CHROMIUM, "chromium is not installed (scripts/setup-machine installs it)"
    browser = Browser(tmp_path / "profile")
    try:
        browser.open(html_file.as_uri())
        value = browser.call("Runtime.evaluate", {"returnByValue": True, "expression": expression})
        shot = browser.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        problems = browser.problems()
    finally:
        browser.close()
    png = base64.b64decode(shot["data"])
    (tmp_path / "report.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000   # a real, non-trivial page
    return json.loads(value["result"]["value"]), png, problems


@pytest.mark.chromium
@needs_chromium
def test_chromium_opens_the_report_without_errors(html_file, tmp_path):
    drawn, _, problems = _browse(html_file, tmp_path, (
        "JSON.stringify([...document.querySelectorAll('figure.chart')].map(f => "
        "[f.dataset.chart, f.querySelector('svg') ? f.querySelector('svg').getBoundingClientRect().width : 0]))"))
    assert [name for name, _ in drawn] == CHARTS
    assert all(width > 500 for _, width in drawn), drawn              # every chart laid out, visible
    assert problems == []


@pytest.mark.chromium
@needs_chromium
def test_chromium_shows_the_measured_derived_legend_and_the_steps_column(html_file, tmp_path):
    """Issue 12.1: the text Chromium renders carries the legend, the marked Steps column (last
    step / target) and the extrapolation named as such; the screenshot is a real page."""
    page, _, _ = _browse(html_file, tmp_path, (
        "JSON.stringify({legend: document.getElementById('legend').innerText, "
        "heads: [...document.querySelectorAll('#runs th')].map(t => t.innerText), "
        "cells: [...document.querySelectorAll('#runs tbody tr')].map(r => [...r.cells].map(c => c.innerText))})"))
    assert page["legend"].startswith("Every figure is marked m measured or d derived.")
    assert "d = derived: computed from measured values" in page["legend"]
    heads = page["heads"]
    steps_head = next(h for h in heads if h.startswith("Steps"))
    assert steps_head.replace("\n", "").replace(" ", "") == "Stepsm", heads   # marked measured
    assert any(h.startswith("Target, extrapolated (min)") for h in heads)
    steps = [row[heads.index(steps_head)] for row in page["cells"]]
    assert steps.count("500/500") == 9 and "120/500" in steps             # completed runs; the failed one's last step
