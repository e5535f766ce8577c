"""Every Megatron-Bridge command slurmkit generates, read the way ``run_script.py`` reads it.

``run_script.py`` (Megatron-Bridge v0.4.0) parses its flags with ``parse_known_args`` and hands
what is left to ``omegaconf_utils.parse_hydra_overrides``: Hydra's ``OverridesParser`` and
``ConfigLoaderImpl._apply_overrides_to_config`` on the ConfigContainer in struct mode. The test
does the same with a parser rebuilt from the shipped flag set and a config rebuilt from the
shipped key set (slurmkit/data/programs/bridge-*.json, read from the source at the tag).
"""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from slurmkit.config.catalog import BUILTIN
from slurmkit.errors import ConfigError
from slurmkit.plan.launch import bridge
from slurmkit.plan.launch.programs import FlagSet, KeySet, flagset, keyset
from slurmkit.plan.launch.software import container_software
from slurmkit.plan.make import JobPlan, make_plan

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
SCENARIOS = sorted([*ROOT.glob("experiments/*.yaml"), *(HERE / "data" / "golden").glob("*.yaml")])
TYPES = {"int": int, "float": float}  # others arrive as the strings the program converts
# --gpu's choices are NUM_GPUS_PER_NODE_MAP.keys() (the flag set records them as unresolved);
# the map's keys at Megatron-Bridge v0.4.0, scripts/performance/argument_parser.py line 30
GPU_CHOICES = {"h100", "b200", "b300", "gb200", "gb300", "vr200", "r100"}


def bridge_jobs(path: Path) -> list[JobPlan]:
    if "launcher: megatron-bridge" not in path.read_text(encoding="utf-8"):
        return []  # other launchers' files are planned by their own tests
    return [j for j in make_plan(path).jobs if j.params["launcher"] == "megatron-bridge"]


BRIDGE_JOBS = [(p.stem, job) for p in SCENARIOS for job in bridge_jobs(p)]


def program_parser(flags: FlagSet) -> argparse.ArgumentParser:
    """An ArgumentParser with the program's options: names, dest, nargs, action, choices, required."""
    parser = argparse.ArgumentParser(allow_abbrev=True, exit_on_error=False, add_help=False)
    by_dest: dict[str, list[str]] = {}
    for name, info in flags.flags.items():
        by_dest.setdefault(info["dest"], []).append(name)
    for dest, names in by_dest.items():
        info = flags.flags[names[0]]
        kwargs = {"dest": dest, "required": info.get("required", False)}
        if info["action"] in ("store_true", "store_false"):
            kwargs["action"] = info["action"]
        else:
            kwargs.update(nargs=info["nargs"], choices=info["choices"], type=TYPES.get(info.get("type")))
            if "const" in info:
                kwargs["const"] = info["const"]
        parser.add_argument(*sorted(names, key=len, reverse=True), **kwargs)
    return parser


def split_command(groups: list[list[str]]) -> tuple[dict[str, str], list[str], list[str]]:
    """(environment, python + script, the script's argv) of a generated command."""
    env_group, run, *rest = groups
    assert env_group[0] == "env"
    env = dict(item.split("=", 1) for item in env_group[1:])
    return env, run, [a for g in rest for a in g]


def apply_overrides(keys: KeySet, overrides: list[str]):
    """What parse_hydra_overrides does, on a config holding exactly the key set's keys."""
    nested: dict = {}
    for key, value in keys.keys.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    cfg = OmegaConf.create(nested)
    OmegaConf.set_struct(cfg, True)
    parsed = OverridesParser.create().parse_overrides(overrides=overrides)
    ConfigLoaderImpl._apply_overrides_to_config(overrides=parsed, cfg=cfg)
    return cfg


