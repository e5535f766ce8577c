"""torchrun command lines proven against torchrun itself: every torchrun job slurmkit ships (the
experiments and the golden scenarios) is run as a script with stand-ins for srun, scontrol and
torchrun, and the argv torchrun would receive is parsed by a parser rebuilt from torchrun's flag
set at each PyTorch version slurmkit knows (read from the release's own run.py) and, where torch
is installed, by torchrun's real parser; the trainer's part by the trainer's own parser."""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from slurmkit.config.experiment import JobSpec
from slurmkit.config.site import load_site
from slurmkit.errors import ConfigError
from slurmkit.plan.launch import torchrun
from slurmkit.plan.launch.common import container_image
from slurmkit.plan.launch.flagparser import FlagError, build_parser
from slurmkit.plan.launch.programs import PROGRAMS_DIR, flagset
from slurmkit.plan.launch.software import CONTAINERS
from slurmkit.plan.make import make_plan as plan_of
from slurmkit.plan.render import render_plan, write_plan


def make_plan(experiment, *args, templates_dir=None, **kwargs):
    """The plan with its scripts rendered, as `generate` makes it."""
    return render_plan(plan_of(experiment, *args, **kwargs), templates_dir)

ROOT = Path(__file__).parents[2]
TRAINER = ROOT / "slurmkit" / "trainer" / "train.py"
FLAG_SETS = sorted(p.stem for p in PROGRAMS_DIR.glob("torchrun-*.json"))
EXPERIMENTS = [p for p in sorted((ROOT / "experiments").glob("*.yaml")) + sorted(
    (ROOT / "tests" / "config" / "data" / "golden").glob("torchrun-*.yaml")) if "launcher: torchrun" in p.read_text()]


def rebuilt_parser(name: str) -> argparse.ArgumentParser:
    """torchrun's parser rebuilt from the flag set: flags, then the script and its arguments."""
    parser = build_parser(flagset(name))
    data = json.loads((PROGRAMS_DIR / f"{name}.json").read_text())
    for positional in data["positionals"]:
        parser.add_argument(positional["dest"], **({"nargs": positional["nargs"]} if positional["nargs"] else {}))
    return parser


def fake_bin(root: Path) -> Path:
    """srun records its argv and runs the command after its options; torchrun records its argv."""
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text('#!/bin/bash\nprintf "%s\\0" "$@" > "$SK_SRUN_ARGS"\n'
                                  'while [[ $# -gt 0 && $1 == -* ]]; do shift; done\nexec "$@"\n')
    (bin_dir / "torchrun").write_text('#!/bin/bash\nprintf "%s\\0" "$@" > "$SK_TORCHRUN_ARGS"\n')
    (bin_dir / "scontrol").write_text('#!/bin/bash\nprintf "node7\\nnode8\\n"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir


def run_jobs(tmp_path_factory) -> list[dict]:
    """Each shipped torchrun job: generated into a run directory and its script run there."""
    runs = []
    for experiment in EXPERIMENTS:
        plan = make_plan(experiment)
        root = tmp_path_factory.mktemp(experiment.stem)
        run_dir = root / "run dir"  # a space: the path must survive quoting
        write_plan(plan, run_dir)
        bin_dir = fake_bin(root)
        for job in plan.jobs:
            if job.params["launcher"] != "torchrun":
                continue
            srun_args, torchrun_args = root / "srun.args", root / "torchrun.args"
            env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "node[7-8]",
                   "SLURM_SUBMIT_DIR": str(run_dir), "HOME": "/nonexistent",
                   "SK_SRUN_ARGS": str(srun_args), "SK_TORCHRUN_ARGS": str(torchrun_args)}
            out = subprocess.run(["bash", str(run_dir / job.script)], env=env, cwd=run_dir, check=False,
                                 capture_output=True, text=True)
            assert out.returncode == 0, f"{job.script}: {out.stderr}"
            runs.append({"experiment": experiment, "job": job, "run_dir": run_dir, "plan": plan,
                         "srun": srun_args.read_text().split("\0")[:-1],
                         "torchrun": torchrun_args.read_text().split("\0")[:-1]})
    return runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return run_jobs(tmp_path_factory)


def test_every_shipped_torchrun_job_is_covered(runs):
    names = {r["experiment"].stem for r in runs}
    assert {"local-smoke", "torchrun-fsdp", "torchrun-local", "torchrun-xe9680-8cx7"} <= names
    assert len(runs) >= 10
    assert FLAG_SETS == ["torchrun-v2.10.0", "torchrun-v2.11.0", "torchrun-v2.3.0"]


