"""Every Megatron-LM command line slurmkit writes is one that ``pretrain_gpt.py`` accepts at the
Megatron Core the container ships, and it runs what the job's parameters say.

The command is read back from the rendered script (as bash will split it) and parsed by a parser
rebuilt from the shipped flag set (slurmkit/data/programs/megatron-pretrain_gpt-<tag>.json,
written by scripts/programs/extract_argparse.py from NVIDIA/Megatron-LM at that tag): an unknown
flag, a value outside its choices or of the wrong type fails. The parsed values are then compared
with the job's parameters, and the start-up checks of Megatron's ``validate_args`` (core_v0.7.0,
megatron/training/arguments.py) are restated on them.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
import yaml

from slurmkit.config.catalog import BUILTIN
from slurmkit.config.experiment import Experiment, JobSpec
from slurmkit.config.site import Site, load_site
from slurmkit.errors import ConfigError
from slurmkit.plan.launch import megatron
from slurmkit.plan.launch.common import Job, resolve_paths
from slurmkit.plan.launch.flagparser import FlagError, parse_flags
from slurmkit.plan.launch.programs import PROGRAMS_DIR, FlagSet, load_program
from slurmkit.plan.launch.software import container_software
from slurmkit.plan.make import JobPlan
from slurmkit.plan.make import make_plan as plan_of
from slurmkit.plan.render import render_plan


def make_plan(experiment, *args, templates_dir=None, **kwargs):
    """The plan with its scripts rendered, as `generate` makes it."""
    return render_plan(plan_of(experiment, *args, **kwargs), templates_dir)

ROOT = Path(__file__).parents[2]
HERE = Path(__file__).parent
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml")) + sorted((HERE / "data" / "golden").glob("*.yaml"))
SHIPPED = ROOT / "experiments" / "llama2-pretrain-megatron.yaml"


def _launchers(path: Path) -> set:
    data = yaml.safe_load(path.read_text())
    matrix = data.get("matrix") or {}
    return {data.get("launcher"), *matrix.get("launcher", []),
            *(entry.get("launcher") for entry in matrix.get("include", []))}


def _megatron_jobs() -> list[tuple[str, JobPlan]]:
    jobs = []
    for path in EXPERIMENTS:
        if "megatron" in _launchers(path):
            jobs += [(f"{path.stem}:{job.run_id}", job) for job in make_plan(path).jobs
                     if job.params["launcher"] == "megatron"]
    return jobs


JOBS = _megatron_jobs()


def srun_argv(job: JobPlan) -> list[str]:
    """The script's srun command as bash splits it (continuation lines joined)."""
    text = job.text.replace("\\\n", " ")
    return shlex.split(next(line for line in text.splitlines() if line.startswith("srun ")))


def megatron_argv(job: JobPlan) -> tuple[str, list[str]]:
    """(the script path, the flags after it)."""
    argv = srun_argv(job)
    i = next(i for i, arg in enumerate(argv) if arg.endswith(f"/{megatron.SCRIPT}"))
    return argv[i], argv[i + 1:]


def flag_set_of(job: JobPlan) -> FlagSet:
    software = container_software(job.params["container_image"])
    program = load_program(megatron.program_name(software.megatron_core))
    assert isinstance(program, FlagSet)
    return program


def test_the_shipped_experiment_and_the_goldens_are_covered():
    names = {name.split(":")[0] for name, _ in JOBS}
    assert {"llama2-pretrain-megatron", "megatron-pretrain-xe9680-8cx7", "megatron-pretrain-r760xa-l40s",
            "megatron-pretrain-xe9680-4cx7"} <= names
    assert len([n for n in names if not n.startswith("megatron-")]) >= 1


@pytest.mark.parametrize("name, job", JOBS, ids=[name for name, _ in JOBS])
def test_every_flag_exists_with_a_valid_value(name, job):
    script, argv = megatron_argv(job)
    assert script == f"{megatron.CONTAINER_MEGATRON_DIR}/{megatron.SCRIPT}"
    flags = flag_set_of(job)
    assert flags.version == "core_v0.7.0"
    try:
        parse_flags(flags, argv)
    except FlagError as exc:
        pytest.fail(f"{name}: {flags.program} ({flags.version}) refuses the command line: {exc}")