def test_shipped_experiments_use_the_launcher():
    stems = {stem for stem, _ in BRIDGE_JOBS}
    assert {"llama3-8b-pretrain-bridge", "llama3-70b-pretrain-bridge",
            "megatron-bridge-pretrain-xe9680-4cx7"} <= stems
    sites = {job.params["site"] for _, job in BRIDGE_JOBS}
    assert {"xe9680-8cx7", "xe9680-4cx7"} <= sites


@pytest.mark.parametrize("job", [j for _, j in BRIDGE_JOBS], ids=[f"{s}:{j.run_id}" for s, j in BRIDGE_JOBS])
def test_every_generated_command_is_accepted_as_the_program_reads_it(job):
    software = container_software(job.params["container_image"])
    flags = flagset(f"bridge-run_script-{software.megatron_bridge}")
    keys = keyset(f"bridge-config-{software.megatron_bridge}")
    env, run, argv = split_command(job.context["command"])
    assert run[-1] == bridge.RUN_SCRIPT
    args, leftovers = program_parser(flags).parse_known_args(argv)
    p = job.params
    assert (args.tensor_model_parallel_size, args.pipeline_model_parallel_size, args.context_parallel_size) \
        == (p["tp"], p["pp"], p["cp"])
    assert (args.global_batch_size, args.micro_batch_size, args.max_steps, args.num_gpus) \
        == (p["gbs"], p["mbs"], p["steps"], p["gpus"])
    assert args.virtual_pipeline_model_parallel_size == str(p["vpp"])
    assert args.gpu in GPU_CHOICES and args.data == "mock" and args.task == "pretrain"
    # only key=value arguments are left for Hydra, and all of them apply in struct mode
    assert leftovers and all("=" in a and not a.startswith("-") for a in leftovers)
    cfg = apply_overrides(keys, leftovers)
    assert cfg.model.seq_length == p["seq_len"]
    assert cfg.scheduler.lr_decay_iters == p["steps"]
    assert cfg.scheduler.lr_warmup_iters == p["warmup_steps"]
    # the device-connection rule of PerfEnvPlugin on H100
    assert env["CUDA_DEVICE_MAX_CONNECTIONS"] == ("1" if p["tp"] > 1 or p["cp"] > 1 else "8")


def test_full_recompute_and_fp8_variants_are_accepted(write_yaml):
    path = write_yaml("exp.yaml", """
        schema_version: 1
        name: bridge-variants
        sites: [xe9680-8cx7]
        workload: pretrain
        launcher: megatron-bridge
        container_image: nvcr.io/nvidia/nemo:26.04.00
        model: llama3-70b
        nodes: 8
        steps: 20
        tp: 4
        pp: 8
        vpp: 5
        sequence_parallel: true
        gbs: 128
        seq_len: 4096
        precision: fp8
        recompute: full
        """)
    (job,) = make_plan(path).jobs
    _, _, argv = split_command(job.context["command"])
    args, leftovers = program_parser(flagset("bridge-run_script-v0.4.0")).parse_known_args(argv)
    assert args.compute_dtype == "fp8_cs"
    cfg = apply_overrides(keyset("bridge-config-v0.4.0"), leftovers)
    assert (cfg.model.recompute_granularity, cfg.model.recompute_method, cfg.model.recompute_num_layers) \
        == ("full", "uniform", 1)


def test_the_emulation_refuses_what_the_program_refuses():
    keys, flags = keyset("bridge-config-v0.4.0"), flagset("bridge-run_script-v0.4.0")
    with pytest.raises(Exception, match="encoder_seq_length"):  # not a ConfigContainer field
        apply_overrides(keys, ["model.encoder_seq_length=8192"])
    with pytest.raises(Exception, match="already at 'model.seq_length'"):  # + on a present key
        apply_overrides(keys, ["+model.seq_length=8192"])
    with pytest.raises(argparse.ArgumentError):  # a choice the program does not offer
        program_parser(flags).parse_known_args(["-m", "llama", "-mr", "x", "-ng", "8", "-g", "h100",
                                                "--compute_dtype", "fp8"])
    with pytest.raises((argparse.ArgumentError, SystemExit)):  # a required flag missing
        program_parser(flags).parse_known_args(["-m", "llama", "-mr", "x", "-g", "h100"])


