"""Megatron-LM: ``pretrain_gpt.py`` with its argparse flags."""
from __future__ import annotations

from slurmkit.experiment import JobSpec
from slurmkit.launch.common import Job
from slurmkit.launch.programs import FlagSet, KeySet
from slurmkit.site import Site


def command(job: Job) -> list[list[str]]:
    """``python pretrain_gpt.py`` with Megatron-LM flags, one flag (and its value) per line."""
    spec, model, site, paths = job.spec, job.model, job.site, job.paths
    a: list[list[str]] = [
        [f"{site.software.megatron_dir.rstrip('/')}/pretrain_gpt.py"], ["--use-mcore-models"],
        ["--transformer-impl", "transformer_engine"],
        ["--num-layers", str(model.layers)], ["--hidden-size", str(model.hidden)],
        ["--ffn-hidden-size", str(model.ffn_hidden)], ["--num-attention-heads", str(model.heads)],
        ["--seq-length", str(spec.seq_len)],
        ["--max-position-embeddings", str(max(spec.seq_len, model.max_seq_len))],
        ["--tensor-model-parallel-size", str(spec.tp)], ["--pipeline-model-parallel-size", str(spec.pp)],
        ["--context-parallel-size", str(spec.cp)],
        ["--micro-batch-size", str(spec.mbs)], ["--global-batch-size", str(spec.gbs)],
        ["--train-iters", str(spec.steps)], ["--lr", str(spec.lr)],
        ["--lr-warmup-iters", str(spec.warmup_steps)],
        ["--bf16"], ["--use-distributed-optimizer"], ["--use-flash-attn"],
        ["--log-interval", "1"], ["--log-throughput"], ["--eval-iters", "0"],
        ["--eval-interval", str(spec.steps)]]
    if model.kv_heads != model.heads:
        a += [["--group-query-attention"], ["--num-query-groups", str(model.kv_heads)]]
    if model.mlp == "swiglu":
        a += [["--swiglu"], ["--normalization", "RMSNorm"], ["--position-embedding-type", "rope"],
              ["--untie-embeddings-and-output-weights"], ["--disable-bias-linear"]]
    if spec.vpp is not None:
        a.append(["--num-layers-per-virtual-pipeline-stage", str(model.layers // (spec.pp * spec.vpp))])
    if spec.sequence_parallel:
        a.append(["--sequence-parallel"])
    if spec.precision == "fp8":
        a.append(["--fp8-format", "hybrid"])
    if spec.recompute == "selective":
        a.append(["--recompute-activations"])
    elif spec.recompute == "full":
        a += [["--recompute-granularity", "full"], ["--recompute-method", "uniform"],
              ["--recompute-num-layers", "1"]]
    if paths.data is None:
        a += [["--mock-data"], ["--tokenizer-type", "NullTokenizer"], ["--vocab-size", str(model.vocab)]]
    else:
        a += [["--data-path", paths.data], ["--split", "99,1,0"]]
    if paths.checkpoint_dir:
        a += [["--save", paths.checkpoint_dir], ["--load", paths.checkpoint_dir],
              ["--save-interval", str(spec.checkpoint_interval)]]
    return a


def program(spec: JobSpec, site: Site) -> KeySet | FlagSet | None:
    """Not described yet."""
    return None
