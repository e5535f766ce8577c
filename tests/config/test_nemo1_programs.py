"""Every NeMo 1.x override slurmkit generates, composed with Hydra's compose API (struct mode)
onto the config NeMo's script reads, rebuilt from the key set read at the container's NeMo tag
(slurmkit/data/programs/nemo-*.json, written by scripts/programs/extract_hydra.py)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from slurmkit.errors import ConfigError
from slurmkit.plan.launch import nemo1
from slurmkit.plan.launch.programs import KeySet, keyset, shipped_programs
from slurmkit.plan.launch.software import container_software
from slurmkit.plan.make import JobPlan, make_plan

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
GOLDEN = HERE / "data" / "golden"


def uses_nemo(path: Path) -> bool:
    """Whether an experiment runs (some of) its jobs with the nemo launcher."""
    data = yaml.safe_load(path.read_text())
    return "nemo" in [data.get("launcher"), *data.get("matrix", {}).get("launcher", [])]


NEMO_SCENARIOS = sorted(p for p in [*ROOT.glob("experiments/*.yaml"), *GOLDEN.glob("*.yaml")] if uses_nemo(p))
HOSTILE = '/data/my set, v2 [it\'s] "q" \\x/y'
PARSER = OverridesParser.create()


def nested(keys: dict) -> dict:
    """The YAML mapping whose flattened keys are ``keys``."""
    root: dict = {}
    for key, value in keys.items():
        *parents, leaf = key.split(".")
        node = root
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return root


@pytest.fixture(scope="module")
def config_dirs(tmp_path_factory) -> dict[str, Path]:
    """One folder per shipped NeMo key set, holding its config as NeMo's script names it."""
    dirs = {}
    for name in shipped_programs():
        if not name.startswith("nemo-"):
            continue
        keys = keyset(name)
        folder = tmp_path_factory.mktemp(name)
        config = json.loads((Path(nemo1.__file__).parents[2] / "data" / "programs" / f"{name}.json").read_text())
        (folder / f"{config['config_name']}.yaml").write_text(yaml.safe_dump(nested(keys.keys), sort_keys=False))
        dirs[name] = folder
    return dirs


def job_keyset(job: JobPlan) -> tuple[KeySet, str]:
    """The key set of the config the script names, at the NeMo tag of the job's container."""
    config = next(a for g in job.context["command"] for a in g if a.startswith("--config-name="))
    config = config.removeprefix("--config-name=")
    software = container_software(job.params["container_image"])
    return keyset(f"nemo-{software.nemo}-{config}"), config


def overrides(job: JobPlan) -> list[str]:
    """Everything after the script and its --config-path/--config-name (extra_args included)."""
    args = [a for g in job.context["command"] for a in g]
    assert args[1].startswith("--config-path=") and args[2].startswith("--config-name=")
    return args[3:]


def prefix_problems(keys: KeySet, args: list[str]) -> list[str]:
    """The rules: plain only for YAML keys, + only for code keys absent from the YAML, ++ for either."""
    problems = []
    for override in PARSER.parse_overrides(args):
        key = override.key_or_group
        if key not in keys.keys and key not in keys.code_keys:
            problems.append(f"{override.input_line}: not in the key set")
        elif override.is_force_add():
            continue
        elif override.is_add() and key in keys.keys:
            problems.append(f"{override.input_line}: + for a key of the YAML")
        elif not override.is_add() and key not in keys.keys:
            problems.append(f"{override.input_line}: plain for a key absent from the YAML")
    return problems


def compose_onto(folder: Path, config: str, args: list[str]):
    with initialize_config_dir(config_dir=str(folder), version_base=None):
        return compose(config_name=config, overrides=args)


def nemo_jobs(experiment: Path) -> list[JobPlan]:
    return [j for j in make_plan(experiment).jobs if j.params["launcher"] == "nemo"]