def test_key_and_flag_sets_record_their_sources():
    keys, flags = keyset("bridge-config-v0.4.0"), flagset("bridge-run_script-v0.4.0")
    assert {(s.repo, s.tag) for s in keys.sources} == {
        ("NVIDIA-NeMo/Megatron-Bridge", "v0.4.0"), ("NVIDIA/Megatron-LM", "core_v0.17.0")}
    assert [(s.repo, s.tag, s.path) for s in flags.sources] == [
        ("NVIDIA-NeMo/Megatron-Bridge", "v0.4.0", "scripts/performance/argument_parser.py")]
    # fields inherited through the class chain: GPTModelProvider -> TransformerConfig (Bridge)
    # -> TransformerConfig (MCore) -> ModelParallelConfig; SchedulerConfig from megatron.training
    for key in ("model.seq_length", "model.tensor_model_parallel_size", "model.recompute_granularity",
                "optimizer.lr", "scheduler.lr_warmup_iters", "scheduler.lr_decay_iters"):
        assert key in keys.keys, key
    assert {n for n, i in flags.flags.items() if i.get("required") and n.startswith("--")} == {
        "--model_family_name", "--model_recipe_name", "--num_gpus", "--gpu"}
    assert flags.flags["--gpu"]["unresolved"] == {"choices": "NUM_GPUS_PER_NODE_MAP.keys()"}
    assert set(bridge.GPU_NAMES) <= GPU_CHOICES


@pytest.mark.parametrize("change, message", [
    ({"container_image": "nvcr.io/nvidia/nemo:24.05"},
     ("launcher megatron-bridge needs an image that ships a Megatron-Bridge slurmkit can check;"
      " nvcr.io/nvidia/nemo:24.05 has no Megatron-Bridge (images that work: nvcr.io/nvidia/nemo:26.04.00)")),
    ({"container_image": "nvcr.io/nvidia/nemo:25.09.00"},
     ("launcher megatron-bridge needs an image that ships a Megatron-Bridge slurmkit can check;"
      " nvcr.io/nvidia/nemo:25.09.00 has Megatron-Bridge v0.1.0rc3, whose arguments slurmkit has no"
      " description of (images that work: nvcr.io/nvidia/nemo:26.04.00)")),
    ({"container_image": "example.org/mine:1"},
     ("launcher megatron-bridge needs an image that ships a Megatron-Bridge slurmkit can check;"
      " example.org/mine:1 has versions slurmkit does not know (images that work: nvcr.io/nvidia/nemo:26.04.00)")),
    ({"sequence_parallel": "true"}, ("sequence_parallel=True: Megatron-Bridge's run_script.py turns sequence"
     " parallelism on exactly when tp > 1 (tp=1)")),
    ({"model": "llama2-7b"}, "launcher megatron-bridge has no recipe for model llama2-7b"),
])
def test_validate_refuses_what_the_recipe_cannot_run(write_yaml, change, message):
    fields = {"schema_version": "1", "name": "bridge-bad", "sites": "[xe9680-8cx7]", "workload": "pretrain",
              "launcher": "megatron-bridge", "container_image": "nvcr.io/nvidia/nemo:26.04.00",
              "model": "llama3-8b", "nodes": "1", "steps": "20", "cp": "2", "gbs": "128", "seq_len": "8192",
              **change}
    path = write_yaml("exp.yaml", "".join(f"{k}: {v}\n" for k, v in fields.items()))
    line = list(fields).index(next(iter(change))) + 1
    with pytest.raises(ConfigError) as err:
        make_plan(path)
    text = "\n".join(str(p) for p in err.value.problems)
    assert f"exp.yaml:{line}:" in text and message in text


