"""Where site names are looked up (issue 12, point 4): ``--site-dir`` first, then a
``site-configs/`` folder beside the experiment (or beside its folder, a checkout's layout), then
the working directory's, then the shipped copy; generate names the file it read, plan.json
records it, and the report's provenance shows it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import slurmkit.config.site as site_module
from slurmkit.rundir import read_plan

REPO = Path(__file__).parents[2]
EXPERIMENT = "llama2-70b-pretrain"
SITE = "xe9680-8cx7"


def _with_partition(folder: Path, partition: str) -> Path:
    """A copy of the repository's site-configs/ in ``folder`` whose SITE runs in ``partition``."""
    shutil.copytree(REPO / "site-configs", folder)
    path = folder / f"{SITE}.yaml"
    text = path.read_text()
    assert "  partition: batch\n" in text
    path.write_text(text.replace("  partition: batch\n", f"  partition: {partition}\n"))
    return path


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """The shipped site configs as a venv install holds them: a separate copy, not the checkout."""
    folder = tmp_path / "venv" / "site-configs"
    _with_partition(folder, "installed")
    real = site_module.shipped_dir
    monkeypatch.setattr(site_module, "shipped_dir",
                        lambda name: folder if name == "site-configs" else real(name))
    return folder


@pytest.fixture
def checkout(tmp_path):
    """A temporary checkout: the repository's experiments/ and site-configs/, side by side."""
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "experiments", root / "experiments")
    _with_partition(root / "site-configs", "batch")
    return root


def _partitions(run_dir: Path) -> set[str]:
    return {line.split("=", 1)[1] for script in (run_dir / "scripts").glob(f"*-{SITE}-*.sbatch")
            for line in script.read_text().splitlines() if line.startswith("#SBATCH --partition=")}


def test_editing_the_checkouts_site_file_changes_the_script(cli, checkout, installed, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # beside the experiment, not in the working directory
    experiment = str(checkout / "experiments" / f"{EXPERIMENT}.yaml")
    code, _, err = cli("generate", experiment, "--out", "before")
    assert code == 0 and _partitions(elsewhere / "before") == {"batch"}

    edited = _with_partition(tmp_path / "scratch", "edited")  # the user edits the checkout's file
    shutil.copy(edited, checkout / "site-configs" / f"{SITE}.yaml")
    code, _, err = cli("generate", experiment, "--out", "after")
    assert code == 0 and _partitions(elsewhere / "after") == {"edited"}
    used = checkout / "site-configs" / f"{SITE}.yaml"
    assert f"site {SITE}: {used}" in err.splitlines()
    assert read_plan(elsewhere / "after").site_files[SITE] == str(used)
    # plan.json carries it in its header, beside the resolved sites
    assert json.loads((elsewhere / "after" / "plan.json").read_text())["site_files"][SITE] == str(used)


def test_the_working_directorys_site_configs_come_before_the_shipped_ones(cli, checkout, installed,
                                                                           tmp_path, monkeypatch):
    lone = tmp_path / "lone"  # an experiment with no site-configs/ near it
    lone.mkdir()
    shutil.copy(checkout / "experiments" / f"{EXPERIMENT}.yaml", lone / "exp.yaml")
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("generate", str(lone / "exp.yaml"), "--out", "shipped", "--site", SITE)
    assert code == 0 and _partitions(tmp_path / "shipped") == {"installed"}
    assert f"site {SITE}: {installed / f'{SITE}.yaml'}" in err.splitlines()

    _with_partition(tmp_path / "site-configs", "cwd")
    code, _, err = cli("generate", str(lone / "exp.yaml"), "--out", "cwd", "--site", SITE)
    assert code == 0 and _partitions(tmp_path / "cwd") == {"cwd"}
    assert f"site {SITE}: {tmp_path / 'site-configs' / f'{SITE}.yaml'}" in err.splitlines()


def test_site_dir_comes_before_the_checkout_and_the_working_directory(cli, checkout, installed,
                                                                     tmp_path, monkeypatch):
    _with_partition(checkout / "experiments" / "site-configs", "beside")  # in the experiment's own folder
    monkeypatch.chdir(checkout)  # the checkout's site-configs/ is also the working directory's
    experiment = str(checkout / "experiments" / f"{EXPERIMENT}.yaml")
    code, _, _ = cli("generate", experiment, "--out", "beside")
    assert code == 0 and _partitions(checkout / "beside") == {"beside"}
    mine = tmp_path / "mine"
    _with_partition(mine, "mine")
    code, _, err = cli("generate", experiment, "--out", "mine", "--site-dir", str(mine))
    assert code == 0 and _partitions(checkout / "mine") == {"mine"}
    assert f"site {SITE}: {mine / f'{SITE}.yaml'}" in err.splitlines()


def test_an_unknown_site_names_the_folders_searched(cli, installed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "site-configs").mkdir()
    code, _, err = cli("validate", "no-such-site")
    assert code == 2
    assert "unknown site 'no-such-site'" in err
    assert err.rstrip().endswith("; searched site-configs, venv/site-configs)")


def test_the_report_names_the_site_file_of_its_runs(cli, checkout, installed, tmp_path, monkeypatch):
    from slurmkit.report.model import build_report
    from slurmkit.rundir import log_path, provenance_line

    monkeypatch.chdir(tmp_path)
    assert cli("generate", str(checkout / "experiments" / "local-smoke.yaml"), "--out", "runs/smoke")[0] == 0
    job = read_plan("runs/smoke").jobs[0]
    steps = "".join(f"SKTRAIN step={n}/2 loss={3 - n / 10} lr=0.001 grad_norm=1.0 step_time_s=0.5 "
                    f"tokens_per_s_per_gpu=100.0 time_unix={n}\n" for n in (1, 2))
    log = tmp_path / "runs/smoke" / log_path(job.run_id, "7")
    log.write_text(provenance_line(job.run_id, job.params, "7") + "\n" + steps)
    assert cli("parse", "runs/smoke/logs", "--out", "results")[0] == 0
    provenance = dict(build_report("results").provenance)
    assert provenance["Site files"] == f"local: {checkout / 'site-configs' / 'local.yaml'}"
    log.rename(tmp_path / "elsewhere.out")  # a log outside any run directory: no plan to read
    assert cli("parse", "elsewhere.out", "--out", "loose")[0] == 0
    assert dict(build_report("loose").provenance)["Site files"] == \
        "not recorded (no run directory with a plan.json beside the logs)"
