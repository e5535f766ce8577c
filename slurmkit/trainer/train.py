"""slurmkit's example trainer, in one file: a tiny GPT-style model on synthetic tokens, trained
under torchrun with torch.distributed (NCCL on GPUs, gloo on CPU) in DDP or FSDP2 mode.

This file imports the standard library and PyTorch only, never slurmkit: ``slurmkit generate``
copies it into the run directory and the job runs that copy (``torchrun ... <run dir>/trainer/
train-<hash>.py ARGS``), so a container needs only PyTorch (MIN_TORCH) on Python >= 3.10.
``python -m slurmkit.trainer ARGS`` runs the same code where slurmkit is installed. Rank 0 prints
one ``SKTRAIN step=...`` line per step (docs/contracts.md; slurmkit's ``trainer`` parser reads it).
"""
from __future__ import annotations

import argparse
import math
import os
import socket
import sys
import time
from datetime import timedelta
from typing import cast

import torch
import torch.distributed as dist
from torch import nn

# The oldest PyTorch each mode runs on. DDP: run on CPU with PyTorch 2.3.0, 2.6.0 and 2.13.0.
# FSDP: fully_shard is public API (torch.distributed.fsdp) from 2.6.0; its CPU (gloo) path needs
# a later release (2.6.0 fails on CPU for want of CUDA streams; 2.13.0 runs). slurmkit's
# launch/torchrun.py holds the same table (a test compares them) to check a container's PyTorch
# before a job is generated.
MIN_TORCH = {"ddp": (2, 3), "fsdp": (2, 6)}


class Block(nn.Module):
    """Pre-norm transformer block: causal self-attention, then an MLP."""

    def __init__(self, hidden: int, heads: int, ffn_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, ffn_hidden), nn.GELU(), nn.Linear(ffn_hidden, hidden))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TinyGPT(nn.Module):
    def __init__(self, vocab: int, seq_len: int, layers: int, hidden: int, heads: int,
                 ffn_hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.pos = nn.Parameter(torch.zeros(seq_len, hidden))
        self.blocks = nn.ModuleList(Block(hidden, heads, ffn_hidden) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, vocab, bias=False)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        seq = tokens.shape[1]
        mask = torch.triu(torch.ones(seq, seq, dtype=torch.bool, device=tokens.device), diagonal=1)
        x = self.embed(tokens) + self.pos[:seq]
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.norm(x))


def synthetic_batch(generator: torch.Generator, batch: int, seq_len: int, vocab: int) -> torch.Tensor:
    """Token sequences with learnable structure (next = 7 * current + 3 mod vocab, from a random
    start, with 10% noise), so the loss falls visibly within a few dozen steps."""
    tokens = torch.empty(batch, seq_len + 1, dtype=torch.long)
    tokens[:, 0] = torch.randint(0, vocab, (batch,), generator=generator)
    for t in range(seq_len):
        tokens[:, t + 1] = (7 * tokens[:, t] + 3) % vocab
    noise = torch.rand(tokens.shape, generator=generator) < 0.1
    random = torch.randint(0, vocab, tokens.shape, generator=generator)
    return torch.where(noise, random, tokens)


def parse_args(argv: list[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="slurmkit's example trainer (docs/contracts.md)")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--global-batch-size", type=int, required=True)
    p.add_argument("--micro-batch-size", type=int, required=True)
    p.add_argument("--seq-len", type=int, required=True)
    p.add_argument("--layers", type=int, required=True)
    p.add_argument("--hidden", type=int, required=True)
    p.add_argument("--heads", type=int, required=True)
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--ffn-hidden", type=int, default=None, help="default: 4 * hidden")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parallel", choices=("ddp", "fsdp"), default="ddp")
    p.add_argument("--warmup-steps", type=int, default=0, help="learning-rate warm-up steps")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: autocast matmuls to bfloat16 on the job's device (weights stay fp32)")
    return p.parse_args(argv)


def torch_version(text: str) -> tuple[int, int]:
    """(major, minor) of a version string such as '2.3.0a0+6ddf5cf' or '2.13.0+cpu'."""
    major, minor = text.split("+")[0].split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def pick_device(local_rank: int, cuda: bool) -> torch.device:
    """One GPU per process, chosen by torchrun's LOCAL_RANK; the CPU without CUDA."""
    return torch.device("cuda", local_rank) if cuda else torch.device("cpu")


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """bf16 autocast on the job's device type (CUDA, or CPU where there is no GPU)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def init_distributed() -> tuple[int, int, int, torch.device]:
    """Rank, local rank and world size from torchrun's environment (1 process without it)."""
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(local_rank, torch.cuda.is_available())
    if "RANK" in os.environ:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend_for(device), timeout=timedelta(minutes=5))
    return rank, local_rank, world, device