def _extractor():
    spec = importlib.util.spec_from_file_location("extract_bridge", ROOT / "scripts" / "programs" / "extract_bridge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extractor_follows_bases_across_modules_and_relative_imports():
    ex = _extractor()
    modules = {
        "pkg.core.base": ex.Module("pkg.core.base", "from dataclasses import dataclass\n"
                                   "@dataclass\nclass Base:\n    a: int = 1\n    b: str = 'x'\n"),
        "pkg.core.sub.child": ex.Module("pkg.core.sub.child", "from ..base import Base\nfrom typing import ClassVar\n"
                                        "class Child(Base):\n    b: str = 'y'\n    c: list = field(default_factory=list)\n"
                                        "    K: ClassVar[int] = 3\n"),
        "pkg.top": ex.Module("pkg.top", "from pkg.core.sub.child import Child as C\n"
                             "class Top(C, Generic[T]):\n    d: float = 0.5\n"),
    }
    assert ex.class_fields(modules, "pkg.top", "Top") == {"a": 1, "b": "y", "c": None, "d": 0.5}


def test_extra_args_are_hydra_overrides_checked_against_the_key_set(write_yaml):
    base = """
        schema_version: 1
        name: bridge-extra
        sites: [xe9680-8cx7]
        workload: pretrain
        launcher: megatron-bridge
        container_image: nvcr.io/nvidia/nemo:26.04.00
        model: llama3-8b
        nodes: 1
        steps: 20
        cp: 2
        gbs: 128
        seq_len: 8192
        """
    good = write_yaml("good.yaml", base + "extra_args: [train.manual_gc_interval=50, ddp.overlap_grad_reduce=false]\n")
    (job,) = make_plan(good).jobs
    _, _, argv = split_command(job.context["command"])
    _, leftovers = program_parser(flagset("bridge-run_script-v0.4.0")).parse_known_args(argv)
    cfg = apply_overrides(keyset("bridge-config-v0.4.0"), leftovers)
    assert cfg.train.manual_gc_interval == 50 and cfg.ddp.overlap_grad_reduce is False
    bad = write_yaml("bad.yaml", base + "extra_args: [model.seq_len=4096]\n")
    with pytest.raises(ConfigError) as err:
        make_plan(bad)
    text = "\n".join(str(p) for p in err.value.problems)
    assert "bad.yaml:13:" in text and "model.seq_len is not a key of" in text and "model.seq_length" in text


# Llama 3 / 3.1 architectures as NVIDIA's code states them: NVIDIA/NeMo v2.4.0
# nemo/collections/llm/gpt/model/llama.py (Llama3Config: num_query_groups 8, line 139;
# Llama3Config8B/70B lines 199-229, Llama31Config8B/70B lines 233-264: layers, hidden, ffn, heads,
# seq_length) and the vocabulary the Llama 3 recipes set, 128256 (NVIDIA-NeMo/Megatron-Bridge v0.4.0
# scripts/performance/configs/llama/llama3_llm_pretrain.py, set_llama3_common_configs).
PUBLISHED_LLAMA3 = {  # model: (layers, hidden, ffn_hidden, heads, kv_heads, vocab, max_seq_len)
    "llama3-8b": (32, 4096, 14336, 32, 8, 128256, 8192),
    "llama3-70b": (80, 8192, 28672, 64, 8, 128256, 8192),
    "llama3.1-8b": (32, 4096, 14336, 32, 8, 128256, 131072),
    "llama3.1-70b": (80, 8192, 28672, 64, 8, 128256, 131072),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_LLAMA3))
def test_catalogue_llama3_matches_the_published_configs(name):
    m = BUILTIN[name]
    assert (m.layers, m.hidden, m.ffn_hidden, m.heads, m.kv_heads, m.vocab, m.max_seq_len) == PUBLISHED_LLAMA3[name]
    assert (m.mlp, m.tied_embeddings, m.bias) == ("swiglu", False, False)
