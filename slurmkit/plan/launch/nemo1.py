"""NeMo 1.x: ``megatron_gpt_{pretraining,finetuning}.py`` with Hydra overrides."""
from __future__ import annotations

import re

from slurmkit.config.catalog import ModelArch
from slurmkit.config.experiment import JobSpec
from slurmkit.config.site import Site
from slurmkit.errors import ConfigError
from slurmkit.plan.launch.common import Job, Paths, container_image, versioned_program
from slurmkit.plan.launch.programs import KeySet

NEMO_EXAMPLES = "examples/nlp/language_modeling"

# The JSONL the fine-tuning jobs read: one object per line with these keys; the prompt the
# model sees is FINETUNE_PROMPT_TEMPLATE filled from them. `slurmkit prepare-data` writes it and
# the generated overrides name the same keys and template.
FINETUNE_INPUT_KEY = "input"
FINETUNE_OUTPUT_KEY = "output"
FINETUNE_PROMPT_TEMPLATE = "{input} {output}"


def config_name(spec: JobSpec, model: ModelArch | None) -> str:
    """The Hydra config the job's script composes (GPT models have their own pretraining config)."""
    if spec.workload != "pretrain":
        return "megatron_gpt_finetuning_config"
    return "megatron_gpt_config" if model is not None and model.family == "gpt" else "megatron_llama_config"


def program(spec: JobSpec, site: Site, model: ModelArch | None = None) -> KeySet | None:
    """The config's key set at the NeMo version of the job's container (None: slurmkit has none).

    ``model`` picks the GPT pretraining config for GPT-family models; without it, Llama's."""
    program = versioned_program(spec, site, "nemo", lambda nemo: f"nemo-{nemo}-{config_name(spec, model)}")
    assert program is None or isinstance(program, KeySet)
    return program


# validation (slurmkit.plan.arguments) refuses a job whose container has no key set, before any command
PROGRAM_REQUIRED = True


def command(job: Job) -> list[list[str]]:
    """``python megatron_gpt_{pretraining,finetuning}.py --config-path ... overrides`` (one per line).

    Each override's prefix comes from the key set of the container's NeMo: plain for a key of the
    YAML, ``+`` for one NeMo reads from code (Hydra's struct mode refuses a plain one)."""
    spec, model, site, paths, run_id = job.spec, job.model, job.site, job.paths, job.run_id
    keys = program(spec, site, model)
    if keys is None:
        raise ConfigError(f"no NeMo key set for container image {container_image(spec, site)!r}",
                          hint="slurmkit validate reports the images it knows")
    root = site.software.nemo_dir.rstrip("/")
    config = config_name(spec, model)
    examples = f"{root}/{NEMO_EXAMPLES}" if spec.workload == "pretrain" else f"{root}/{NEMO_EXAMPLES}/tuning"
    script = "megatron_gpt_pretraining.py" if spec.workload == "pretrain" else "megatron_gpt_finetuning.py"
    head = [f"{examples}/{script}", f"--config-path={examples}/conf", f"--config-name={config}"]
    settings = [
        ("trainer.num_nodes", spec.nodes), ("trainer.devices", site.gpu.count_per_node),
        ("trainer.max_steps", spec.steps), ("trainer.val_check_interval", spec.steps),
        ("trainer.limit_val_batches", 0), ("trainer.log_every_n_steps", 1), ("trainer.precision", "bf16-mixed"),
        ("trainer.enable_checkpointing", False),
        ("model.micro_batch_size", spec.mbs), ("model.global_batch_size", spec.gbs),
        ("model.tensor_model_parallel_size", spec.tp), ("model.pipeline_model_parallel_size", spec.pp),
        ("model.virtual_pipeline_model_parallel_size", spec.vpp),
        ("model.context_parallel_size", spec.cp), ("model.sequence_parallel", spec.sequence_parallel),
        # the distributed optimizer shards Adam state over data parallelism, as slurmkit.plan.memory assumes
        ("model.optim.name", "distributed_fused_adam"), ("model.optim.lr", spec.lr),
        *_nemo_fp8(spec), *_nemo_recompute(spec),
    ]
    if spec.workload == "pretrain" or spec.vpp is not None:
        # BF16 weights with FP32 master copies in the optimizer, as slurmkit.plan.memory assumes and
        # NVIDIA's pretraining configs do; NeMo v2.0.0rc0 also refuses vpp without it
        # (megatron_gpt_model.py:313)
        settings.append(("model.megatron_amp_O2", True))
    settings += _nemo_pretrain(spec, model, paths) if spec.workload == "pretrain" else _nemo_finetune(spec, paths)
    settings += [("exp_manager.name", run_id), ("exp_manager.create_wandb_logger", False),
                 ("exp_manager.create_checkpoint_callback", paths.checkpoint_dir is not None)]
    if paths.output_dir and not paths.checkpoint_dir:
        settings.append(("exp_manager.exp_dir", hydra_value(paths.output_dir)))
    if paths.checkpoint_dir:
        settings += [("exp_manager.exp_dir", hydra_value(paths.checkpoint_dir)),
                     ("exp_manager.resume_if_exists", True), ("exp_manager.resume_ignore_no_checkpoint", True),
                     ("exp_manager.checkpoint_callback_params.every_n_train_steps", spec.checkpoint_interval)]
    return [[arg] for arg in head + [keys.override(key, _text(value)) for key, value in settings]]


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