@pytest.mark.parametrize("experiment", NEMO_SCENARIOS, ids=lambda p: p.stem)
def test_every_override_composes_onto_the_real_config(experiment, config_dirs):
    jobs = nemo_jobs(experiment)
    assert jobs
    for job in jobs:
        keys, config = job_keyset(job)
        args = overrides(job)
        assert prefix_problems(keys, args) == [], job.run_id
        cfg = compose_onto(config_dirs[keys.name], config, args)
        p = job.params
        assert (cfg.trainer.num_nodes, cfg.trainer.devices, cfg.trainer.max_steps) == \
            (p["nodes"], p["gpus_per_node"], p["steps"])
        assert (cfg.model.tensor_model_parallel_size, cfg.model.pipeline_model_parallel_size,
                cfg.model.context_parallel_size, cfg.model.virtual_pipeline_model_parallel_size) == \
            (p["tp"], p["pp"], p["cp"], p["vpp"])
        assert cfg.trainer.limit_val_batches == 0 and cfg.model.fp8 is (p["precision"] == "fp8")
        if p["vpp"] is not None:  # NeMo v2.0.0rc0 megatron_gpt_model.py:313 refuses vpp without O2
            assert cfg.model.megatron_amp_O2 is True
        if p["workload"] == "pretrain" and p["dataset"] == "synthetic":
            assert (cfg.model.data.data_impl, list(cfg.model.data.data_prefix)) == ("mock", [])
        if p["workload"] != "pretrain":
            for split in (cfg.model.data.train_ds, cfg.model.data.validation_ds):
                assert (split.prompt_template, split.label_key, split.truncation_field) == \
                    ("{input} {output}", "output", "input")
                assert split.max_seq_length == p["seq_len"]
            assert cfg.model.peft.peft_scheme == {"sft": "none"}.get(p["workload"], p["workload"])
        # exp_manager writes under the run's folder on shared storage, never the container's
        # working directory (exp_manager's default when exp_dir is None)
        assert cfg.exp_manager.exp_dir is not None and cfg.exp_manager.exp_dir.endswith(f"/{job.run_id}")


def test_shipped_nemo_experiments_are_covered():
    shipped = [p for p in NEMO_SCENARIOS if p.parent.name == "experiments"]
    assert {p.stem for p in shipped} >= {"llama2-7b-pretrain", "llama2-70b-pretrain", "llama2-finetune"}
    configs = {job_keyset(j)[1] for p in shipped for j in nemo_jobs(p)}
    assert configs == {"megatron_llama_config", "megatron_gpt_finetuning_config"}


def test_the_fine_tuning_prompt_names_the_jsonl_keys():
    # NeMo fills the template's {placeholders} from the JSONL record and ends it with the label
    assert nemo1.FINETUNE_PROMPT_TEMPLATE.endswith("{" + nemo1.FINETUNE_OUTPUT_KEY + "}")
    assert "{" + nemo1.FINETUNE_INPUT_KEY + "}" in nemo1.FINETUNE_PROMPT_TEMPLATE


# What slurmkit generated before the key sets: these plain overrides of keys the YAML lacks.
REFUSED_BEFORE = [
    ("megatron_llama_config", "model.context_parallel_size=1"),
    ("megatron_llama_config", "model.data.data_prefix=[]"),
    ("megatron_gpt_finetuning_config", "model.fp8=False"),
    ("megatron_gpt_finetuning_config", "model.virtual_pipeline_model_parallel_size=null"),
    ("megatron_gpt_finetuning_config", "trainer.limit_val_batches=0"),
]


@pytest.mark.parametrize(("config", "override"), REFUSED_BEFORE, ids=[o for _, o in REFUSED_BEFORE])
def test_the_old_plain_overrides_are_refused(config, override, config_dirs):
    name = f"nemo-v2.0.0rc0-{config}"
    key = override.split("=")[0]
    with pytest.raises(ConfigCompositionException, match=f"Could not override '{key}'"):
        compose_onto(config_dirs[name], config, [override])
    assert prefix_problems(keyset(name), [override]) == [f"{override}: plain for a key absent from the YAML"]
    compose_onto(config_dirs[name], config, ["+" + override])  # what slurmkit writes now


def test_the_old_output_fails_the_check(config_dirs):
    """Today's command with the + prefixes dropped (the old output) is refused by the same compose."""
    for experiment in (ROOT / "experiments" / "llama2-7b-pretrain.yaml", GOLDEN / "nemo-lora-xe9680-4cx7.yaml"):
        job = nemo_jobs(experiment)[0]
        keys, config = job_keyset(job)
        old = [a.lstrip("+") for a in overrides(job)]
        assert prefix_problems(keys, old)
        with pytest.raises(ConfigCompositionException, match="Could not override"):
            compose_onto(config_dirs[keys.name], config, old)


def test_plus_on_a_key_of_the_yaml_is_refused(config_dirs):
    with pytest.raises(ConfigCompositionException, match="An item is already at 'trainer.max_steps'"):
        compose_onto(config_dirs["nemo-v2.0.0rc0-megatron_llama_config"], "megatron_llama_config",
                     ["+trainer.max_steps=5"])


