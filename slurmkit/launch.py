"""Launcher arguments and environment, decided here so the templates only format them.

NeMo 1.x takes Hydra overrides, Megatron-LM ``pretrain_gpt.py`` takes flags, torchrun runs the
example trainer (or a program the experiment names). Network variables come from the site's
typed adapter fields: one HCA per adapter in ``NCCL_IB_HCA`` and ``UCX_NET_DEVICES``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from slurmkit.catalog import ModelArch
from slurmkit.experiment import Experiment, JobSpec
from slurmkit.site import Site

NEMO_EXAMPLES = "examples/nlp/language_modeling"


@dataclass(frozen=True)
class Paths:
    """Resolved data and checkpoint locations of one job (None when not used)."""

    data: str | None  # dataset folder or Megatron data prefix; None for synthetic
    checkpoint_dir: str | None
    base_checkpoint: str | None  # fine-tuning only


def network_env(site: Site, launcher: str) -> dict[str, str]:
    """NCCL/UCX/Gloo variables derived from the site's network description."""
    net, env = site.network, {"NCCL_DEBUG": "VERSION"}
    hcas = site.hca_devices()
    if hcas:
        env["NCCL_IB_HCA"] = "=" + ",".join(hcas)
        env["UCX_NET_DEVICES"] = ",".join(f"{h}:1" for h in hcas)
        if net.fabric == "roce":
            env["NCCL_IB_GID_INDEX"] = str(3 if net.gid_index is None else net.gid_index)
        if net.adapters and not net.adapters.gpudirect_rdma:
            env["NCCL_NET_GDR_LEVEL"] = "LOC"
    else:
        env["NCCL_IB_DISABLE"] = "1"
    if net.socket_interface:
        env["NCCL_SOCKET_IFNAME"] = net.socket_interface
        env["GLOO_SOCKET_IFNAME"] = net.socket_interface
    if launcher in ("nemo", "megatron"):
        env["CUDA_DEVICE_MAX_CONNECTIONS"] = "1"  # Megatron's TP/SP communication overlap needs it
    return env


def resolve_paths(spec: JobSpec, site: Site, experiment: Experiment, run_id: str) -> Paths:
    datasets = site.storage.get("datasets")
    checkpoints = site.storage.get("checkpoints")
    if spec.dataset == "synthetic":
        data = None
    elif spec.dataset in ("dolly", "alpaca") and datasets:
        data = f"{datasets.path.rstrip('/')}/{spec.dataset}"
    else:
        data = spec.dataset
    root = experiment.checkpoint_dir or (
        f"{checkpoints.path.rstrip('/')}/{experiment.name}" if checkpoints else "checkpoints")
    checkpoint_dir = f"{root.rstrip('/')}/{run_id}" if spec.checkpoint_interval else None
    base = None
    if spec.workload != "pretrain":
        base = experiment.base_checkpoint or (
            f"{checkpoints.path.rstrip('/')}/{spec.model}.nemo" if checkpoints else f"{spec.model}.nemo")
    return Paths(data, checkpoint_dir, base)


def nemo_command(spec: JobSpec, model: ModelArch, site: Site, paths: Paths, run_id: str) -> list[list[str]]:
    """``python megatron_gpt_{pretraining,finetuning}.py --config-path ... overrides`` (one per line)."""
    root = site.software.nemo_dir.rstrip("/")
    if spec.workload == "pretrain":
        config = "megatron_gpt_config" if model.family == "gpt" else "megatron_llama_config"
        head = [f"{root}/{NEMO_EXAMPLES}/megatron_gpt_pretraining.py",
                f"--config-path={root}/{NEMO_EXAMPLES}/conf", f"--config-name={config}"]
    else:
        head = [f"{root}/{NEMO_EXAMPLES}/tuning/megatron_gpt_finetuning.py",
                f"--config-path={root}/{NEMO_EXAMPLES}/tuning/conf",
                "--config-name=megatron_gpt_finetuning_config"]
    o = [
        f"trainer.num_nodes={spec.nodes}", f"trainer.devices={site.gpu.count_per_node}",
        f"trainer.max_steps={spec.steps}", f"trainer.val_check_interval={spec.steps}",
        "trainer.limit_val_batches=0", "trainer.log_every_n_steps=1", "trainer.precision=bf16-mixed",
        "trainer.enable_checkpointing=False",
        f"model.micro_batch_size={spec.mbs}", f"model.global_batch_size={spec.gbs}",
        f"model.tensor_model_parallel_size={spec.tp}", f"model.pipeline_model_parallel_size={spec.pp}",
        f"model.virtual_pipeline_model_parallel_size={_null(spec.vpp)}",
        f"model.context_parallel_size={spec.cp}", f"model.sequence_parallel={spec.sequence_parallel}",
        # the distributed optimizer shards Adam state over data parallelism, as slurmkit.memory assumes
        "model.optim.name=distributed_fused_adam", f"model.optim.lr={spec.lr}",
        *_nemo_fp8(spec), *_nemo_recompute(spec),
    ]
    o += _nemo_pretrain(spec, model, paths) if spec.workload == "pretrain" else _nemo_finetune(spec, paths)
    o += [f"exp_manager.name={run_id}", "exp_manager.create_wandb_logger=False",
          f"exp_manager.create_checkpoint_callback={paths.checkpoint_dir is not None}"]
    if paths.checkpoint_dir:
        o += [f"exp_manager.exp_dir={hydra_value(paths.checkpoint_dir)}", "exp_manager.resume_if_exists=True",
              "exp_manager.resume_ignore_no_checkpoint=True",
              f"exp_manager.checkpoint_callback_params.every_n_train_steps={spec.checkpoint_interval}"]
    return [[arg] for arg in head + o]


