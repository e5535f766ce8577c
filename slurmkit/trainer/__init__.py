"""The example trainer: a tiny GPT-style model on synthetic tokens (`python -m slurmkit.trainer`).

It is the one part of slurmkit that imports torch; the rest of the package never imports this
module. Launched by torchrun (one process per GPU, or per node on CPU), it trains with
torch.distributed (NCCL on GPUs, gloo on CPU) in DDP or FSDP mode, and rank 0 prints one
`SKTRAIN step=...` line per step in the format of docs/contracts.md.
"""
