"""slurmkit.rundir is standard library only (both halves import it, the control half must start
fast on a login node); `submit` does not load the data half's heavy libraries."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_rundir_imports_only_the_standard_library():
    script = ("import sys\nimport slurmkit.rundir\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names"
              " and not m.startswith('_') and m != '__main__'))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    modules = eval(out.stdout)
    assert [m for m in modules if not m.startswith("slurmkit.rundir")] == ["slurmkit", "slurmkit.atomic",
                                                                         "slurmkit.errors"]


def test_submit_imports_no_heavy_modules(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "scripts").mkdir(parents=True)
    (run_dir / "scripts" / "a.sbatch").write_text("#!/bin/bash\n")
    (run_dir / "plan.json").write_text('{"schema_version": 1, "jobs": [{"run_id": "a", "script": "scripts/a.sbatch"}]}')
    script = (
        "import sys\nfrom slurmkit.cli import main\n"
        f"try:\n    main(['submit', {str(run_dir)!r}, '--dry-run'])\nexcept SystemExit as exc:\n    assert not exc.code\n"
        "import slurmkit.slurm.track, slurmkit.slurm.collect\n"
        "print('HEAVY', sorted(m for m in ('pandas', 'pyarrow', 'numpy', 'matplotlib') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"cd {run_dir} && sbatch --parsable scripts/a.sbatch" in out.stdout
    assert "HEAVY []" in out.stdout
