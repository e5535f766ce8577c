"""Command line, distributed setup and the training loop of the example trainer."""
from __future__ import annotations

import argparse
import math
import os
import socket
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from slurmkit.trainer.model import TinyGPT, synthetic_batch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m slurmkit.trainer", description=__doc__)
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
    return p.parse_args(argv)


def init_distributed() -> tuple[int, int, int, torch.device]:
    """Rank, local rank and world size from torchrun's environment (1 process without it)."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if "RANK" in os.environ:
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=5))
    return rank, local_rank, world, device


def wrap(model: nn.Module, mode: str, device: torch.device) -> nn.Module:
    if not dist.is_initialized():
        return model
    if mode == "fsdp":  # FSDP2: shards each block, then the rest; works on CPU with gloo
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        mesh = init_device_mesh(device.type, (dist.get_world_size(),))
        for block in model.blocks:
            fully_shard(block, mesh=mesh)
        return fully_shard(model, mesh=mesh)
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


def train_step(model, optimizer, args, generator, accum: int, device) -> tuple[float, float]:
    """One optimizer step over ``accum`` micro batches; returns (local mean loss, grad norm)."""
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for _ in range(accum):
        tokens = synthetic_batch(generator, args.micro_batch_size, args.seq_len, args.vocab).to(device)
        logits = model(tokens[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, args.vocab), tokens[:, 1:].reshape(-1))
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


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rank, local_rank, world, device = init_distributed()
    print(f"SKTRAIN start rank={rank} local_rank={local_rank} world_size={world} "
          f"host={socket.gethostname()}", flush=True)
    accum = grad_accumulation(args, world)
    torch.manual_seed(args.seed)  # same initial weights on every rank
    model = TinyGPT(args.vocab, args.seq_len, args.layers, args.hidden, args.heads,
                    args.ffn_hidden or 4 * args.hidden).to(device)
    model = wrap(model, args.parallel, device)
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
            print(f"SKTRAIN step={step + 1}/{args.steps} loss={loss:.6f} lr={lr_at(step, args):.6g} "
                  f"grad_norm={grad_norm:.6f} step_time_s={step_time_s:.6f} "
                  f"tokens_per_s_per_gpu={tokens_per_step_per_rank / step_time_s:.3f} "
                  f"time_unix={time.time():.3f}", flush=True)
    if rank == 0:
        print(f"SKTRAIN done steps={args.steps} final_loss={loss:.6f}", flush=True)
    if dist.is_initialized():
        dist.barrier()  # no rank tears gloo down while another still talks (aborts under FSDP)
        dist.destroy_process_group()
        # torch's C++ teardown at interpreter exit sometimes aborts ("terminate called without
        # an active exception") after gloo+FSDP runs; the work is done and flushed, so skip it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
