"""What the README's and the docs' commands write in a checkout is ignored by git, so following
them leaves `git status` clean (runs/, results/, reports/, demo output)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# an output option and a relative path (placeholders such as DIR or RESULTS and absolute paths are not paths here)
# (the option stands alone: "-o/--out in a folder", a hint's prose, names no path)
OUTPUT = re.compile(r"(?:^|(?<=[\s`([]))(?:--out|--results|--pdf|-o) ([a-z][A-Za-z0-9_.<>/-]*)", re.M)


def documented_outputs() -> set[str]:
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return {m.rstrip("/") for path in texts for m in OUTPUT.findall(path.read_text(encoding="utf-8"))}


def test_documented_output_paths_are_ignored():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = sorted(documented_outputs())
    assert {"runs/l70", "results", "reports/l70.html", "demo"} <= set(paths)
    # a file inside each (a folder is ignored when its files are)
    probes = [f"{p}/plan.json" if "." not in Path(p).name else p for p in paths]
    out = subprocess.run(["git", "check-ignore", "--no-index", *probes], cwd=ROOT, capture_output=True,
                         text=True)
    assert sorted(out.stdout.split()) == sorted(probes)
    kept = subprocess.run(["git", "check-ignore", "--no-index", "reports/.gitkeep"], cwd=ROOT)
    assert kept.returncode == 1  # the folder itself stays in the checkout