@pytest.mark.parametrize("name", FLAG_SETS)
def test_torchrun_flags_parse_with_each_known_version(runs, name):
    parser = rebuilt_parser(name)
    for run in runs:
        job, argv = run["job"], run["torchrun"]
        args = parser.parse_args(argv)
        assert (args.nnodes, args.nproc_per_node) == (str(job.params["nodes"]), str(job.params["gpus_per_node"]))
        assert (args.rdzv_backend, args.rdzv_endpoint, args.rdzv_id) == ("c10d", "node7:33742", "4242")
        if run["plan"].jobs and "program:" not in run["experiment"].read_text():
            assert args.training_script == str(run["run_dir"] / torchrun.trainer_file())
            assert Path(args.training_script).read_bytes() == TRAINER.read_bytes()
    with pytest.raises(FlagError, match="unrecognized arguments: --nproc_per_nodes=2"):
        parser.parse_args(["--nproc_per_nodes=2", "train.py"])  # the rebuilt parser can refuse


def test_the_jobs_container_has_a_flag_set_and_mounts_the_run_directory(runs):
    for run in runs:
        job = run["job"]
        image = job.params["container_image"]
        if image is None:
            assert not any(a.startswith("--container") for a in run["srun"])
            continue
        assert f"--container-image={image}" in run["srun"]
        mounts = next(a for a in run["srun"] if a.startswith("--container-mounts="))
        assert mounts.endswith(f",{run['run_dir']}:{run['run_dir']}:ro"), mounts
        software = CONTAINERS[image]
        assert flagset(f"torchrun-{software.pytorch}").version == software.pytorch


def test_program_is_the_flag_set_of_the_containers_pytorch():
    plan = make_plan(ROOT / "experiments" / "torchrun-fsdp.yaml")
    site, _ = load_site("xe9680-8cx7")
    base = {"model": "llama2-7b", "site": "xe9680-8cx7", "launcher": "torchrun", "workload": "pretrain",
            "nodes": 1, "steps": 10, "gbs": 8, "seq_len": 4096}
    assert torchrun.program(JobSpec.model_validate(base), site).version == "v2.3.0"  # the site's NeMo 24.05
    newer = JobSpec.model_validate({**base, "container_image": "nvcr.io/nvidia/nemo:26.04.00"})
    assert torchrun.program(newer, site).version == "v2.11.0"
    ngc = JobSpec.model_validate({**base, "container_image": "nvcr.io/nvidia/pytorch:25.12-py3"})
    assert torchrun.program(ngc, site).version == "v2.10.0"
    unknown = JobSpec.model_validate({**base, "container_image": "example.org/mine:1"})
    assert torchrun.program(unknown, site) is None and container_image(unknown, site) == "example.org/mine:1"
    assert {j.params["container_image"] for j in plan.jobs} == {"nvcr.io/nvidia/pytorch:25.12-py3"}


def test_trainer_minimum_versions_agree_and_it_is_python_310_syntax():
    source = TRAINER.read_text()
    tree = ast.parse(source, feature_version=(3, 10))
    table = next(ast.literal_eval(n.value) for n in tree.body
                 if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "MIN_TORCH")
    assert table == torchrun.TRAINER_MIN_TORCH
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert "slurmkit" not in imported and "torch" in imported


@pytest.mark.torch
def test_torchrun_real_parser_and_trainer_parser_accept_every_job(runs):
    pytest.importorskip("torch", reason="torchrun's real parser needs torch (the trainer extra)")
    from torch.distributed.run import get_args_parser

    from slurmkit.trainer.train import parse_args
    for run in runs:
        job, argv = run["job"], run["torchrun"]
        args = get_args_parser().parse_args(argv)
        assert (args.nnodes, args.nproc_per_node, args.rdzv_endpoint) == (
            str(job.params["nodes"]), str(job.params["gpus_per_node"]), "node7:33742")
        if args.training_script.endswith(".py") and "/trainer/train-" in args.training_script:
            assert not args.module and not args.no_python
            trainer = parse_args(args.training_script_args)
            p = job.params
            assert (trainer.steps, trainer.global_batch_size, trainer.micro_batch_size, trainer.seq_len) == (
                p["steps"], p["gbs"], p["mbs"], p["seq_len"])
            assert (trainer.layers, trainer.hidden, trainer.heads, trainer.vocab, trainer.ffn_hidden) == (
                p["model_layers"], p["model_hidden"], p["model_heads"], p["model_vocab"], p["model_ffn_hidden"])
            assert (trainer.warmup_steps, trainer.precision) == (p["warmup_steps"], p["precision"])
            assert trainer.parallel in ("ddp", "fsdp")


def _trainer_experiment(write_yaml, **fields) -> Path:
    text = (ROOT / "experiments" / "torchrun-fsdp.yaml").read_text()
    text = text.replace("container_image: nvcr.io/nvidia/pytorch:25.12-py3\n", "")
    return write_yaml("exp.yaml", text + "".join(f"{k}: {v}\n" for k, v in fields.items()))


