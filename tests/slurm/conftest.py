"""Fixtures for slurmkit's Slurm tests: a fake client, hand-written run directories, and the
real local cluster (integration tests marked `slurm`)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from slurmkit.slurm.client import JobInfo, SlurmCommandError, SubmitOutcome

TERMINAL = {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL", "OUT_OF_MEMORY"}


class FakeSlurm:
    """An in-memory SlurmClient: records every call; tests set job states and failures."""

    def __init__(self, accounting: bool = True) -> None:
        self.accounting = accounting
        self.calls: list[tuple] = []
        self.next_id = 100
        self.jobs: dict[str, dict] = {}        # job_id -> {name, state, exit_code, nodelist, script}
        self.purged: set[str] = set()          # gone from the controller (squeue/scontrol)
        self.unaccounted: set[str] = set()     # not (yet) in sacct
        self.placeholder: set[str] = set()     # sacct shows only the "allocation" row
        self.reject: dict[str, str] = {}       # script -> sbatch error message
        self.transient_failures = 0            # the next N sbatch calls fail transiently
        self.infeasible: set[str] = set()      # scripts --test-only rejects

    def submit(self, script, cwd, *, dependency=None, test_only=False):
        self.calls.append(("submit", script, dependency, test_only))
        argv = ["sbatch", script]
        if test_only:
            if script in self.infeasible:
                raise SlurmCommandError(argv, 1, "sbatch: error: Batch job submission failed: "
                                        "Requested node configuration is not available")
            return SubmitOutcome(None, "sbatch: Job 1 to start at now")
        if self.transient_failures:
            self.transient_failures -= 1
            raise SlurmCommandError(argv, 1, "sbatch: error: Unable to contact slurm controller")
        if script in self.reject:
            raise SlurmCommandError(argv, 1, self.reject[script])
        job_id = str(self.next_id)
        self.next_id += 1
        name = Path(script).stem
        self.jobs[job_id] = {"name": name, "state": "PENDING", "exit_code": None,
                             "nodelist": None, "script": script, "dependency": dependency}
        return SubmitOutcome(job_id, job_id)

    def set_state(self, job_id, state, exit_code="0:0", nodelist="node[1-2]", elapsed="00:00:00"):
        self.jobs[job_id].update(state=state, exit_code=exit_code, nodelist=nodelist, elapsed=elapsed)

    def _info(self, job_id, with_exit):
        j = self.jobs[job_id]
        return JobInfo(job_id, j["name"], j["state"], j["exit_code"] if with_exit else None, j["nodelist"])

    def queue(self, job_ids):
        ids = list(job_ids)
        self.calls.append(("queue", tuple(ids)))
        return {i: self._info(i, False) for i in ids if i in self.jobs and i not in self.purged}

    def show_jobs(self, job_ids):
        ids = list(job_ids)
        self.calls.append(("show_jobs", tuple(ids)))
        return {i: self._info(i, True) for i in ids if i in self.jobs and i not in self.purged}

    def sacct(self, job_ids, fields=("JobID", "JobName", "State", "ExitCode", "NodeList"),
              allocations_only=False):
        ids = list(job_ids)
        self.calls.append(("sacct", tuple(ids)))
        rows = ["|".join(fields)]
        for i in ids:
            if i not in self.jobs or i in self.unaccounted:
                continue
            j = self.jobs[i]
            name = "allocation" if i in self.placeholder else j["name"]
            values = {"JobID": i, "JobName": name, "State": j["state"], "ExitCode": j["exit_code"] or "0:0",
                      "NodeList": j["nodelist"] or "None assigned", "Elapsed": j.get("elapsed", "00:00:00")}
            rows.append("|".join(values.get(f, "") for f in fields))
            if not allocations_only and j["state"] in TERMINAL and i not in self.placeholder:
                values.update(JobID=f"{i}.batch", JobName="batch")
                rows.append("|".join(values.get(f, "") for f in fields))
        return "\n".join(rows) + "\n"

    def cancel(self, job_ids):
        ids = list(job_ids)
        self.calls.append(("cancel", tuple(ids)))
        for i in ids:
            self.jobs[i]["state"] = "CANCELLED"

    def has_accounting(self):
        return self.accounting

    def count(self, kind):
        return sum(1 for c in self.calls if c[0] == kind)


def make_run_dir(root: Path, run_ids: list[str], body: str = "echo hello",
                 options: dict[str, list[str]] | None = None) -> Path:
    """A hand-written run directory per docs/contracts.md: plan.json and one script per run
    (``options``: extra #SBATCH lines per run id)."""
    (root / "scripts").mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    jobs = []
    for run_id in run_ids:
        script = f"scripts/{run_id}.sbatch"
        (root / script).write_text(
            "#!/bin/bash\n"
            f"#SBATCH --job-name={run_id}\n"
            f"#SBATCH --output=logs/{run_id}_%j.out\n"
            "#SBATCH --nodes=1\n"
            "#SBATCH --time=5\n"
            + "".join(f"#SBATCH {opt}\n" for opt in (options or {}).get(run_id, []))
            + f"{body}\n")
        jobs.append({"run_id": run_id, "script": script, "params": {"run_id_hint": run_id}})
    plan = {"schema_version": 1, "experiment": "test", "experiment_file": "test.yaml",
            "sites": {}, "jobs": jobs}
    (root / "plan.json").write_text(json.dumps(plan, indent=1))
    return root


@pytest.fixture
def new_run_dir():
    """make_run_dir, for tests (conftest is not importable under --import-mode=importlib)."""
    return make_run_dir


@pytest.fixture
def wait():
    """wait_done, for tests."""
    return wait_done


@pytest.fixture
def fake():
    return FakeSlurm()


@pytest.fixture
def run_dir(tmp_path):
    return make_run_dir(tmp_path / "run", ["alpha", "beta", "gamma"])


def _cluster_problem() -> str | None:
    """Why the real local cluster cannot be used here, or None when it can."""
    if os.geteuid() != 0:
        return "needs root and the local cluster (scripts/local-slurm)"
    if os.environ.get("SLURMKIT_LOCAL_SLURM") != "1":
        return "run inside the cluster's head namespace: scripts/local-slurm exec ... (see scripts/run-tests)"
    if shutil.which("sbatch") is None:
        return "sbatch not installed (scripts/setup-machine)"
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    if ping.returncode != 0 or "UP" not in ping.stdout:
        return f"local Slurm controller not answering: {ping.stdout.strip() or ping.stderr.strip()}"
    return None


@pytest.fixture(scope="session")
def cluster():
    """The real local cluster: skip off CI when unavailable, FAIL on CI (never skip silently)."""
    problem = _cluster_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the local Slurm cluster is unavailable: {problem}")
        pytest.skip(problem)
    from slurmkit.slurm.client import SlurmCli
    return SlurmCli()


def wait_done(run_dir: Path, client, timeout_s: float = 120, poll_s: float = 0.5):
    """Poll `refresh` until every job has finished (sbatch --wait returns late; poll instead)."""
    from slurmkit.slurm.track import refresh
    deadline = time.monotonic() + timeout_s
    while True:
        report = refresh(run_dir, client)
        if report.done:
            return report
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs still running after {timeout_s} s: {report.counts()}")
        time.sleep(poll_s)


BLOCK_SLURMKIT = '''\
import sys


class _NoSlurmkit:
    """Refuses slurmkit, as a container without it would."""

    def find_spec(self, name, path=None, target=None):
        if name == "slurmkit" or name.startswith("slurmkit."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None


sys.meta_path.insert(0, _NoSlurmkit())
'''


@pytest.fixture(scope="session")
def no_slurmkit(tmp_path_factory) -> dict[str, str]:
    """Environment variables under which no Python process can import slurmkit: PYTHONPATH names
    a folder whose sitecustomize puts a refusing finder first on sys.meta_path. Processes started
    by torchrun, srun or sbatch inherit it. (A test asserts it works.)"""
    folder = tmp_path_factory.mktemp("no-slurmkit")
    (folder / "sitecustomize.py").write_text(BLOCK_SLURMKIT)
    return {"PYTHONPATH": str(folder)}