def _text(value: object) -> str:
    """A setting as Hydra reads it: None is null; strings arrive already quoted where needed."""
    return "null" if value is None else str(value)


Setting = tuple[str, object]


def _nemo_fp8(spec: JobSpec) -> list[Setting]:
    if spec.precision == "fp8":
        return [("model.transformer_engine", True), ("model.fp8", True), ("model.fp8_hybrid", True)]
    return [("model.fp8", False)]


def _nemo_recompute(spec: JobSpec) -> list[Setting]:
    if spec.recompute == "full":
        return [("model.activations_checkpoint_granularity", "full"),
                ("model.activations_checkpoint_method", "uniform"), ("model.activations_checkpoint_num_layers", 1)]
    return [("model.activations_checkpoint_granularity", None if spec.recompute == "none" else "selective")]


def _nemo_pretrain(spec: JobSpec, model: ModelArch, paths: Paths) -> list[Setting]:
    o: list[Setting] = [
        ("model.encoder_seq_length", spec.seq_len), ("model.max_position_embeddings", spec.seq_len),
        ("model.num_layers", model.layers), ("model.hidden_size", model.hidden),
        ("model.ffn_hidden_size", model.ffn_hidden), ("model.num_attention_heads", model.heads),
        ("model.num_query_groups", model.kv_heads)]
    if paths.data is None:
        # NeMo reads data_prefix even for mock data (it then builds Megatron's MockGPTDataset)
        return o + [("model.data.data_impl", "mock"), ("model.data.data_prefix", "[]")]
    return o + [("model.data.data_prefix", f"[1.0,{hydra_value(paths.data)}]")]


def _nemo_finetune(spec: JobSpec, paths: Paths) -> list[Setting]:
    scheme = "none" if spec.workload == "sft" else spec.workload
    # job_paths gives every workload but pretrain a base checkpoint
    assert paths.base_checkpoint is not None, f"{spec.workload} job without a base checkpoint"
    o: list[Setting] = [
        ("model.restore_from_path", hydra_value(paths.base_checkpoint)), ("model.peft.peft_scheme", scheme),
        ("model.data.train_ds.file_names", f"[{hydra_value(f'{paths.data}/training.jsonl')}]"),
        ("model.data.train_ds.concat_sampling_probabilities", "[1.0]"),
        ("model.data.validation_ds.file_names", f"[{hydra_value(f'{paths.data}/validation.jsonl')}]")]
    # the JSONL that `slurmkit prepare-data` writes: its keys and prompt, named for both splits
    for split in ("train_ds", "validation_ds"):
        o += [(f"model.data.{split}.max_seq_length", spec.seq_len),
              (f"model.data.{split}.prompt_template", hydra_value(FINETUNE_PROMPT_TEMPLATE)),
              (f"model.data.{split}.label_key", FINETUNE_OUTPUT_KEY),
              (f"model.data.{split}.truncation_field", FINETUNE_INPUT_KEY)]
    return o
