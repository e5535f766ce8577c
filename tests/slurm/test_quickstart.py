"""The README's quick start on the real local cluster, command by command as a user types them
(the `slurmkit` entry point in a shell, the log glob expanded by bash): generate, submit, status
--watch, collect, parse the run directory's logs again, report. Parsing after collect must keep
what collect added: every run's Slurm state, exit code and elapsed time (issue 12, point 5)."""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from slurmkit.results.store import read_runs
from slurmkit.rundir import read_manifest

pytest.importorskip("torch", reason="the example trainer needs torch (the trainer extra)")
pytestmark = [pytest.mark.slurm, pytest.mark.torch]

ROOT = Path(__file__).parents[2]
SLURMKIT = f"{shlex.quote(sys.executable)} -m slurmkit"


def shell(command: str, cwd: Path, timeout_s: float = 120) -> str:
    """One quick-start line in bash; its stdout (a failure shows both streams)."""
    out = subprocess.run(["bash", "-c", command.replace("slurmkit ", f"{SLURMKIT} ", 1)], cwd=cwd,
                         capture_output=True, text=True, timeout=timeout_s)
    assert out.returncode == 0, f"{command}: exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


def test_readme_quick_start_keeps_accounting_through_parse(tmp_path, cluster):
    experiment = ROOT / "experiments" / "local-smoke.yaml"
    shell(f"slurmkit generate {experiment} --out runs/smoke", tmp_path)
    shell("slurmkit submit runs/smoke", tmp_path)
    watched = shell("slurmkit status runs/smoke --watch --interval 1", tmp_path, timeout_s=300)
    assert watched.rstrip().splitlines()[-1].startswith("2 runs: 2 COMPLETED (squeue + sacct)")
    collected = shell("slurmkit collect runs/smoke --results results", tmp_path, timeout_s=120)
    assert "logs: 2 found, 0 missing" in collected

    def accounting() -> dict[str, tuple]:
        runs = read_runs(tmp_path / "results")
        return {r.run_id: (r.status, r.slurm_state, r.slurm_exit_code, r.slurm_elapsed_s)
                for r in runs.itertuples()}

    after_collect = accounting()
    records = read_manifest(tmp_path / "runs/smoke")
    assert set(after_collect) == set(records)
    for status, state, exit_code, elapsed_s in after_collect.values():
        assert (status, state, exit_code) == ("completed", "COMPLETED", "0:0") and elapsed_s > 0

    parsed = shell("slurmkit parse runs/smoke/logs/*.out --out results", tmp_path)
    assert "run directory: runs/smoke (its plan, manifest and accounting join the logs)" in parsed
    assert accounting() == after_collect

    shell("slurmkit report results -o reports/smoke.html", tmp_path, timeout_s=180)
    html = (tmp_path / "reports/smoke.html").read_text()
    assert f"local: {ROOT / 'site-configs' / 'local.yaml'}" in html  # the site file, in the provenance
