"""Rules enforced, not remembered: ruff, mypy and import-linter run here, so CI (which runs the
whole suite) fails when code breaks one. Each tool is also shown to fail on a planted violation,
so a tool that silently checks nothing cannot pass for a clean tree."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINTED = ["slurmkit", "tests", "scripts", "bench"]


def run_tool(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def lint_imports(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess[str]:
    # import-linter has no `python -m` entry point: its console script sits beside the interpreter
    script = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(script), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


# ---- the tree is clean

def test_ruff_is_clean():
    assert_clean(run_tool("-m", "ruff", "check", "--no-cache", *LINTED))


def test_mypy_is_clean():
    # [tool.mypy] in pyproject.toml names the package and the checks
    assert_clean(run_tool("-m", "mypy"))


def test_import_contracts_are_kept():
    # the checkout's slurmkit, whatever the environment has installed
    result = lint_imports("--no-cache", env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert_clean(result)
    assert "0 broken" in result.stdout


def _contract_modules() -> list[set[str]]:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = {c["name"]: c for c in config["contracts"]}
    control = set(contracts["The control half does not import the data half"]["source_modules"])
    data = set(contracts["The data half does not import the control half"]["source_modules"])
    shared = set(contracts["The shared low modules import neither half"]["source_modules"])
    return [control, data, shared]


def test_every_module_is_in_one_half():
    """A new top-level module must be placed in the control half, the data half or the shared
    low modules, else the contracts would not see it."""
    halves = _contract_modules()
    top = {p.stem if p.suffix == ".py" else p.name for p in (ROOT / "slurmkit").iterdir()
           if (p.suffix == ".py" or (p / "__init__.py").is_file()) and not p.name.startswith("_")}
    top -= {"cli", "demo"}  # compose both halves; nothing imports them (their own contracts)
    for name in sorted(top):
        homes = [half for half in halves if f"slurmkit.{name}" in half]
        assert len(homes) == 1, f"slurmkit.{name} is in {len(homes)} of the contract lists in pyproject.toml"
    listed = set().union(*halves)
    assert listed <= {f"slurmkit.{name}" for name in top}, "a contract names a module that is gone"


# ---- each tool fails on a planted violation

def test_ruff_fails_on_a_planted_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nimport os\n\n\ndef f(x=[]):\n    return x\n")
    result = run_tool("-m", "ruff", "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"),
                      str(bad))
    assert result.returncode != 0
    for code in ("F401", "I001", "B006"):  # pyflakes, import order, bugbear: all selected
        assert code in result.stdout, result.stdout


def test_mypy_fails_on_a_planted_violation_and_sees_config_fields(tmp_path):
    """The config models are declared with schema.Model, which mypy reads as a dataclass
    (dataclass_transform): a missing or unknown field, or an assignment, is a type error."""
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent("""\
        from slurmkit.config.site import Gpu

        gpu = Gpu(model="h100", count_per_node=8, mem_gib=80.0, peak_tflops_bf16=989.0)
        count: str = gpu.count_per_node
        Gpu(model="h100", count_per_node=8, mem_gib=80.0, peak_tflops_bf16=989.0, bogus=1)
        gpu.count_per_node = 4
        """))
    result = run_tool("-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), str(probe))
    assert result.returncode != 0
    out = result.stdout
    assert 'probe.py:4: error: Incompatible types in assignment (expression has type "int"' in out, out
    assert 'probe.py:5: error: Unexpected keyword argument "bogus" for "Gpu"' in out, out
    assert "probe.py:6: error:" in out and "read-only" in out, out
    assert "probe.py:3:" not in out, out  # the valid construction passes


def test_lint_imports_fails_when_a_half_imports_the_other(tmp_path):
    """The real contracts, on a copy of slurmkit with two planted crossings: the control half
    importing the data half, and a data module importing the CLI."""
    copy = tmp_path / "slurmkit"
    shutil.copytree(ROOT / "slurmkit", copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "plan" / "make.py").open("a") as fh:
        fh.write("\nimport slurmkit.results.store  # planted\n")
    with (copy / "results" / "metrics.py").open("a") as fh:
        fh.write("\nfrom slurmkit.cli import main  # planted\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}
    result = lint_imports("--no-cache", "--config", str(ROOT / "pyproject.toml"), cwd=tmp_path, env=env)
    assert result.returncode != 0, result.stdout
    assert "The control half does not import the data half BROKEN" in result.stdout, result.stdout
    assert "Nothing imports the CLI or the demo BROKEN" in result.stdout, result.stdout
    assert "The data half does not import the control half KEPT" in result.stdout, result.stdout