def test_hostile_paths_survive_compose(write_yaml, config_dirs):
    sft = write_yaml("sft.yaml", (GOLDEN / "nemo-sft-r760xa-h100pcie.yaml").read_text()
                     .replace("dataset: /mnt/nfs/datasets/my sft set", f"dataset: {json.dumps(HOSTILE)}")
                     .replace("base_checkpoint: /mnt/nfs/checkpoints/llama2-7b-tp2.nemo",
                              f"base_checkpoint: {json.dumps(HOSTILE + '.nemo')}")
                     + f"checkpoint_dir: {json.dumps(HOSTILE)}\ncheckpoint_interval: 25\n")
    pretrain = write_yaml("pretrain.yaml", (GOLDEN / "nemo-pretrain-xe9680-8cx7.yaml").read_text()
                          + f"dataset: {json.dumps(HOSTILE)}\n")
    for experiment in (sft, pretrain):
        job = nemo_jobs(experiment)[0]
        keys, config = job_keyset(job)
        cfg = compose_onto(config_dirs[keys.name], config, overrides(job))
        if experiment == sft:
            assert list(cfg.model.data.train_ds.file_names) == [f"{HOSTILE}/training.jsonl"]
            assert list(cfg.model.data.validation_ds.file_names) == [f"{HOSTILE}/validation.jsonl"]
            assert cfg.model.restore_from_path == HOSTILE + ".nemo"
            assert cfg.exp_manager.exp_dir == f"{HOSTILE}/{job.run_id}"
            assert cfg.exp_manager.checkpoint_callback_params.every_n_train_steps == 25
        else:
            assert OmegaConf.to_container(cfg.model.data.data_prefix) == [1.0, HOSTILE]
            assert cfg.model.data.data_impl == "mmap"  # the YAML's default: real data


def test_code_keys_say_where_they_are_read():
    for name in shipped_programs():
        if not name.startswith("nemo-"):
            continue
        keys = keyset(name)
        assert keys.sources and all(s.repo == "NVIDIA/NeMo" and s.tag == keys.version for s in keys.sources)
        for key, entry in keys.code_keys.items():
            assert key not in keys.keys
            assert entry["read_at"] and all(r.count(":") >= 2 and r.rsplit(":", 1)[1].isdigit()
                                            for r in entry["read_at"]), key


def base_without_extra_args() -> tuple[str, str]:
    """The base experiment without its extra_args line, and the tokenizer override that line gives."""
    lines = (HERE / "data" / "base-experiment.yaml").read_text().splitlines(True)
    [extra] = [line for line in lines if line.startswith("extra_args:")]
    return "".join(line for line in lines if line is not extra), extra.split("[", 1)[1].split("]", 1)[0]


def test_validate_accepts_exactly_the_extra_args_hydra_accepts(write_yaml, config_dirs):
    """extra_args follow slurmkit's own overrides: what `validate` lets through composes, and what it
    refuses for Hydra's reasons Hydra refuses too (+ on a YAML key, plain on an absent one, a second
    + on a key slurmkit adds; the last is also a key the job's fields set)."""
    base, tokenizer = base_without_extra_args()
    accepted = [tokenizer, "model.hidden_dropout=0.1", "++model.ffn_dropout=0.1", "++model.attention_dropout=0.1",
                "+exp_manager.checkpoint_callback_params.every_n_train_steps=5"]
    exp = write_yaml("ok.yaml", base + f"extra_args: {json.dumps(accepted)}\n")
    [job] = nemo_jobs(exp)
    keys, config = job_keyset(job)
    cfg = compose_onto(config_dirs[keys.name], config, overrides(job))
    assert (cfg.model.hidden_dropout, cfg.model.ffn_dropout, cfg.model.attention_dropout) == (0.1, 0.1, 0.1)
    assert cfg.exp_manager.checkpoint_callback_params.every_n_train_steps == 5
    plain = overrides(nemo_jobs(write_yaml("plain.yaml", base + f"extra_args: [{tokenizer}]\n"))[0])
    for refused in ["+trainer.max_steps=9", "+model.context_parallel_size=2",
                    "exp_manager.checkpoint_callback_params.every_n_train_steps=5"]:
        with pytest.raises(ConfigError) as err:
            make_plan(write_yaml("bad.yaml", base + f"extra_args: {json.dumps([refused, tokenizer])}\n"))
        assert [line.split(": ")[2] for line in err.value.lines()] == ["extra_args[0]"], refused
        with pytest.raises(ConfigCompositionException):
            compose_onto(config_dirs[keys.name], config, plain + [refused])


def test_gpt_models_compose_onto_the_gpt_config(write_yaml, config_dirs):
    """GPT-family models run megatron_gpt_config, whose YAML has data_prefix (plain there)."""
    base, _ = base_without_extra_args()
    exp = write_yaml("gpt.yaml", base.replace("model: llama2-7b", "model: tiny-gpt")
                     .replace("seq_len: 4096", "seq_len: 256")
                     + "extra_args:\n  - model.tokenizer.type=GPT2BPETokenizer\n")
    [job] = nemo_jobs(exp)
    keys, config = job_keyset(job)
    assert config == "megatron_gpt_config"
    args = overrides(job)
    assert "model.data.data_prefix=[]" in args and prefix_problems(keys, args) == []
    cfg = compose_onto(config_dirs[keys.name], config, args)
    assert (cfg.model.num_layers, cfg.model.hidden_size, cfg.model.data.data_impl) == (2, 64, "mock")
