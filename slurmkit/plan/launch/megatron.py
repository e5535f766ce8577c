"""Megatron-LM: ``pretrain_gpt.py`` with its argparse flags, each one checked (tests) against the
flag set of the Megatron-LM the container ships (``program``).

Facts used below are read in NVIDIA/Megatron-LM at core_v0.7.0 (the Megatron Core of NeMo 24.05):
megatron/training/arguments.py (flags, validate_args), megatron/training/tokenizer/tokenizer.py
(NullTokenizer, vocabulary padding), megatron/legacy/model/transformer.py (the only reader of
``--use-flash-attn``), megatron/training/initialize.py (rank and world size from the environment).
"""
from __future__ import annotations

from collections.abc import Callable

from slurmkit.config.catalog import ModelArch
from slurmkit.config.experiment import JobSpec
from slurmkit.config.site import Site
from slurmkit.errors import Location, Problem
from slurmkit.plan.launch.common import Job, Paths, container_image, versioned_program
from slurmkit.plan.launch.programs import FlagSet, KeySet, load_program
from slurmkit.plan.launch.software import CONTAINERS

# Where NVIDIA's NeMo Framework images keep Megatron-LM: NVIDIA/NeMo-Framework-Launcher reads the
# checkout's history at /opt/megatron-lm/.git (launcher_scripts/nemo_launcher/core/stages.py,
# commit c207ba1d of May 2024, in tag 24.07). Another megatron_dir is the user's own checkout,
# whose version slurmkit cannot know.
CONTAINER_MEGATRON_DIR = "/opt/megatron-lm"
SCRIPT = "pretrain_gpt.py"

# FP8 recipe of NeMo's Llama config (NVIDIA/NeMo@v2.0.0rc0 examples/nlp/language_modeling/conf/
# megatron_llama_config.yaml: fp8_hybrid, fp8_amax_history_len 1024, fp8_amax_compute_algo max),
# so a Megatron-LM FP8 run compares with a NeMo one; Megatron's own defaults are 1 and most_recent.
FP8_FLAGS = [["--fp8-format", "hybrid"], ["--fp8-amax-history-len", "1024"],
             ["--fp8-amax-compute-algo", "max"]]


def command(job: Job) -> list[list[str]]:
    """``pretrain_gpt.py`` and its flags, one flag (and its value) per line."""
    spec, model, site = job.spec, job.model, job.site
    return [
        [f"{site.software.megatron_dir.rstrip('/')}/{SCRIPT}"],
        # at core_v0.7.0 Megatron Core's GPTModel is opt-in: without the flag the legacy model runs
        ["--use-mcore-models"], ["--transformer-impl", "transformer_engine"],
        *_architecture(model), *_parallelism(spec, model), *_training(spec),
        *_precision(spec), *_recompute(spec), *_data(model, job.paths),
        # one line per step (the log parser's rows); no evaluation: a benchmark times training only
        ["--log-interval", "1"], ["--log-throughput"], ["--eval-iters", "0"], ["--eval-interval", str(spec.steps)],
        *_checkpoint(spec, job.paths),
    ]


def _architecture(model: ModelArch) -> list[list[str]]:
    gpt = model.family == "gpt"
    a = [["--num-layers", str(model.layers)], ["--hidden-size", str(model.hidden)],
         ["--ffn-hidden-size", str(model.ffn_hidden)], ["--num-attention-heads", str(model.heads)],
         ["--normalization", "LayerNorm" if gpt else "RMSNorm"],
         ["--position-embedding-type", "learned_absolute" if model.learned_positions else "rope"]]
    if model.kv_heads != model.heads:
        a += [["--group-query-attention"], ["--num-query-groups", str(model.kv_heads)]]
    if model.mlp == "swiglu":
        a.append(["--swiglu"])
    if not model.bias:
        a.append(["--disable-bias-linear"])
    if not model.tied_embeddings:
        a.append(["--untie-embeddings-and-output-weights"])
    if not gpt:  # Llama-style models train without dropout (NeMo's Llama config: 0.0); Megatron's default is 0.1
        a += [["--attention-dropout", "0.0"], ["--hidden-dropout", "0.0"]]
    return a


