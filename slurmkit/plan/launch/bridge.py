"""Megatron-Bridge: ``scripts/performance/run_script.py``, NVIDIA's performance recipe entry point.

What a real user runs: NVIDIA's dgxc-benchmarking Llama 3.1 recipe (v26.05) calls Megatron-Bridge's
``scripts/performance/setup_experiment.py``, which submits a Slurm job whose ``srun`` starts one
task per GPU, each running ``python run_script.py`` with the same arguments (NeMo-Run's
``run.Script``, ``ntasks_per_node`` = GPUs). slurmkit writes that job itself: no NeMo-Run, no
second submission. ``run_script.py`` parses its flags with ``parse_known_args`` and applies what
is left as Hydra overrides in struct mode onto the recipe's ``ConfigContainer``; then flags
(``set_user_overrides``) win over those overrides, so each setting is passed one way only.

Facts used here, all read at Megatron-Bridge v0.4.0 (the version NeMo 26.04 ships):
- each task joins torch.distributed from Slurm's variables when no launcher sets RANK
  (``utils/common_utils.py``: SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODELIST), so
  ``srun`` alone starts the job, as in the published launch;
- the container holds the repository at ``/opt/Megatron-Bridge`` (``docker/Dockerfile.ci``:
  ``COPY . /opt/Megatron-Bridge``), so the script runs from the image;
- ``--lr``/``--warmup_iters`` are parsed but only ``run_recipe.py`` applies them, so the learning
  rate and warm-up go as overrides (``optimizer.lr``, ``scheduler.lr_warmup_iters``);
- ``-tp`` also sets ``model.sequence_parallel = tp > 1`` (``utils/overrides.py``);
- the recipe's performance settings fix ``scheduler.lr_decay_iters`` to 50 steps, so it is set to
  the run's steps;
- the Llama 3 recipes read the model's Hugging Face config (``AutoBridge.from_hf_pretrained``),
  so the job needs that config in ``HF_HOME`` (the experiment sets it; docs/configs.md).
"""
from __future__ import annotations

from collections.abc import Callable

from slurmkit.config.catalog import ModelArch
from slurmkit.config.experiment import JobSpec
from slurmkit.config.site import Site
from slurmkit.errors import Location, Problem
from slurmkit.plan.launch.common import Job, container_image, versioned_program
from slurmkit.plan.launch.programs import FlagSet, KeySet, shipped_programs
from slurmkit.plan.launch.software import CONTAINERS, container_software

BRIDGE_DIR = "/opt/Megatron-Bridge"
RUN_SCRIPT = f"{BRIDGE_DIR}/scripts/performance/run_script.py"

# slurmkit model -> (--model_family_name, --model_recipe_name): the recipes with H100 presets
# (scripts/performance/configs/llama/llama3_workload_base_configs.py at v0.4.0)
RECIPES = {"llama3-8b": ("llama", "llama3_8b"), "llama3-70b": ("llama", "llama3_70b")}
# --gpu choices (argument_parser.NUM_GPUS_PER_NODE_MAP), longest first so "gb200" beats "b200"
GPU_NAMES = ("gb300", "gb200", "b300", "b200", "h100")
# slurmkit precision -> --compute_dtype (on H100 the recipes run FP8 with current scaling only)
COMPUTE_DTYPE = {"bf16": "bf16", "fp8": "fp8_cs"}
# What setup_experiment's executor exports for every job (utils/executors.py PERF_ENV_VARS)
PERF_ENV = {"TORCH_NCCL_AVOID_RECORD_STREAMS": "1", "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "False", "NCCL_NVLS_ENABLE": "0",
            "NVTE_NORM_FWD_USE_CUDNN": "1", "NVTE_NORM_BWD_USE_CUDNN": "1",
            "TORCH_NCCL_HIGH_PRIORITY": "1"}


def gpu_name(site: Site) -> str | None:
    """The ``--gpu`` value for the site's GPU, None when the recipes have no preset for it."""
    model = site.gpu.model.lower().replace(" ", "").replace("-", "")
    return next((name for name in GPU_NAMES if name in model), None)


def environment(spec: JobSpec, site: Site) -> dict[str, str]:
    """Variables the published launch sets: PERF_ENV, and PerfEnvPlugin's device connections
    (1 on Hopper with TP or CP so communication kernels queue ahead of the GEMMs, else 8)."""
    hopper_or_older = gpu_name(site) == "h100"
    connections = 1 if hopper_or_older and (spec.tp > 1 or spec.cp > 1) else 8 if hopper_or_older else 32
    return {**PERF_ENV, "CUDA_DEVICE_MAX_CONNECTIONS": str(connections)}


