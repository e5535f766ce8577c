"""The example trainer: the file a run directory carries runs where slurmkit cannot be imported
(alone and as 2 ranks under torchrun, DDP and FSDP agreeing), its log format (docs/contracts.md)
and falling loss, ``python -m slurmkit.trainer`` for users with slurmkit installed, and its CUDA
choices (device from LOCAL_RANK, NCCL, bf16 autocast) as far as a machine without a GPU allows."""
from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from slurmkit.plan.make import make_plan as plan_of
from slurmkit.plan.render import render_plan, write_plan


def make_plan(experiment, *args, templates_dir=None, **kwargs):
    """The plan with its scripts rendered, as `generate` makes it."""
    return render_plan(plan_of(experiment, *args, **kwargs), templates_dir)

pytest.importorskip("torch", reason="the example trainer needs torch (the trainer extra)")
pytestmark = pytest.mark.torch

STEP = re.compile(r"^SKTRAIN step=(\d+)/(\d+) loss=(\S+) lr=(\S+) grad_norm=(\S+) step_time_s=(\S+) "
                  r"tokens_per_s_per_gpu=(\S+) time_unix=(\S+)$")
ARGS = ["--global-batch-size", "8", "--micro-batch-size", "2", "--seq-len", "32", "--layers", "2",
        "--hidden", "64", "--heads", "4", "--vocab", "256", "--lr", "3e-3"]
GOLDEN_LOCAL = Path(__file__).parents[1] / "config" / "data" / "golden" / "torchrun-local.yaml"


def losses(output: str) -> list[float]:
    return [float(m.group(3)) for m in map(STEP.match, output.splitlines()) if m]


@pytest.fixture(scope="module")
def carried(tmp_path_factory) -> Path:
    """The trainer file `generate` writes into a run directory (absolute path)."""
    run_dir = tmp_path_factory.mktemp("run")
    write_plan(make_plan(GOLDEN_LOCAL), run_dir)
    (trainer,) = (run_dir / "trainer").iterdir()
    return trainer


def test_the_blocker_really_blocks_slurmkit(no_slurmkit):
    env = {**os.environ, **no_slurmkit}
    proc = subprocess.run([sys.executable, "-c", "import slurmkit"], env=env, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 1 and "No module named 'slurmkit' (blocked by the test)" in proc.stderr


def test_carried_file_trains_without_slurmkit(carried, no_slurmkit):
    env = {**os.environ, **no_slurmkit}
    out = subprocess.run([sys.executable, str(carried), "--steps", "25", *ARGS, "--warmup-steps", "2"],
                         env=env, capture_output=True, text=True, check=True, cwd=carried.parent).stdout
    lines = out.splitlines()
    assert re.fullmatch(r"SKTRAIN start rank=0 local_rank=0 world_size=1 host=\S+", lines[0])
    assert all(STEP.match(line) for line in lines[1:-1]) and len(lines) == 27
    assert re.fullmatch(r"SKTRAIN done steps=25 final_loss=\d+\.\d+", lines[-1])
    values = losses(out)
    assert sum(values[-5:]) / 5 < values[0] - 1.0


def test_carried_file_ddp_and_fsdp_agree_across_two_ranks_without_slurmkit(carried, no_slurmkit):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, **no_slurmkit}
    results = {}
    for mode in ("ddp", "fsdp"):
        proc = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", str(carried),
                               "--steps", "6", *ARGS, "--parallel", mode],
                              env=env, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert sorted(re.findall(r"SKTRAIN start rank=(\d)", proc.stdout)) == ["0", "1"]
        results[mode] = losses(proc.stdout)
    assert len(results["ddp"]) == 6
    assert results["ddp"] == pytest.approx(results["fsdp"], rel=1e-4)


def test_module_entry_point_still_runs_for_installed_slurmkit():
    out = subprocess.run([sys.executable, "-m", "slurmkit.trainer", "--steps", "3", *ARGS, "--precision", "bf16"],
                         capture_output=True, text=True, check=True).stdout
    assert len(losses(out)) == 3 and "SKTRAIN done steps=3" in out


def test_bf16_trains_and_computes_in_bfloat16():
    """The GPU precision path (autocast to bf16, fp32 weights and loss), here on the CPU device."""
    import torch

    from slurmkit.trainer import train
    args = train.parse_args(["--steps", "8", *ARGS, "--precision", "bf16"])
    torch.manual_seed(0)  # the model's initial weights: an unlucky draw can make 8 steps go up
    model = train.TinyGPT(args.vocab, args.seq_len, args.layers, args.hidden, args.heads, 4 * args.hidden)
    seen = []
    model.head.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(0)
    values = [train.train_step(model, optimizer, args, generator, 1, torch.device("cpu"))[0] for _ in range(8)]
    assert set(seen) == {torch.bfloat16} and model.head.weight.dtype == torch.float32
    assert all(math.isfinite(v) for v in values) and values[-1] < values[0]


def test_cuda_choices_without_a_gpu(monkeypatch):
    """What init_distributed does on a GPU node (device from LOCAL_RANK, set_device, NCCL) with
    CUDA's runtime calls replaced by recorders; the real NCCL path needs a GPU (not run here)."""
    import torch
    import torch.distributed as dist

    from slurmkit.trainer import train
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available. Disabling" on this machine
        cast = train.autocast(torch.device("cuda", 1), "bf16")
    assert (cast.device, cast.fast_dtype) == ("cuda", torch.bfloat16)
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: calls.append(("set_device", device)))
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: calls.append(("init", backend)))
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert train.init_distributed() == (5, 1, 8, torch.device("cuda", 1))
    assert calls == [("set_device", torch.device("cuda", 1)), ("init", "nccl")]
    assert train.backend_for(torch.device("cpu")) == "gloo"


def test_old_pytorch_is_refused_with_the_version_it_needs(monkeypatch, capsys):
    from slurmkit.trainer import train
    assert train.torch_version("2.3.0a0+ebedce2") == (2, 3) and train.torch_version("2.13.0+cpu") == (2, 13)
    monkeypatch.setattr(train.torch, "__version__", "2.5.1+cu124")
    with pytest.raises(SystemExit) as exc:
        train.main(["--steps", "1", *ARGS, "--parallel", "fsdp"])
    assert exc.value.code == "error: the example trainer's --parallel fsdp needs PyTorch >= 2.6, found 2.5.1+cu124"


def test_batch_that_does_not_divide_is_an_error(carried):
    proc = subprocess.run([sys.executable, str(carried), "--steps", "1", *ARGS, "--micro-batch-size", "3"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "--global-batch-size 8 is not a multiple of micro batch 3 x world size 1" in proc.stderr
