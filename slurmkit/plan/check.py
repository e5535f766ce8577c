"""Validation of one resolved sweep point against its site and model.

Each rule returns Problems located at the YAML line that set the offending value. Errors block
generation; warnings never do unless ``--strict`` turns them into errors.
"""
from __future__ import annotations

from collections.abc import Callable

from slurmkit.config.catalog import ModelArch
from slurmkit.config.experiment import DATASET_NAMES, JobSpec
from slurmkit.config.site import Site
from slurmkit.errors import Location, Problem
from slurmkit.plan.launch import launcher_module, torchrun
from slurmkit.plan.memory import MemoryEstimate

# field names -> where the first one present was set; (name, i) -> the i-th element of a list field
Where = Callable[..., Location]
FIT_WARNING_FRACTION = 0.9


def check_point(spec: JobSpec, site: Site, model: ModelArch, where: Where, *,
                custom_program: bool = False) -> list[Problem]:
    """Rules that need no memory estimate; returns every problem found."""
    problems: list[Problem] = []
    for rule in (_nodes, _launcher, _parallel_shape, _divisibility, _sequence, _steps, _site_limits):
        problems += rule(spec, site, model, where)
    problems += _workload(spec, site, where, custom_program)
    return problems


def _err(message: str, where: Location, hint: str | None = None) -> Problem:
    return Problem(message, where, hint, "error")


def _warn(message: str, where: Location, hint: str | None = None) -> Problem:
    return Problem(message, where, hint, "warning")


def data_parallel(spec: JobSpec, site: Site) -> int | None:
    """DP size, or None when TP*PP*CP does not divide the GPU count."""
    gpus = spec.nodes * site.gpu.count_per_node
    model_parallel = spec.tp * spec.pp * spec.cp
    return gpus // model_parallel if gpus % model_parallel == 0 else None


def _nodes(spec: JobSpec, site: Site, model: ModelArch, where: Where) -> list[Problem]:
    if spec.nodes > site.nodes.count:
        return [_err(f"nodes={spec.nodes} is more than site {site.name} has ({site.nodes.count})",
                     where("nodes"), f"use at most {site.nodes.count} nodes on {site.name}")]
    return []


def _launcher(spec: JobSpec, site: Site, model: ModelArch, where: Where) -> list[Problem]:
    if spec.launcher == "torchrun" and (spec.tp, spec.pp, spec.cp, spec.vpp) != (1, 1, 1, None):
        return [_err("the torchrun launcher runs data parallelism only (tp, pp, cp 1; no vpp)",
                     where(*[n for n in ("tp", "pp", "cp", "vpp") if getattr(spec, n) not in (1, None)]),
                     "use launcher nemo or megatron for model parallelism")]
    if spec.launcher == "megatron" and spec.workload != "pretrain":
        return [_err(f"the megatron launcher runs pretraining only, not {spec.workload}",
                     where("workload"), "use launcher nemo for sft, lora and ptuning")]
    module = launcher_module(spec.launcher)  # what the launcher's own program refuses
    return module.check(spec, site, where) if hasattr(module, "check") else []


def _parallel_shape(spec: JobSpec, site: Site, model: ModelArch, where: Where) -> list[Problem]:
    per_node = site.gpu.count_per_node
    gpus = spec.nodes * per_node
    problems = []
    model_parallel = spec.tp * spec.pp * spec.cp
    if gpus % model_parallel:
        problems.append(_err(
            f"tp*pp*cp = {spec.tp}*{spec.pp}*{spec.cp} = {model_parallel} does not divide the {gpus} GPUs"
            f" (nodes={spec.nodes} x {per_node} per node on {site.name})", where("tp"),
            "choose tp, pp and cp whose product divides the GPU count"))
    else:
        dp = gpus // model_parallel
        if spec.gbs % (spec.mbs * dp):
            problems.append(_err(
                f"gbs={spec.gbs} is not divisible by mbs*dp = {spec.mbs}*{dp} = {spec.mbs * dp}",
                where("gbs"), f"use a multiple of {spec.mbs * dp}"))
    if spec.tp > per_node:
        problems.append(_warn(f"tp={spec.tp} is larger than the {per_node} GPUs per node of {site.name}",
                              where("tp"), "tensor parallelism across nodes is slow"))
    return problems