def _parallelism(spec: JobSpec, model: ModelArch) -> list[list[str]]:
    a = [["--tensor-model-parallel-size", str(spec.tp)], ["--pipeline-model-parallel-size", str(spec.pp)],
         ["--context-parallel-size", str(spec.cp)],
         ["--seq-length", str(spec.seq_len)],
         ["--max-position-embeddings", str(max(spec.seq_len, model.max_seq_len))],
         ["--micro-batch-size", str(spec.mbs)], ["--global-batch-size", str(spec.gbs)]]
    if spec.vpp is not None:  # Megatron derives vpp = layers / pp / this
        a.append(["--num-layers-per-virtual-pipeline-stage", str(model.layers // (spec.pp * spec.vpp))])
    if spec.sequence_parallel:  # Megatron turns it off itself when tp is 1
        a.append(["--sequence-parallel"])
    return a


def _training(spec: JobSpec) -> list[list[str]]:
    # the distributed optimizer shards Adam state over data parallelism, as slurmkit.plan.memory assumes
    return [["--train-iters", str(spec.steps)], ["--lr", str(spec.lr)],
            ["--lr-warmup-iters", str(spec.warmup_steps)], ["--use-distributed-optimizer"]]


def _precision(spec: JobSpec) -> list[list[str]]:
    return [["--bf16"], *(FP8_FLAGS if spec.precision == "fp8" else [])]


def _recompute(spec: JobSpec) -> list[list[str]]:
    if spec.recompute == "selective":  # Megatron sets recompute_granularity = 'selective'
        return [["--recompute-activations"]]
    if spec.recompute == "full":
        return [["--recompute-granularity", "full"], ["--recompute-method", "uniform"],
                ["--recompute-num-layers", "1"]]
    return []


def _data(model: ModelArch, paths: Paths) -> list[list[str]]:
    # NullTokenizer reads token ids as they are (mock data, or data already tokenized for the model)
    # and adds one end-of-document id: vocab - 1 gives the model's own vocabulary, padded by Megatron
    # like NeMo pads it (to a multiple of 128 * tp), so both runs train the same shapes.
    tokenizer = [["--tokenizer-type", "NullTokenizer"], ["--vocab-size", str(model.vocab - 1)]]
    if paths.data is None:
        return [["--mock-data"], *tokenizer]
    return [["--data-path", paths.data], ["--split", "99,1,0"], *tokenizer]


def _checkpoint(spec: JobSpec, paths: Paths) -> list[list[str]]:
    if not paths.checkpoint_dir:
        return []
    return [["--save", paths.checkpoint_dir], ["--load", paths.checkpoint_dir],
            ["--save-interval", str(spec.checkpoint_interval)]]


def program_name(megatron_core: str) -> str:
    """The shipped flag set of ``pretrain_gpt.py`` at a Megatron Core tag."""
    return f"megatron-{SCRIPT.removesuffix('.py')}-{megatron_core}"


def program(spec: JobSpec, site: Site, model: ModelArch | None = None) -> KeySet | FlagSet | None:
    """``pretrain_gpt.py``'s flags at the Megatron Core of the job's container; None when the image
    is unknown, names no Megatron Core, or the site runs its own checkout (another megatron_dir)."""
    if site.software.megatron_dir.rstrip("/") != CONTAINER_MEGATRON_DIR:
        return None
    return versioned_program(spec, site, "megatron_core", program_name)


def check(spec: JobSpec, site: Site, where: Callable[..., Location]) -> list[Problem]:
    """What pretrain_gpt.py refuses at start-up that the generic checks do not see, and a warning
    when its flags cannot be checked (the user's own Megatron-LM may well run them: not an error)."""
    problems = _interleaved(spec, site, where) if spec.vpp is not None else []
    if program(spec, site) is None:
        known = ", ".join(f"{image} ({c.megatron_core})" for image, c in CONTAINERS.items()
                          if c.megatron_core and _flag_set_shipped(c.megatron_core))
        problems.append(Problem(
            f"launcher megatron: slurmkit cannot check pretrain_gpt.py's flags: it has no flag set for"
            f" container image {container_image(spec, site)!r} with megatron_dir"
            f" {site.software.megatron_dir!r}", where("container_image", "launcher"),
            f"use an image slurmkit knows ({known}) with megatron_dir {CONTAINER_MEGATRON_DIR}", "warning"))
    return problems


def _flag_set_shipped(megatron_core: str) -> bool:
    try:
        return isinstance(load_program(program_name(megatron_core)), FlagSet)
    except KeyError:
        return False


def _interleaved(spec: JobSpec, site: Site, where: Callable[..., Location]) -> list[Problem]:
    """The interleaved (vpp) schedule needs pp > 2 (core_v0.7.0 megatron/training/arguments.py,
    validate_args) and a micro-batch count that pp divides (megatron/core/pipeline_parallel/
    schedules.py, forward_backward_pipelining_with_interleaving)."""
    if spec.pp <= 2:
        return [Problem(f"vpp={spec.vpp} with pp={spec.pp}: Megatron-LM's interleaved schedule needs pp > 2",
                        where("vpp", "pp"), "use pp of 3 or more, or drop vpp", "error")]
    gpus, model_parallel = spec.nodes * site.gpu.count_per_node, spec.tp * spec.pp * spec.cp
    dp = gpus // model_parallel
    if gpus % model_parallel or spec.gbs % (spec.mbs * dp):
        return []  # reported by the generic shape checks
    micro_batches = spec.gbs // (spec.mbs * dp)
    if micro_batches % spec.pp:
        return [Problem(f"gbs/(mbs*dp) = {micro_batches} micro-batches, not divisible by pp={spec.pp} as"
                        " Megatron-LM's interleaved schedule (vpp) requires", where("gbs", "vpp"),
                        f"use a gbs that is a multiple of {spec.mbs * dp * spec.pp}", "error")]
    return []