@pytest.mark.parametrize("name, job", JOBS, ids=[name for name, _ in JOBS])
def test_the_command_runs_what_the_parameters_say(name, job):
    p = job.params
    ns = parse_flags(flag_set_of(job), megatron_argv(job)[1])
    assert ns.use_mcore_models and ns.transformer_impl == "transformer_engine"
    assert (ns.tensor_model_parallel_size, ns.pipeline_model_parallel_size, ns.context_parallel_size) == \
        (p["tp"], p["pp"], p["cp"])
    assert ns.sequence_parallel == p["sequence_parallel"]
    if p["vpp"] is None:
        assert ns.num_layers_per_virtual_pipeline_stage is None
    else:  # Megatron: vpp = layers / pp / layers per virtual stage (validate_args)
        per_stage = p["model_layers"] // p["pp"]
        assert per_stage % ns.num_layers_per_virtual_pipeline_stage == 0
        assert per_stage // ns.num_layers_per_virtual_pipeline_stage == p["vpp"]
    assert (ns.seq_length, ns.micro_batch_size, ns.global_batch_size) == (p["seq_len"], p["mbs"], p["gbs"])
    assert (ns.train_iters, ns.lr_warmup_iters) == (p["steps"], p["warmup_steps"])
    assert ns.bf16 and ns.fp8 == ("hybrid" if p["precision"] == "fp8" else None)
    assert (ns.num_layers, ns.hidden_size, ns.ffn_hidden_size, ns.num_attention_heads) == \
        (p["model_layers"], p["model_hidden"], p["model_ffn_hidden"], p["model_heads"])
    assert (ns.num_query_groups if ns.group_query_attention else ns.num_attention_heads) == p["model_kv_heads"]
    assert ns.mock_data == (p["dataset"] == "synthetic")
    assert ns.data_path == (None if ns.mock_data else [p["dataset"]])
    # NullTokenizer(vocab_size) adds one end-of-document id (megatron/training/tokenizer/tokenizer.py)
    assert ns.tokenizer_type == "NullTokenizer" and ns.vocab_size + 1 == p["model_vocab"]
    assert ns.log_interval == 1 and ns.eval_iters == 0
    _megatron_start_up_checks(ns, gpus=p["gpus"], dp=p["dp"])


