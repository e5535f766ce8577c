"""NeMo 1.x: ``megatron_gpt_{pretraining,finetuning}.py`` with Hydra overrides."""
from __future__ import annotations

import re

from slurmkit.catalog import ModelArch
from slurmkit.experiment import JobSpec
from slurmkit.launch.common import Job, Paths
from slurmkit.launch.programs import FlagSet, KeySet
from slurmkit.site import Site

NEMO_EXAMPLES = "examples/nlp/language_modeling"

# The JSONL the fine-tuning jobs read: one object per line with these keys; the prompt the
# model sees is FINETUNE_PROMPT_TEMPLATE filled from them. `slurmkit prepare-data` writes it and
# the generated overrides name the same keys and template.
FINETUNE_INPUT_KEY = "input"
FINETUNE_OUTPUT_KEY = "output"
FINETUNE_PROMPT_TEMPLATE = "{input} {output}"


def command(job: Job) -> list[list[str]]:
    """``python megatron_gpt_{pretraining,finetuning}.py --config-path ... overrides`` (one per line)."""
    spec, model, site, paths, run_id = job.spec, job.model, job.site, job.paths, job.run_id
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


def program(spec: JobSpec, site: Site) -> KeySet | FlagSet | None:
    """Not described yet."""
    return None