def test_validate_refuses_a_container_whose_pytorch_is_too_old_for_the_trainer(write_yaml):
    exp = _trainer_experiment(write_yaml)  # the sites' NeMo 24.05: PyTorch 2.3.0a0, FSDP
    with pytest.raises(ConfigError) as err:
        make_plan(exp)
    assert err.value.lines() == [(
        f"error: {exp}:13:11: the example trainer's fsdp mode needs PyTorch >= 2.6; container image"
        " nvcr.io/nvidia/nemo:24.05 ships PyTorch v2.3.0"
        " (https://docs.nvidia.com/nemo-framework/user-guide/24.09/softwarecomponentversions.html)"
        " (hint: use parallel: ddp, or an image with a newer PyTorch)")]
    ddp = write_yaml("ddp.yaml", exp.read_text().replace("parallel: fsdp", "parallel: ddp")
                     .replace("model: llama2-7b", "model: tiny-gpt").replace("seq_len: 4096", "seq_len: 256"))
    assert make_plan(ddp).jobs  # DDP runs on 2.3 (a model that DDP fits)


def test_validate_warns_about_an_image_it_does_not_know(write_yaml):
    exp = _trainer_experiment(write_yaml, container_image="example.org/pytorch:custom")
    plan = make_plan(exp)
    (warning,) = plan.warnings
    assert str(warning).startswith(
        f"{exp}:22:18: slurmkit does not know the PyTorch version of container image"
        " 'example.org/pytorch:custom'; the example trainer's fsdp mode needs PyTorch >= 2.6 and"
        " Python >= 3.10 (hint: check the image, or use one slurmkit knows: ")
    known = warning.hint.split(": ", 1)[1].split(", ")
    # images whose PyTorch is new enough for FSDP2, and not NeMo 24.05's 2.3.0a0
    assert {"nvcr.io/nvidia/pytorch:25.12-py3", "nvcr.io/nvidia/nemo:26.04.00"} <= set(known)
    assert "nvcr.io/nvidia/nemo:24.05" not in known
    with pytest.raises(ConfigError):
        make_plan(exp, strict=True)


def test_validate_refuses_fp8_for_the_trainer(write_yaml):
    with pytest.raises(ConfigError) as err:
        make_plan(_trainer_experiment(write_yaml, precision="fp8"))
    assert "the example trainer runs bf16, not fp8 (hint: use precision: bf16" in err.value.lines()[0]


def test_the_trainer_file_is_written_once_content_addressed_with_the_users_umask(tmp_path):
    plan = make_plan(ROOT / "experiments" / "local-smoke.yaml")
    old = os.umask(0o027)
    try:
        write_plan(plan, tmp_path / "run")
    finally:
        os.umask(old)
    (trainer,) = (tmp_path / "run" / "trainer").iterdir()
    data = TRAINER.read_bytes()
    assert trainer.name == f"train-{hashlib.sha256(data).hexdigest()[:12]}.py" and trainer.read_bytes() == data
    assert stat.S_IMODE(trainer.stat().st_mode) == 0o640  # 0o644 less the umask
    assert not any(p.name.endswith(".tmp") for p in trainer.parent.iterdir())


def test_the_trainer_flag_set_is_a_fresh_extraction_of_the_trainer():
    import importlib.util
    spec = importlib.util.spec_from_file_location("extract_trainer", ROOT / "scripts/programs/extract_trainer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shipped = (PROGRAMS_DIR / "slurmkit-trainer.json").read_text()
    assert shipped == module.dump_flag_set(module.flag_set()), \
        "rerun scripts/programs/extract_trainer.py --out slurmkit/data/programs/slurmkit-trainer.json"


def test_extra_args_are_checked_against_the_trainer_not_torchrun(write_yaml):
    base = (ROOT / "experiments" / "torchrun-fsdp.yaml").read_text()
    plan = make_plan(write_yaml("ok.yaml", base + 'extra_args: ["--seed", "3"]\n'))
    assert plan.jobs[0].text.endswith("    --precision bf16 \\\n    --seed 3\n")
    exp = write_yaml("typo.yaml", base + 'extra_args: ["--sede", "3", "--tee", "3"]\n')
    with pytest.raises(ConfigError) as err:
        make_plan(exp)
    assert err.value.lines() == [
        (f"error: {exp}:23:14: extra_args[0]: --sede is not a flag of slurmkit example trainer (this checkout)"
        " (hint: did you mean --seed?)"),
        (f"error: {exp}:23:29: extra_args[2]: --tee is not a flag of slurmkit example trainer (this checkout)"
        " (hint: did you mean --seed?)")]  # a torchrun flag, but it would reach the trainer
    own = write_yaml("own.yaml", base + 'program:\n  script: /w/train.py\nextra_args: ["--anything"]\n')
    assert make_plan(own).jobs  # the user's program: its flags are the user's business
