"""NeMo 2.x: NeMo's own Llama 3 pretraining recipe, built and run by each ``srun`` task.

What a real user runs: NVIDIA's NeMo 2 benchmarks (dgxc-benchmarking up to v25.08) call NeMo's
``scripts/performance/llm/pretrain_*.py``; ``pretrain_llama3_8b.py`` (v2.5.0rc0) builds
``llm.recipes.llama3_8b.pretrain_recipe(performance_mode=True)``, sets its Config tree
(``helpers.py``: ``set_primary_perf_configs``, ``set_exp_logging_configs``), gives it the null
tokenizer, and has NeMo-Run's ``SlurmExecutor`` submit a job whose ``srun`` starts one task per
GPU (``executors.py``: ``ntasks_per_node`` = GPUs), each building the recipe and calling it.
slurmkit writes that job itself: each task runs the carried entry
(``entries/nemo2_pretrain.py``), which builds the same recipe, applies this module's settings and
calls ``nemo_run.run(recipe, direct=True)`` (NVIDIA-NeMo/Run v0.6.0 ``run/api.py``: direct runs
``fdl.build(recipe)()`` in the process). No NeMo-Run executor, no second submission.

Every setting is a key of the recipe's Config tree at the image's NeMo version
(``nemo2-<tag>-<recipe>.json``, written by scripts/programs/extract_nemo2.py); ``extra_args``
are more settings, checked against the same keys (``program``).
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import resources

from slurmkit.config.catalog import ModelArch
from slurmkit.config.experiment import JobSpec
from slurmkit.config.site import Site
from slurmkit.errors import Location, Problem
from slurmkit.plan.launch.common import Job, container_image, versioned_program
from slurmkit.plan.launch.programs import KeySet, load_program
from slurmkit.plan.launch.software import CONTAINERS, container_software
from slurmkit.plan.runfile import RunFile

# slurmkit model -> module of nemo.collections.llm.recipes (NeMo v2.5.0)
RECIPES = {"llama3-8b": "llama3_8b", "llama3-70b": "llama3_70b"}
# Recipes whose trainer() sets a pipeline dtype (llama3_70b.py: torch.bfloat16; llama3_8b.py:
# None). llm.pretrain asserts one for pp > 1 (api.py _validate_config), and a torch dtype is not
# a value the entry's key=value settings can carry, so pp > 1 needs one of these recipes.
PIPELINE_DTYPE_RECIPES = {"llama3_70b"}
# What the performance scripts' Slurm executor exports (scripts/performance/executors.py at
# v2.5.0rc0: PERF_ENV_VARS, and expandable segments on every GPU but B200)
PERF_ENV = {"TORCH_NCCL_AVOID_RECORD_STREAMS": "1", "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "False", "NCCL_NVLS_ENABLE": "0", "NVTE_FLASH_ATTN": "1",
            "NVTE_FUSED_ATTN": "1", "NEMO_LOG_MEMORY_USAGE": "1",
            "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}


@functools.lru_cache(maxsize=1)
def entry_file() -> RunFile:
    """The entry as the run directory carries it (``nemo2/nemo2_pretrain-<hash>.py``)."""
    data = resources.files("slurmkit.plan.launch.entries").joinpath("nemo2_pretrain.py").read_bytes()
    return RunFile.content_addressed("nemo2", "nemo2_pretrain", ".py", data)


def environment(spec: JobSpec) -> dict[str, str]:
    """PERF_ENV and what ``PerfEnvPlugin`` (nemo/lightning/run/plugins.py, v2.5.0) adds on Hopper:
    one device connection with TP or CP (communication kernels queue ahead of the GEMMs),
    LayerNorm SM margins, high-priority NCCL streams, and the pipeline chunk size the 8B/70B
    scripts pass when pp > 1."""
    env = {**PERF_ENV, "NVTE_FWD_LAYERNORM_SM_MARGIN": "16", "NVTE_BWD_LAYERNORM_SM_MARGIN": "16",
           "TORCH_NCCL_HIGH_PRIORITY": "1"}
    if spec.tp > 1 or spec.cp > 1:
        env["CUDA_DEVICE_MAX_CONNECTIONS"] = "1"
    if spec.pp > 1:
        env["NCCL_P2P_NET_CHUNKSIZE"] = "2097152"
    return env


def _value(value: object) -> str:
    """A setting's value as the entry reads it back (``ast.literal_eval``, else a string)."""
    return repr(value) if isinstance(value, str) and value in ("None", "True", "False") else str(value)