def command(job: Job) -> list[list[str]]:
    """``env VARS python3 -u run_script.py`` flags, then Hydra overrides (one per line)."""
    spec, site, paths = job.spec, job.site, job.paths
    family, recipe = RECIPES[spec.model]
    env = [f"{k}={v}" for k, v in sorted(environment(spec, site).items())]
    a: list[list[str]] = [
        ["env", *env], [site.software.python, "-u", RUN_SCRIPT],
        ["--model_family_name", family], ["--model_recipe_name", recipe], ["--task", "pretrain"],
        ["--gpu", gpu_name(site) or "h100"], ["--num_gpus", str(spec.nodes * site.gpu.count_per_node)],
        ["--compute_dtype", COMPUTE_DTYPE[spec.precision]], ["--config_variant", "v1"],
        ["--data", "mock"], ["--max_steps", str(spec.steps)],
        ["--global_batch_size", str(spec.gbs)], ["--micro_batch_size", str(spec.mbs)],
        ["--tensor_model_parallel_size", str(spec.tp)], ["--pipeline_model_parallel_size", str(spec.pp)],
        ["--context_parallel_size", str(spec.cp)],
        ["--virtual_pipeline_model_parallel_size", "None" if spec.vpp is None else str(spec.vpp)]]
    if spec.recompute == "selective":
        a.append(["--recompute_modules", "core_attn"])  # sets recompute_granularity=selective
    if paths.checkpoint_dir:
        a += [["--save_dir", paths.checkpoint_dir], ["--save_interval", str(spec.checkpoint_interval)]]
    return a + [[override] for override in overrides(spec)]


def overrides(spec: JobSpec) -> list[str]:
    """The Hydra overrides (keys of ``bridge-config-<tag>.json``), for settings without a flag."""
    o = [f"model.seq_length={spec.seq_len}", f"optimizer.lr={spec.lr}",
         f"scheduler.lr_warmup_iters={spec.warmup_steps}", f"scheduler.lr_decay_iters={spec.steps}"]
    if spec.recompute == "full":
        o += ["model.recompute_granularity=full", "model.recompute_method=uniform",
              "model.recompute_num_layers=1"]
    return o


def bridge_images() -> list[str]:
    """Images whose Megatron-Bridge slurmkit has key and flag sets for."""
    return sorted(image for image, sw in CONTAINERS.items()
                  if sw.megatron_bridge and _described(sw.megatron_bridge))


def _described(version: str) -> bool:
    return all(f"bridge-{what}-{version}" in shipped_programs() for what in ("config", "run_script"))


def image_problem(spec: JobSpec, site: Site) -> str | None:
    """Why the job's image cannot run this launcher (None when it can)."""
    image = container_image(spec, site)
    software = container_software(image)
    if software is not None and software.megatron_bridge and _described(software.megatron_bridge):
        return None
    if software is None:
        shipped = "versions slurmkit does not know"
    elif not software.megatron_bridge:
        shipped = "no Megatron-Bridge"
    else:
        shipped = f"Megatron-Bridge {software.megatron_bridge}, whose arguments slurmkit has no description of"
    return (f"launcher megatron-bridge needs an image that ships a Megatron-Bridge slurmkit can check;"
            f" {image or 'no image'} has {shipped} (images that work: {', '.join(bridge_images())})")


def program(spec: JobSpec, site: Site, model: ModelArch | None = None) -> KeySet | FlagSet | None:
    """The ConfigContainer keys at the image's Megatron-Bridge tag: ``extra_args`` come after
    the flags, so run_script.py applies them as Hydra overrides (None for an image without it)."""
    return versioned_program(spec, site, "megatron_bridge", lambda bridge: f"bridge-config-{bridge}")


def check(spec: JobSpec, site: Site, where: Callable[..., Location]) -> list[Problem]:
    """What run_script.py can run (the module docstring says why)."""
    problems = []
    image = image_problem(spec, site)
    if image:
        problems.append(Problem(image, where("container_image", "launcher"),
                                f"set container_image: {bridge_images()[-1]}"))
    if spec.model not in RECIPES:
        problems.append(Problem(f"launcher megatron-bridge has no recipe for model {spec.model}",
                                where("model"), f"use one of {', '.join(sorted(RECIPES))}"))
    if gpu_name(site) is None:
        problems.append(Problem(f"Megatron-Bridge's performance recipes have no preset for {site.gpu.model}"
                                f" (site {site.name})", where("launcher"),
                                f"GPUs with presets: {', '.join(GPU_NAMES)}"))
    if spec.workload != "pretrain" or spec.dataset != "synthetic":
        problems.append(Problem("launcher megatron-bridge runs pretraining on mock data only",
                                where("workload", "dataset"), "use workload: pretrain, dataset: synthetic"))
    if spec.sequence_parallel != (spec.tp > 1):
        problems.append(Problem(f"sequence_parallel={spec.sequence_parallel}: Megatron-Bridge's run_script.py"
                                f" turns sequence parallelism on exactly when tp > 1 (tp={spec.tp})",
                                where("sequence_parallel", "tp"), f"set sequence_parallel: {spec.tp > 1}"))
    return problems