def _divisibility(spec: JobSpec, site: Site, model: ModelArch, where: Where) -> list[Problem]:
    problems = []
    if model.layers % spec.pp:
        problems.append(_err(f"model {spec.model} has {model.layers} layers, not divisible by pp={spec.pp}",
                             where("pp"), "choose pp dividing the layer count"))
    if spec.vpp is not None:
        if spec.pp == 1:
            problems.append(_err("vpp needs pipeline parallelism (pp > 1)", where("vpp")))
        elif model.layers % (spec.pp * spec.vpp):
            problems.append(_err(
                f"model {spec.model} has {model.layers} layers, not divisible by pp*vpp = {spec.pp * spec.vpp}",
                where("vpp"), "choose vpp so that layers / (pp*vpp) is whole"))
    for count, what in ((model.heads, "attention heads"), (model.kv_heads, "KV heads")):
        if count % spec.tp:
            problems.append(_err(f"model {spec.model} has {count} {what}, not divisible by tp={spec.tp}",
                                 where("tp"), f"choose tp dividing {count}"))
    return problems


def _sequence(spec: JobSpec, site: Site, model: ModelArch, where: Where) -> list[Problem]:
    problems = []
    if spec.seq_len > model.max_seq_len:
        problems.append(_warn(f"seq_len={spec.seq_len} is above the maximum of {spec.model} ({model.max_seq_len})",
                              where("seq_len")))
    if spec.sequence_parallel and spec.seq_len % spec.tp:
        problems.append(_err(f"seq_len={spec.seq_len} must be divisible by tp={spec.tp} with sequence parallelism",
                             where("seq_len")))
    if spec.cp > 1 and spec.seq_len % (2 * spec.cp):
        problems.append(_err(f"seq_len={spec.seq_len} must be divisible by 2*cp = {2 * spec.cp}", where("cp")))
    if spec.precision == "fp8" and site.gpu.peak_tflops_fp8 is None:
        problems.append(_err(f"site {site.name}'s GPU ({site.gpu.model}) has no FP8", where("precision")))
    return problems


def _steps(spec: JobSpec, site: Site, model: ModelArch, where: Where) -> list[Problem]:
    problems = []
    if spec.warmup_steps >= spec.steps:
        problems.append(_err(f"warmup_steps={spec.warmup_steps} leaves no timed steps of {spec.steps}",
                             where("warmup_steps", "steps"), "use fewer warm-up steps than steps"))
    if spec.checkpoint_interval is not None and spec.checkpoint_interval > spec.steps:
        problems.append(_warn(f"checkpoint_interval={spec.checkpoint_interval} is above steps={spec.steps}:"
                              " no checkpoint will be written", where("checkpoint_interval")))
    return problems


def _site_limits(spec: JobSpec, site: Site, model: ModelArch, where: Where) -> list[Problem]:
    limit = site.scheduler.max_time_limit_min
    if limit is not None and spec.time_limit_min is not None and spec.time_limit_min > limit:
        return [_err(f"time_limit_min={spec.time_limit_min} is above site {site.name}'s limit ({limit})",
                     where("time_limit_min"))]
    return []


def _workload(spec: JobSpec, site: Site, where: Where, custom_program: bool) -> list[Problem]:
    problems = []
    finetune = spec.workload in ("sft", "lora", "ptuning")
    if finetune and spec.dataset == "synthetic":
        problems.append(_err(f"{spec.workload} needs a dataset (dolly, alpaca or a folder), not synthetic",
                             where("dataset", "workload")))
    if spec.dataset in DATASET_NAMES[1:] and "datasets" not in site.storage:
        problems.append(_err(f"dataset {spec.dataset} is looked up on the datasets mount, which site"
                             f" {site.name} does not declare", where("dataset"),
                             "add storage.datasets to the site or give a path"))
    if spec.launcher == "torchrun" and not custom_program and spec.workload != "pretrain":
        problems.append(_err("the example trainer (slurmkit.trainer) runs pretraining only",
                             where("workload"), "name your own program under `program:`"))
    if spec.launcher == "torchrun" and not custom_program:
        problems += torchrun.check_trainer(spec, site, where)  # can the job's container run the trainer
    return problems


def check_memory(spec: JobSpec, site: Site, estimate: MemoryEstimate, where: Where) -> list[Problem]:
    """Error when the estimate exceeds GPU memory, warning when it is close."""
    total, capacity = estimate.total_gib, site.gpu.mem_gib
    shape = f"{spec.model} {spec.workload} on {spec.nodes}x{site.gpu.count_per_node} {site.gpu.model}" \
            f" (tp={spec.tp} pp={spec.pp} cp={spec.cp} mbs={spec.mbs} seq_len={spec.seq_len})"
    if total > capacity:
        return [_err(f"does not fit: {shape} needs about {estimate.describe()} per GPU, above"
                     f" {capacity:g} GiB", where("model"),
                     "add nodes, raise tp/pp, use recompute: full, or lower mbs/seq_len")]
    if total > FIT_WARNING_FRACTION * capacity:
        return [_warn(f"tight fit: {shape} needs about {total:.1f} of {capacity:g} GiB per GPU",
                      where("model"))]
    return []
