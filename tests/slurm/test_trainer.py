"""The example trainer (slurmkit.trainer): log format of docs/contracts.md, loss falls, DDP and
FSDP agree under torchrun with gloo on CPU."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the example trainer needs torch (the trainer extra)")
pytestmark = pytest.mark.torch

STEP = re.compile(r"^SKTRAIN step=(\d+)/(\d+) loss=(\S+) lr=(\S+) grad_norm=(\S+) step_time_s=(\S+) "
                  r"tokens_per_s_per_gpu=(\S+) time_unix=(\S+)$")
ARGS = ["--global-batch-size", "8", "--micro-batch-size", "2", "--seq-len", "32", "--layers", "2",
        "--hidden", "64", "--heads", "4", "--vocab", "256", "--lr", "3e-3"]


def losses(output: str) -> list[float]:
    return [float(m.group(3)) for m in map(STEP.match, output.splitlines()) if m]


def test_single_process_log_format_and_loss_falls():
    out = subprocess.run([sys.executable, "-m", "slurmkit.trainer", "--steps", "25", *ARGS,
                          "--warmup-steps", "2"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert re.fullmatch(r"SKTRAIN start rank=0 local_rank=0 world_size=1 host=\S+", lines[0])
    assert all(STEP.match(line) for line in lines[1:-1]) and len(lines) == 27
    assert re.fullmatch(r"SKTRAIN done steps=25 final_loss=\d+\.\d+", lines[-1])
    values = losses(out)
    assert sum(values[-5:]) / 5 < values[0] - 1.0


def test_ddp_and_fsdp_agree_across_two_ranks():
    torchrun = Path(sys.executable).with_name("torchrun")
    results = {}
    for mode in ("ddp", "fsdp"):
        proc = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "slurmkit.trainer",
                               "--steps", "6", *ARGS, "--parallel", mode],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert sorted(re.findall(r"SKTRAIN start rank=(\d)", proc.stdout)) == ["0", "1"]
        results[mode] = losses(proc.stdout)
    assert len(results["ddp"]) == 6
    assert results["ddp"] == pytest.approx(results["fsdp"], rel=1e-4)


def test_batch_that_does_not_divide_is_an_error():
    proc = subprocess.run([sys.executable, "-m", "slurmkit.trainer", "--steps", "1", *ARGS,
                           "--micro-batch-size", "3"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "--global-batch-size 8 is not a multiple of micro batch 3 x world size 1" in proc.stderr