def wrap(model: TinyGPT, mode: str, device: torch.device) -> nn.Module:
    if not dist.is_initialized():
        return model
    if mode == "fsdp":  # FSDP2: shards each block, then the rest; works on CPU with gloo
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        mesh = init_device_mesh(device.type, (dist.get_world_size(),))
        for block in model.blocks:
            fully_shard(block, mesh=mesh)
        # fully_shard returns the module itself, its class extended with FSDPModule
        return cast(nn.Module, fully_shard(model, mesh=mesh))
    return nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def lr_at(step: int, args: argparse.Namespace) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < args.warmup_steps:
        return args.lr * (step + 1) / args.warmup_steps
    progress = (step - args.warmup_steps) / max(1, args.steps - args.warmup_steps)
    return args.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


def grad_accumulation(args: argparse.Namespace, world: int) -> int:
    per_step = args.micro_batch_size * world
    if args.global_batch_size % per_step:
        sys.exit(f"error: --global-batch-size {args.global_batch_size} is not a multiple of "
                 f"micro batch {args.micro_batch_size} x world size {world}")
    return args.global_batch_size // per_step


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, args: argparse.Namespace,
               generator: torch.Generator, accum: int, device: torch.device) -> tuple[float, float]:
    """One optimizer step over ``accum`` micro batches; returns (local mean loss, grad norm)."""
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for _ in range(accum):
        tokens = synthetic_batch(generator, args.micro_batch_size, args.seq_len, args.vocab).to(device)
        with autocast(device, args.precision):
            logits = model(tokens[:, :-1])
        # the loss in fp32 whatever the logits' dtype
        loss = nn.functional.cross_entropy(logits.float().reshape(-1, args.vocab), tokens[:, 1:].reshape(-1))
        (loss / accum).backward()
        total += loss.item() / accum
    norm = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    if hasattr(norm, "full_tensor"):  # FSDP2: a DTensor holding the norm over every shard
        norm = norm.full_tensor()
    optimizer.step()
    return total, float(norm)


def mean_over_ranks(value: float, device: torch.device) -> float:
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.item() / dist.get_world_size()


def say(line: str) -> None:
    """One log line in one write: torchrun runs workers unbuffered (``python -u``), where print()
    writes the text and its newline separately and another rank's line can land in between."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None, prog: str | None = None) -> None:
    args = parse_args(argv, prog)
    if torch_version(torch.__version__) < MIN_TORCH[args.parallel]:
        sys.exit(f"error: the example trainer's --parallel {args.parallel} needs PyTorch >="
                 f" {'.'.join(map(str, MIN_TORCH[args.parallel]))}, found {torch.__version__}")
    rank, local_rank, world, device = init_distributed()
    say(f"SKTRAIN start rank={rank} local_rank={local_rank} world_size={world} host={socket.gethostname()}")
    accum = grad_accumulation(args, world)
    torch.manual_seed(args.seed)  # same initial weights on every rank
    tiny = TinyGPT(args.vocab, args.seq_len, args.layers, args.hidden, args.heads,
                   args.ffn_hidden or 4 * args.hidden).to(device)
    model = wrap(tiny, args.parallel, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed * 1000 + rank)  # different data per rank
    tokens_per_step_per_rank = args.global_batch_size * args.seq_len / world
    loss = float("nan")
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args)
        start = time.perf_counter()
        local_loss, grad_norm = train_step(model, optimizer, args, generator, accum, device)
        loss = mean_over_ranks(local_loss, device)
        step_time_s = time.perf_counter() - start
        if rank == 0:
            say(f"SKTRAIN step={step + 1}/{args.steps} loss={loss:.6f} lr={lr_at(step, args):.6g} "
                f"grad_norm={grad_norm:.6f} step_time_s={step_time_s:.6f} "
                f"tokens_per_s_per_gpu={tokens_per_step_per_rank / step_time_s:.3f} "
                f"time_unix={time.time():.3f}")
    if rank == 0:
        say(f"SKTRAIN done steps={args.steps} final_loss={loss:.6f}")
    if dist.is_initialized():
        dist.barrier()  # no rank tears gloo down while another still talks (aborts under FSDP)
        dist.destroy_process_group()
        # torch's C++ teardown at interpreter exit sometimes aborts ("terminate called without
        # an active exception") after gloo+FSDP runs; the work is done and flushed, so skip it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":  # run as a file: the copy in a run directory
    main()