def settings(spec: JobSpec, site: Site) -> list[tuple[str, object]]:
    """(key, value) for the recipe's Config tree, as the performance scripts set them (helpers.py)."""
    s: list[tuple[str, object]] = [
        ("trainer.num_nodes", spec.nodes), ("trainer.devices", site.gpu.count_per_node),
        ("trainer.max_steps", spec.steps),
        ("trainer.val_check_interval", spec.steps), ("trainer.limit_val_batches", 0),  # no validation
        ("trainer.log_every_n_steps", 1),  # one timing line per step
        ("trainer.enable_checkpointing", False), ("trainer.logger", False),
        ("log.ckpt", None), ("log.tensorboard", None),
        ("trainer.strategy.tensor_model_parallel_size", spec.tp),
        ("trainer.strategy.pipeline_model_parallel_size", spec.pp),
        ("trainer.strategy.context_parallel_size", spec.cp),
        ("trainer.strategy.virtual_pipeline_model_parallel_size", spec.vpp),
        ("trainer.strategy.sequence_parallel", spec.sequence_parallel),
        ("data.seq_length", spec.seq_len), ("model.config.seq_length", spec.seq_len),
        ("data.micro_batch_size", spec.mbs), ("data.global_batch_size", spec.gbs),
        ("data.num_train_samples", spec.steps * spec.gbs),  # one epoch for the whole run
        # the recipe leaves the scheduler's max_steps at CosineAnnealingScheduler's default (10)
        # and min_lr at a tenth of its own 3e-4 (recipes/optim/adam.py)
        ("optim.config.lr", spec.lr), ("optim.lr_scheduler.max_steps", spec.steps),
        ("optim.lr_scheduler.warmup_steps", spec.warmup_steps),
        ("optim.lr_scheduler.min_lr", float(f"{spec.lr / 10:g}")),
    ]
    if spec.recompute == "full":
        s += [("model.config.recompute_granularity", "full"), ("model.config.recompute_method", "uniform"),
              ("model.config.recompute_num_layers", 1)]
    elif spec.recompute == "selective":
        s.append(("model.config.recompute_granularity", "selective"))
    return s


def command(job: Job) -> list[list[str]]:
    """``env VARS python -u <entry> --recipe R --vocab-size V --performance-mode``, then one
    ``key=value`` per line."""
    spec, site = job.spec, job.site
    env = [f"{k}={v}" for k, v in sorted(environment(spec).items())]
    # the null tokenizer adds an end-of-document id, so vocab - 1 gives the model its own vocabulary,
    # which NeMo pads to a multiple of 128 x tp as for the real tokenizer (lightning/base.py)
    return [["env", *env], [site.software.python, "-u", entry_file()],
            ["--recipe", RECIPES[spec.model]], ["--vocab-size", str(job.model.vocab - 1)],
            ["--performance-mode"],
            *[[f"{key}={_value(value)}"] for key, value in settings(spec, site)],
            # NeMoLogger writes under the working directory unless told (nemo_logger.py)
            *([[f"log.log_dir={_value(job.paths.output_dir)}"]] if job.paths.output_dir else [])]


def key_set_name(nemo_tag: str, recipe: str) -> str:
    return f"nemo2-{nemo_tag}-{recipe}"