_HYDRA_PLAIN = re.compile(r"[\w./:+@%~-]+")


def hydra_value(text: str) -> str:
    """A string as a Hydra override value: bare when plain, else double-quoted (Hydra's escapes),
    so paths with spaces, commas, brackets or quotes reach NeMo intact."""
    if _HYDRA_PLAIN.fullmatch(text):
        return text
    # double quotes read better inside the shell's single quotes; Hydra unescapes backslashes
    # only before a quote (or the closing quote)
    escaped = re.sub(r'(\\*)"', lambda m: m.group(1) * 2 + '\\"', text)
    escaped = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped)
    return f'"{escaped}"'


def _null(value: object) -> str:
    return "null" if value is None else str(value)


def _nemo_fp8(spec: JobSpec) -> list[str]:
    if spec.precision == "fp8":
        return ["model.transformer_engine=True", "model.fp8=True", "model.fp8_hybrid=True"]
    return ["model.fp8=False"]


def _nemo_recompute(spec: JobSpec) -> list[str]:
    if spec.recompute == "full":
        return ["model.activations_checkpoint_granularity=full",
                "model.activations_checkpoint_method=uniform", "model.activations_checkpoint_num_layers=1"]
    return [f"model.activations_checkpoint_granularity={_null(None if spec.recompute == 'none' else 'selective')}"]


def _nemo_pretrain(spec: JobSpec, model: ModelArch, paths: Paths) -> list[str]:
    o = [f"model.encoder_seq_length={spec.seq_len}", f"model.max_position_embeddings={spec.seq_len}",
         f"model.num_layers={model.layers}", f"model.hidden_size={model.hidden}",
         f"model.ffn_hidden_size={model.ffn_hidden}", f"model.num_attention_heads={model.heads}",
         f"model.num_query_groups={model.kv_heads}"]
    if paths.data is None:
        return o + ["model.data.data_impl=mock", "model.data.data_prefix=[]"]
    return o + [f"model.data.data_prefix=[1.0,{hydra_value(paths.data)}]"]


def _nemo_finetune(spec: JobSpec, paths: Paths) -> list[str]:
    scheme = "none" if spec.workload == "sft" else spec.workload
    return [f"model.restore_from_path={hydra_value(paths.base_checkpoint)}", f"model.peft.peft_scheme={scheme}",
            f"model.data.train_ds.file_names=[{hydra_value(paths.data + '/training.jsonl')}]",
            "model.data.train_ds.concat_sampling_probabilities=[1.0]",
            f"model.data.validation_ds.file_names=[{hydra_value(paths.data + '/validation.jsonl')}]",
            f"model.data.train_ds.max_seq_length={spec.seq_len}",
            f"model.data.validation_ds.max_seq_length={spec.seq_len}"]


def megatron_command(spec: JobSpec, model: ModelArch, site: Site, paths: Paths) -> list[list[str]]:
    """``python pretrain_gpt.py`` with Megatron-LM flags, one flag (and its value) per line."""
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


def trainer_args(spec: JobSpec, model: ModelArch) -> list[str]:
    """The example trainer's command line (docs/contracts.md)."""
    return ["--steps", str(spec.steps), "--global-batch-size", str(spec.gbs),
            "--micro-batch-size", str(spec.mbs), "--seq-len", str(spec.seq_len),
            "--layers", str(model.layers), "--hidden", str(model.hidden), "--heads", str(model.heads),
            "--vocab", str(model.vocab), "--ffn-hidden", str(model.ffn_hidden), "--lr", str(spec.lr),
            "--parallel", spec.parallel, "--warmup-steps", str(spec.warmup_steps)]


def torchrun_program(spec: JobSpec, model: ModelArch, experiment: Experiment) -> list[list[str]]:
    """What follows ``torchrun <rendezvous flags>``: ``-m module args`` or ``script args``."""
    program = experiment.program
    if program is None:
        return group_args(["-m", "slurmkit.trainer", *trainer_args(spec, model)])
    args = trainer_args(spec, model) if program.args is None else list(program.args)
    target = ["-m", program.module] if program.module else [program.script]
    return group_args([*target, *args])


def group_args(args: list[str]) -> list[list[str]]:
    """Split a command line into readable lines: each option with the values that follow it."""
    groups: list[list[str]] = []
    for arg in args:
        if not groups or arg.startswith("-") or groups[-1][0][:1] != "-":
            groups.append([arg])
        else:
            groups[-1].append(arg)
    return groups