def _megatron_start_up_checks(ns: Namespace, gpus: int, dp: int) -> None:
    """The assertions of validate_args (core_v0.7.0) that a generated command could break."""
    model_parallel = ns.tensor_model_parallel_size * ns.pipeline_model_parallel_size
    assert gpus % (model_parallel * ns.context_parallel_size) == 0
    assert gpus // (model_parallel * ns.context_parallel_size) == dp
    if ns.num_layers_per_virtual_pipeline_stage is not None:
        assert ns.pipeline_model_parallel_size > 2, "interleaved schedule needs pp > 2"
        assert ns.num_layers % ns.pipeline_model_parallel_size == 0
        assert (ns.global_batch_size // (ns.micro_batch_size * dp)) % ns.pipeline_model_parallel_size == 0
    assert ns.global_batch_size % (ns.micro_batch_size * dp) == 0
    assert ns.max_position_embeddings >= ns.seq_length
    assert ns.min_lr <= ns.lr
    assert ns.mock_data + bool(ns.data_path) + any([ns.train_data_path, ns.valid_data_path,
                                                    ns.test_data_path]) == 1, "a single data source"
    if ns.save is not None:
        assert ns.save_interval is not None
    if ns.recompute_activations:
        assert ns.recompute_granularity is None and ns.recompute_method is None  # selective takes no method
    assert not (ns.fp16 and ns.bf16)


def test_the_shipped_experiment_has_the_reference_shapes():
    plan = make_plan(SHIPPED, strict=True)
    assert not plan.warnings
    shapes, limits = {}, {}
    for job in plan.jobs:
        p, ns = job.params, parse_flags(flag_set_of(job), megatron_argv(job)[1])
        recompute = "full" if ns.recompute_granularity == "full" else "selective" if ns.recompute_activations else None
        shapes[(p["site"], p["model"], p["nodes"])] = (p["tp"], p["pp"], p["vpp"], p["sequence_parallel"],
                                                      p["gbs"], p["seq_len"], p["steps"], p["precision"],
                                                      p["dataset"], recompute)
        limits[(p["model"], p["nodes"])] = p["time_limit_min"]
    seven = (1, 1, None, False, 128, 4096, 500, "bf16", "synthetic", "selective")
    seventy = (4, 4, 5, True, 128, 4096, 500, "bf16", "synthetic", "selective")
    expected = {}
    for site in ("xe9680-8cx7", "xe9680-4cx7"):
        expected |= {(site, "llama2-7b", n): seven for n in (1, 2, 4, 8)}
        expected |= {(site, "llama2-70b", n): seventy for n in (4, 8)}
        expected[(site, "llama2-70b", 2)] = (*seventy[:-1], "full")  # as the NeMo 70B experiment
    assert shapes == expected
    # 500 70B steps on 2 nodes with full recompute take about 6 h at NVIDIA's published BF16 rate
    assert limits == {**{("llama2-7b", n): 120 for n in (1, 2, 4, 8)},
                      ("llama2-70b", 2): 480, ("llama2-70b", 4): 240, ("llama2-70b", 8): 180}


@pytest.mark.parametrize("extra, message", [
    (["--use-legacy-models"], "unrecognized arguments: --use-legacy-models"),  # added in core_v0.8.0
    (["--rotary-base", "10000"], "unrecognized arguments: --rotary-base"),  # added after core_v0.7.0
    (["--tokenizer-type", "HuggingFaceTokenizer"], "invalid choice: 'HuggingFaceTokenizer'"),
    (["--fp8-format", "e5m2"], "invalid choice: 'e5m2'"),
    (["--num-layers", "80.5"], "invalid int value: '80.5'"),
    (["--lr", "high"], "invalid float value: 'high'"),
    (["--recompute-activation"], "unrecognized arguments: --recompute-activation"),  # abbreviation
    (["--made-up-flag"], "unrecognized arguments: --made-up-flag"),
])
def test_a_flag_or_value_absent_at_the_tag_is_refused(extra, message):
    _, job = next((n, j) for n, j in JOBS if n.startswith("llama2-pretrain-megatron:"))
    argv = megatron_argv(job)[1]
    parse_flags(flag_set_of(job), argv)  # the generated line alone passes
    with pytest.raises(FlagError, match=message):
        parse_flags(flag_set_of(job), argv + extra)


def test_each_task_gets_its_rank_from_slurm(tmp_path):
    _, job = JOBS[0]
    argv = srun_argv(job)
    i = argv.index("bash")
    wrapper = argv[i:i + 4]
    assert wrapper[:2] == ["bash", "-c"] and argv[i + 4] == job.context["python"]
    assert "export MASTER_ADDR=${SK_NODES[0]}\n" in job.text and "\nexport MASTER_PORT=$((" in job.text
    show = "import os, sys; print(os.environ['RANK'], os.environ['LOCAL_RANK'], os.environ['WORLD_SIZE'], sys.argv[1:])"
    env = {"SLURM_PROCID": "13", "SLURM_LOCALID": "5", "SLURM_NTASKS": "16", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([*wrapper, sys.executable, "-c", show, "a b", "it's"], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out == "13 5 16 ['a b', \"it's\"]\n"


def test_program_is_the_flag_set_of_the_containers_megatron_core():
    site, _ = load_site("xe9680-8cx7")
    spec = JobSpec.model_validate({"site": site.name, "model": "llama2-7b", "workload": "pretrain",
                             "launcher": "megatron", "nodes": 1, "steps": 10, "gbs": 8, "seq_len": 4096})
    flags = megatron.program(spec, site)
    assert isinstance(flags, FlagSet) and flags.version == "core_v0.7.0"
    assert [(s.repo, s.tag, s.path) for s in flags.sources] == [
        ("NVIDIA/Megatron-LM", "core_v0.7.0", "megatron/training/arguments.py"),
        ("NVIDIA/Megatron-LM", "core_v0.7.0", "pretrain_gpt.py")]
    unknown = JobSpec.model_validate({**spec.model_dump(), "container_image": "registry.example/own:1"})
    assert megatron.program(unknown, site) is None
    software = {**site.software.model_dump(), "megatron_dir": "/home/me/Megatron-LM"}
    own_checkout = Site.model_validate({**site.model_dump(), "software": software})
    assert megatron.program(spec, own_checkout) is None  # the user's checkout: version unknown


def test_flag_set_file_records_its_source():
    data = json.loads((PROGRAMS_DIR / "megatron-pretrain_gpt-core_v0.7.0.json").read_text())
    assert data["kind"] == "argparse" and data["allow_abbrev"] is False
    assert {s["commit"] for s in data["sources"]} == {"a645f89671be698612170539f2089dc15db66a80"}
    assert [s["flag_count"] for s in data["sources"]] == [len(data["flags"]), 0]  # pretrain_gpt.py adds none
    assert data["flags"]["--timing-log-level"]["choices"] == [0, 1, 2]  # choices=range(0,3) in the source
    # the one call that could add flags unread: parse_args' extra_args_provider, which pretrain_gpt.py
    # leaves None at the tag (it calls pretrain(...) with args_defaults only)
    assert [w.split(":")[:2] + [w.split(": ")[1].split(" ")[0]] for w in data["warnings"]] == [
        ["megatron/training/arguments.py", "49", "extra_args_provider(parser)"]]


@pytest.mark.parametrize("edits, message", [
    ({"pp: 4": "pp: 2", "vpp: 2": "vpp: 4"}, "vpp=4 with pp=2: Megatron-LM's interleaved schedule needs pp > 2"),
    ({"gbs: 64": "gbs: 6", "nodes: 4": "nodes: 3"},  # 12 GPUs, tp2 pp4: dp 1.5 -> reported elsewhere
     "does not divide"),
    ({"gbs: 64": "gbs: 2"}, "gbs/(mbs*dp) = 1 micro-batches, not divisible by pp=4"),
])
def test_interleaved_schedule_limits_are_errors(tmp_path, edits, message):
    text = (HERE / "data" / "golden" / "megatron-pretrain-r760xa-l40s.yaml").read_text()
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        make_plan(path)
    assert any(message in line for line in caught.value.lines()), caught.value.lines()


def test_an_image_without_a_flag_set_is_a_warning(tmp_path):
    text = (HERE / "data" / "golden" / "megatron-pretrain-xe9680-4cx7.yaml").read_text()
    path = tmp_path / "exp.yaml"
    path.write_text(text + "container_image: registry.example/own-megatron:1\n")
    plan = make_plan(path)  # the user's own Megatron-LM may run the flags: generated, with a warning
    assert len(plan.jobs) == 1
    assert [str(w) for w in plan.warnings] == [(
        f"{path}:21:18: launcher megatron: slurmkit cannot check pretrain_gpt.py's flags: it has no flag set"
        " for container image 'registry.example/own-megatron:1' with megatron_dir '/opt/megatron-lm'"
        " (hint: use an image slurmkit knows (nvcr.io/nvidia/nemo:24.05 (core_v0.7.0)) with megatron_dir"
        " /opt/megatron-lm)")]
    with pytest.raises(ConfigError):
        make_plan(path, strict=True)


def test_hostile_paths_reach_megatron_intact(tmp_path):
    text = (HERE / "data" / "golden" / "megatron-pretrain-xe9680-8cx7.yaml").read_text()
    hostile = "/mnt/powerscale/ck pts/it's $(rm -rf ~); `x`"
    text = text.replace("checkpoint_dir: /mnt/powerscale/checkpoints/megatron", f'checkpoint_dir: "{hostile}"')
    text += 'dataset: "/mnt/powerscale/data/my corpus;x/text_document"\n'
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    job = make_plan(path).jobs[0]
    ns = parse_flags(flag_set_of(job), megatron_argv(job)[1])
    assert ns.save == ns.load == f"{hostile}/{job.run_id}"
    assert ns.data_path == ["/mnt/powerscale/data/my corpus;x/text_document"] and not ns.mock_data
    subprocess.run(["bash", "-n", "-c", job.text], check=True)


@pytest.mark.parametrize("model_name", ["gpt3-175b", "tiny-gpt", "mistral-7b"])
def test_each_architecture_field_becomes_its_flag(model_name):
    """Models no shipped experiment runs with Megatron-LM: their flags exist too, and each
    catalogue field reaches Megatron (GPT-3: LayerNorm, learned positions, biases, tied
    embeddings, GELU, Megatron's dropout)."""
    site, _ = load_site("xe9680-8cx7")
    model = BUILTIN[model_name]
    spec = JobSpec.model_validate({"site": site.name, "model": model_name, "workload": "pretrain",
                             "launcher": "megatron", "nodes": 1, "steps": 10, "gbs": 8,
                             "seq_len": min(2048, model.max_seq_len)})
    experiment = Experiment.model_validate({"schema_version": 1, "name": "x", "sites": [site.name]})
    job = Job("run", spec, model, site, experiment, resolve_paths(spec, site, experiment, "run"))
    argv = [arg for group in megatron.command(job) for arg in group]
    ns = parse_flags(megatron.program(spec, site), argv[1:])
    assert ns.normalization == ("LayerNorm" if model.family == "gpt" else "RMSNorm")
    assert ns.position_embedding_type == ("learned_absolute" if model.learned_positions else "rope")
    assert ns.swiglu == (model.mlp == "swiglu") and ns.add_bias_linear == model.bias
    assert ns.untie_embeddings_and_output_weights == (not model.tied_embeddings)
    assert ns.group_query_attention == (model.kv_heads != model.heads)
    dropout = 0.1 if model.family == "gpt" else 0.0  # 0.1: Megatron's default at the tag
    assert (ns.hidden_dropout, ns.attention_dropout) == (dropout, dropout)