def program(spec: JobSpec, site: Site, model: ModelArch | None = None) -> KeySet | None:
    """The recipe's Config keys at the image's NeMo (None: no NeMo 2 key set, or no recipe)."""
    if spec.model not in RECIPES:
        return None
    program = versioned_program(spec, site, "nemo", lambda nemo: key_set_name(nemo, RECIPES[spec.model]))
    assert program is None or isinstance(program, KeySet)
    return program


def nemo2_images() -> list[str]:
    """Images whose NeMo has a shipped key set for every recipe."""
    return sorted(image for image, sw in CONTAINERS.items() if sw.nemo and all(
        _shipped(key_set_name(sw.nemo, recipe)) for recipe in RECIPES.values()))


def _shipped(name: str) -> bool:
    try:
        load_program(name)
    except KeyError:
        return False
    return True


def check(spec: JobSpec, site: Site, where: Callable[..., Location]) -> list[Problem]:
    """What the shipped entry and key sets cover; everything else is refused, not guessed."""
    problems = []
    image = container_image(spec, site)
    software = container_software(image)
    if spec.model in RECIPES and program(spec, site) is None:
        has = (f"NeMo {software.nemo}, for which slurmkit has no recipe key set" if software and software.nemo
               else "no NeMo" if software else "versions slurmkit does not know")
        problems.append(Problem(
            f"launcher nemo2 needs an image with NeMo 2 whose recipe keys slurmkit ships;"
            f" {image or 'no image'} has {has}", where("container_image", "launcher"),
            f"images that work: {', '.join(nemo2_images())}"))
    if spec.model not in RECIPES:
        problems.append(Problem(f"launcher nemo2 has no recipe for model {spec.model}", where("model"),
                                f"use one of {', '.join(sorted(RECIPES))}"))
    if spec.workload != "pretrain" or spec.dataset != "synthetic":
        problems.append(Problem("launcher nemo2 runs pretraining on mock data only",
                                where("workload") if spec.workload != "pretrain" else where("dataset"),
                                "use workload: pretrain, dataset: synthetic"))
    if spec.pp > 1 and spec.model in RECIPES and RECIPES[spec.model] not in PIPELINE_DTYPE_RECIPES:
        problems.append(Problem(f"pp={spec.pp}: NeMo's {RECIPES[spec.model]} recipe sets no pipeline dtype,"
                                " which llm.pretrain requires with pipeline parallelism", where("pp"),
                                "use pp: 1 for this model"))
    if spec.vpp is not None and spec.pp > 1:
        problems += _interleaved(spec, site, where)
    if spec.precision != "bf16":
        problems.append(Problem(f"launcher nemo2 runs the recipe's BF16 mixed precision only, not {spec.precision}",
                                where("precision"), "use precision: bf16"))
    if spec.checkpoint_interval is not None:
        problems.append(Problem("launcher nemo2 writes no checkpoints (the recipe's checkpointing is"
                                " turned off, as in NVIDIA's performance scripts)",
                                where("checkpoint_interval"), "remove checkpoint_interval"))
    return problems


def _interleaved(spec: JobSpec, site: Site, where: Callable[..., Location]) -> list[Problem]:
    """Megatron Core core_v0.14.0's interleaved schedule groups micro-batches by pp
    (model_parallel_config.py: microbatch_group_size_per_vp_stage defaults to pp) and refuses a
    count that is below pp or leaves a partial group (schedules.py, before the first step)."""
    dp = spec.nodes * site.gpu.count_per_node // (spec.tp * spec.pp * spec.cp)
    if dp == 0 or spec.gbs % (spec.mbs * dp):
        return []  # the generic checks report the shape
    micro = spec.gbs // (spec.mbs * dp)
    if micro >= spec.pp and micro % spec.pp == 0:
        return []
    return [Problem(f"vpp={spec.vpp}: Megatron Core's interleaved schedule needs the {micro} micro-batches"
                    f" per step (gbs / (mbs * dp)) to be a multiple of pp={spec.pp}", where("vpp", "gbs"),
                    f"use a gbs that gives a multiple of {spec.pp} micro-batches, or no vpp")]
