"""Every NeMo 2 job slurmkit generates, read the way its carried entry reads it.

The job runs ``slurmkit/plan/launch/entries/nemo2_pretrain.py`` in the container: it builds NeMo's
``llm.recipes.<recipe>.pretrain_recipe()`` and sets each ``key=value`` on the recipe's Config
tree, where fiddle accepts only the parameters of the class each node builds. The key sets
(slurmkit/data/programs/nemo2-*.json) are those parameters, read from NeMo 2.5.0, Megatron Core
core_v0.14.0 and Lightning 2.2.2-2.4.0 by scripts/programs/extract_nemo2.py. ``nemo`` and
``nemo_run`` cannot be installed here (CUDA, Megatron Core, Transformer Engine), so the entry runs
against small stand-ins built from the key set: a Config refuses a parameter its class lacks, as
fiddle does, and ``nemo_run.run`` records the configured tree.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from slurmkit.errors import ConfigError
from slurmkit.plan.launch import nemo2
from slurmkit.plan.launch.programs import PROGRAMS_DIR, KeySet, keyset
from slurmkit.plan.launch.software import CONTAINERS
from slurmkit.plan.make import JobPlan
from slurmkit.plan.make import make_plan as plan_of
from slurmkit.plan.render import render_plan, write_plan


def make_plan(experiment, *args, templates_dir=None, **kwargs):
    """The plan with its scripts rendered, as `generate` makes it."""
    return render_plan(plan_of(experiment, *args, **kwargs), templates_dir)


HERE = Path(__file__).parent
ROOT = HERE.parents[1]
ENTRY = ROOT / "slurmkit" / "plan" / "launch" / "entries" / "nemo2_pretrain.py"
SCENARIOS = sorted([*ROOT.glob("experiments/*.yaml"), *(HERE / "data" / "golden").glob("*.yaml")])
IMAGE = "nvcr.io/nvidia/nemo:25.09.00"


def nemo2_jobs(path: Path) -> list[JobPlan]:
    if "launcher: nemo2" not in path.read_text(encoding="utf-8"):
        return []
    return [j for j in make_plan(path).jobs if j.params["launcher"] == "nemo2"]


JOBS = [(p.stem, job) for p in SCENARIOS for job in nemo2_jobs(p)]


def _entry_module():
    spec = importlib.util.spec_from_file_location("nemo2_pretrain", ENTRY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def split_command(groups: list[list[str]]) -> tuple[dict[str, str], list[str], list[str]]:
    """(environment, python -u entry, the entry's argv) of a generated command."""
    env_group, run, *rest = groups
    assert env_group[0] == "env"
    return dict(item.split("=", 1) for item in env_group[1:]), run, [a for g in rest for a in g]


# --- the value kinds the key set's annotations allow ------------------------------------------

def accepts(annotation: str | None, default, value) -> bool:
    """Whether ``value`` (as the entry parses it) is of a kind the parameter's annotation names."""
    if annotation is None:
        return value is None or default is None or type(value) is type(default)
    return _accepts(ast.parse(annotation, mode="eval").body, value)


def _name(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def _accepts(node: ast.expr, value) -> bool:
    if isinstance(node, ast.Constant):
        if node.value is None:
            return value is None
        if isinstance(node.value, str):  # a forward reference: 'TokenizerSpec'
            return _accepts(ast.parse(node.value, mode="eval").body, value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _accepts(node.left, value) or _accepts(node.right, value)
    if isinstance(node, ast.Subscript):
        outer = _name(node.value)
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if outer == "Optional":
            return value is None or _accepts(args[0], value)
        if outer == "Union":
            return any(_accepts(a, value) for a in args)
        if outer == "Literal":
            return value in [ast.literal_eval(a) for a in args]
        if outer in ("List", "list", "Sequence", "Tuple", "tuple"):
            return isinstance(value, (list, tuple))
        return False
    name = _name(node)
    if name == "bool":
        return isinstance(value, bool)
    if name == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "str":
        return isinstance(value, str)
    return False  # a class (a logger, a callback): no setting slurmkit writes is one


def setting_problems(keys: KeySet, settings: list[str]) -> list[str]:
    """What the recipe's Config tree refuses: an unknown key, or a value of the wrong kind."""
    types = json.loads((PROGRAMS_DIR / f"{keys.name}.json").read_text(encoding="utf-8"))["types"]
    parse = _entry_module().parse_setting
    problems = []
    for text in settings:
        key, value = parse(text)
        if key not in keys.keys:
            problems.append(f"{key}: not a key (nearest {keys.nearest(key)})")
        elif not accepts(types[key], keys.keys[key], value):
            problems.append(f"{key}: {value!r} is not {types[key]}")
    return problems


def _settings(argv: list[str]) -> list[str]:
    return [a for a in argv if "=" in a and not a.startswith("-")]


def test_shipped_experiments_use_the_launcher():
    assert {name for name, _ in JOBS} >= {"llama3-8b-pretrain-nemo2", "llama3-70b-pretrain-nemo2",
                                          "nemo2-pretrain-xe9680-8cx7"}
    assert {job.params["site"] for name, job in JOBS if name == "llama3-8b-pretrain-nemo2"} == \
        {"xe9680-8cx7", "xe9680-4cx7"}


@pytest.mark.parametrize("job", [j for _, j in JOBS], ids=[f"{n}-{j.run_id}" for n, j in JOBS])
def test_every_setting_is_a_key_of_the_recipe_with_a_value_of_its_kind(job):
    keys = nemo2.program(_spec(job), _site(job))
    assert keys is not None and keys.version.startswith("NeMo v2.5.0")
    argv = split_command(job.context["command"])[2]
    settings = _settings(argv)
    assert len(settings) >= 20 and setting_problems(keys, settings) == []
    # the entry's own flags: the recipe, and the null tokenizer's size (the model's vocabulary - 1)
    entry = _entry_module().parse_args(argv)
    assert entry.recipe == {"llama3-8b": "llama3_8b", "llama3-70b": "llama3_70b"}[job.params["model"]]
    assert entry.vocab_size + 1 == job.params["model_vocab"] and entry.performance_mode


def test_a_misspelt_key_or_a_value_of_the_wrong_kind_is_refused():
    keys = keyset("nemo2-v2.5.0-llama3_8b")
    assert setting_problems(keys, ["trainer.max_step=5"]) == [
        "trainer.max_step: not a key (nearest trainer.max_steps)"]
    assert setting_problems(keys, ["trainer.max_steps=fifty"]) == ["trainer.max_steps: 'fifty' is not int"]
    assert setting_problems(keys, ["trainer.strategy.sequence_parallel=1"]) == [
        "trainer.strategy.sequence_parallel: 1 is not bool"]
    assert setting_problems(keys, ["optim.config.lr=None", "trainer.devices=auto", "log.ckpt=None"]) == []


def test_recompute_variants_are_keys_too(write_yaml):
    for recompute, expected in (("full", {"model.config.recompute_granularity=full",
                                          "model.config.recompute_method=uniform",
                                          "model.config.recompute_num_layers=1"}),
                                ("selective", {"model.config.recompute_granularity=selective"})):
        path = write_yaml(f"{recompute}.yaml", _yaml({"recompute": recompute}))
        (job,) = make_plan(path).jobs
        settings = _settings(split_command(job.context["command"])[2])
        assert expected <= set(settings) and setting_problems(keyset("nemo2-v2.5.0-llama3_8b"), settings) == []


# --- the entry, run against stand-ins for nemo and nemo_run -----------------------------------

FAKE_NEMO_RUN = '''
import json, os

KEYS = json.load(open(os.environ["FAKE_KEYS"]))

class Target:
    """What a node of the tree builds: its parameters are the key set's keys under `section`."""
    def __init__(self, section, params=None):
        self.section = section
        self.params = params if params is not None else {
            k[len(section) + 1:] for k in KEYS["keys"] if k.startswith(section + ".")
            and "." not in k[len(section) + 1:]}

class Config:
    def __init__(self, target, **kwargs):
        object.__setattr__(self, "target", target)
        object.__setattr__(self, "args", {})
        for name, value in kwargs.items():
            setattr(self, name, value)
    def __getattr__(self, name):
        if name in self.args:
            return self.args[name]
        if name in self.target.params:
            return None
        raise AttributeError(name)
    def __setattr__(self, name, value):
        if name not in self.target.params:  # fiddle: no parameter named `name`
            raise AttributeError(f"No parameter named {name!r} exists for {self.target.section}")
        self.args[name] = value

Partial = Config

def flat(node, prefix, out):
    for name, value in node.args.items():
        key = f"{prefix}{name}"
        if isinstance(value, Config):
            flat(value, key + ".", out)
        else:
            out[key] = value
    return out

def run(recipe, direct=False, **kwargs):
    record = json.load(open(os.environ["FAKE_OUT"]))
    record.update(direct=direct, kwargs=sorted(kwargs), tree=flat(recipe, "", {}))
    json.dump(record, open(os.environ["FAKE_OUT"], "w"))
'''

FAKE_RECIPE = '''
import json, os
import nemo_run as run
from nemo_run import Config, Target

def pretrain_recipe(**kwargs):
    unknown = set(kwargs) - set(run.KEYS["factory"]["params"])
    if unknown:
        raise TypeError(f"pretrain_recipe() got an unexpected keyword argument {sorted(unknown)}")
    json.dump({"factory_kwargs": kwargs}, open(os.environ["FAKE_OUT"], "w"))
    T = Target
    return run.Partial(Target("pretrain", {"model", "data", "trainer", "log", "resume", "optim"}),
        model=Config(T("model"), config=Config(T("model.config"))),
        trainer=Config(T("trainer"), strategy=Config(T("trainer.strategy"), ddp=Config(T("trainer.strategy.ddp"))),
                       plugins=Config(T("trainer.plugins"))),
        data=Config(T("data")), log=Config(T("log")),
        optim=Config(T("optim"), config=Config(T("optim.config")), lr_scheduler=Config(T("optim.lr_scheduler"))))
'''

FAKE_TOKENIZER = '''
from nemo_run import Target
get_nmt_tokenizer = Target("data.tokenizer")
'''


@pytest.fixture
def fakes(tmp_path):
    """A folder with stand-in ``nemo_run`` and ``nemo`` packages (only what the entry imports)."""
    root = tmp_path / "site"
    files = {"nemo_run/__init__.py": FAKE_NEMO_RUN,
             "nemo/collections/nlp/modules/common/tokenizer_utils.py": FAKE_TOKENIZER,
             **{f"nemo/collections/llm/recipes/{r}.py": FAKE_RECIPE for r in nemo2.RECIPES.values()}}
    for path, text in files.items():
        file = root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(textwrap.dedent(text), encoding="utf-8")
        for parent in file.relative_to(root).parents:
            if str(parent) != ".":
                (root / parent / "__init__.py").touch()
    return root


def run_entry(fakes: Path, argv: list[str], recipe: str = "llama3_8b") -> tuple[subprocess.CompletedProcess, dict]:
    out = fakes.parent / "record.json"
    out.write_text("{}")
    env = {**os.environ, "PYTHONPATH": str(fakes), "FAKE_OUT": str(out),
           "FAKE_KEYS": str(ROOT / "slurmkit" / "data" / "programs" / f"nemo2-v2.5.0-{recipe}.json")}
    # -S: no site-packages, so the stand-ins are the only nemo and nemo_run there are, and
    # slurmkit is not importable (the container does not have it either)
    proc = subprocess.run([sys.executable, "-S", str(ENTRY), *argv], env=env, capture_output=True, text=True, check=False,
                          cwd=fakes.parent, timeout=60)
    return proc, json.loads(out.read_text())


@pytest.mark.parametrize("job", [j for _, j in JOBS], ids=[f"{n}-{j.run_id}" for n, j in JOBS])
def test_the_entry_builds_the_recipe_and_sets_every_setting(fakes, job):
    argv = split_command(job.context["command"])[2]
    recipe = argv[argv.index("--recipe") + 1]
    proc, record = run_entry(fakes, argv, recipe)
    assert proc.returncode == 0, proc.stderr
    tree, p = record["tree"], job.params
    assert record["factory_kwargs"] == {"performance_mode": True} and record["direct"] is True
    assert {k: tree[f"data.tokenizer.{k}"] for k in ("library", "model_name", "vocab_size")} == \
        {"library": "null", "model_name": "NullTokenizer", "vocab_size": p["model_vocab"] - 1}
    assert {k: v for k, v in tree.items() if k.startswith("model.tokenizer.")} == \
        {k.replace("data.", "model.", 1): v for k, v in tree.items() if k.startswith("data.tokenizer.")}
    expected = {  # from the job's parameters, with the Python types the classes take
        "trainer.num_nodes": p["nodes"], "trainer.devices": p["gpus_per_node"], "trainer.max_steps": p["steps"],
        "trainer.strategy.tensor_model_parallel_size": p["tp"],
        "trainer.strategy.pipeline_model_parallel_size": p["pp"],
        "trainer.strategy.context_parallel_size": p["cp"],
        "trainer.strategy.virtual_pipeline_model_parallel_size": p["vpp"],
        "trainer.strategy.sequence_parallel": p["sequence_parallel"],
        "data.micro_batch_size": p["mbs"], "data.global_batch_size": p["gbs"], "data.seq_length": p["seq_len"],
        "model.config.seq_length": p["seq_len"], "optim.lr_scheduler.max_steps": p["steps"],
        "optim.lr_scheduler.warmup_steps": p["warmup_steps"], "trainer.limit_val_batches": 0,
        "trainer.enable_checkpointing": False, "log.ckpt": None, "log.tensorboard": None,
    }
    assert {k: tree[k] for k in expected} == expected
    assert all(type(tree[k]) is type(v) for k, v in expected.items())  # 4 is an int, True a bool
    assert isinstance(tree["optim.config.lr"], float)
    # NeMo's logs go to the run's folder on the checkpoints mount, not the container's working
    # directory (every shipped nemo2 site declares that mount)
    assert tree["log.log_dir"] == f"/mnt/powerscale/checkpoints/{p['experiment']}/{job.run_id}"


def test_the_entry_refuses_what_fiddle_refuses_and_malformed_settings(fakes):
    proc, _ = run_entry(fakes, ["--recipe", "llama3_8b", "--vocab-size", "128255", "trainer.max_step=5"])
    assert proc.returncode == 1 and "trainer.max_step" in proc.stderr and "No parameter named" in proc.stderr
    proc, _ = run_entry(fakes, ["--recipe", "llama3_8b", "--vocab-size", "128255", "trainer.bogus.x=5"])
    assert proc.returncode == 1 and "the recipe has no trainer.bogus" in proc.stderr
    proc, _ = run_entry(fakes, ["--recipe", "llama3_8b", "--vocab-size", "128255", "max_steps=5"])
    assert proc.returncode == 2 and "not KEY=VALUE" in proc.stderr
    proc, _ = run_entry(fakes, ["--recipe", "../x", "--vocab-size", "1"])
    assert proc.returncode == 2


def test_the_entry_reads_values_as_python_literals_else_strings():
    parse = _entry_module().parse_setting
    assert parse("a.b=50") == ("a.b", 50) and parse("a.b=3e-05") == ("a.b", 3e-05)
    assert parse("a.b=False") == ("a.b", False) and parse("a.b=None") == ("a.b", None)
    assert parse("a.b=full") == ("a.b", "full") and parse("++a.b=1") == ("a.b", 1)
    assert parse("a.b=x=y") == ("a.b", "x=y")


def test_the_entry_imports_only_the_standard_library_nemo_and_nemo_run():
    tree = ast.parse(ENTRY.read_text(encoding="utf-8"))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert names - set(sys.stdlib_module_names) == {"nemo", "nemo_run"}


def test_the_run_directory_carries_the_entry_the_script_runs(tmp_path):
    plan = make_plan(HERE / "data" / "golden" / "nemo2-pretrain-xe9680-8cx7.yaml")
    write_plan(plan, tmp_path / "run")
    (entry,) = (tmp_path / "run" / "nemo2").iterdir()
    data = ENTRY.read_bytes()
    assert entry.name == f"nemo2_pretrain-{hashlib.sha256(data).hexdigest()[:12]}.py" and entry.read_bytes() == data
    script = (tmp_path / "run" / plan.jobs[0].script).read_text()
    assert f'-u "$SLURM_SUBMIT_DIR"/nemo2/{entry.name} ' in script
    assert '"$SLURM_SUBMIT_DIR:$SLURM_SUBMIT_DIR:ro"' in script


# --- validate: the image, the recipe, extra_args ----------------------------------------------

def _yaml(change: dict) -> str:
    fields = {"schema_version": "1", "name": "nemo2-case", "sites": "[xe9680-8cx7]", "workload": "pretrain",
              "launcher": "nemo2", "container_image": IMAGE, "model": "llama3-8b", "nodes": "1",
              "steps": "20", "cp": "2", "gbs": "128", "seq_len": "8192", **change}
    return "".join(f"{k}: {v}\n" for k, v in fields.items())


@pytest.mark.parametrize("change, field, message", [
    ({"container_image": "nvcr.io/nvidia/nemo:24.05"}, "container_image",
     "launcher nemo2 needs an image with NeMo 2 whose recipe keys slurmkit ships; nvcr.io/nvidia/nemo:24.05 has"
     " NeMo v2.0.0rc0, for which slurmkit has no recipe key set (hint: images that work: " + IMAGE + ")"),
    ({"container_image": "nvcr.io/nvidia/nemo:26.04.00"}, "container_image",
     "nvcr.io/nvidia/nemo:26.04.00 has no NeMo (hint: images that work: " + IMAGE + ")"),
    ({"model": "llama2-7b"}, "model", "launcher nemo2 has no recipe for model llama2-7b"),
    ({"precision": "fp8"}, "precision", "launcher nemo2 runs the recipe's BF16 mixed precision only, not fp8"),
    ({"checkpoint_interval": "10"}, "checkpoint_interval", "launcher nemo2 writes no checkpoints"),
    ({"dataset": "/data/x"}, "dataset", "launcher nemo2 runs pretraining on mock data only"),
    ({"pp": "2"}, "pp", "pp=2: NeMo's llama3_8b recipe sets no pipeline dtype, which llm.pretrain requires"),
    ({"model": "llama3-70b", "nodes": "8", "tp": "4", "pp": "4", "vpp": "5", "sequence_parallel": "true",
      "gbs": "132"}, "vpp", ("vpp=5: Megatron Core's interleaved schedule needs the 66 micro-batches per step"
                             " (gbs / (mbs * dp)) to be a multiple of pp=4")),
])
def test_validate_refuses_what_the_entry_cannot_run(write_yaml, change, field, message):
    text = _yaml(change)
    path = write_yaml("exp.yaml", text)
    line = [row.split(":")[0] for row in text.splitlines()].index(field) + 1
    with pytest.raises(ConfigError) as err:
        make_plan(path)
    found = [str(p) for p in err.value.problems if message in str(p)]
    assert found and found[0].startswith(f"{path}:{line}:"), "\n".join(map(str, err.value.problems))


def test_extra_args_are_settings_checked_against_the_key_set(write_yaml, fakes):
    good = write_yaml("good.yaml", _yaml({}) + "extra_args: [trainer.strategy.ddp.overlap_grad_reduce=False,"
                      " model.config.cross_entropy_fusion_impl=te]\n")
    (job,) = make_plan(good).jobs
    proc, record = run_entry(fakes, split_command(job.context["command"])[2])
    assert proc.returncode == 0, proc.stderr
    assert record["tree"]["trainer.strategy.ddp.overlap_grad_reduce"] is False
    assert record["tree"]["model.config.cross_entropy_fusion_impl"] == "te"
    bad = write_yaml("bad.yaml", _yaml({}) + "extra_args: [trainer.max_step=5]\n")
    with pytest.raises(ConfigError) as err:
        make_plan(bad)
    text = "\n".join(str(p) for p in err.value.problems)
    assert f"{bad}:13:" in text and "trainer.max_step is not a key of" in text and "trainer.max_steps" in text


def test_key_sets_record_their_sources_and_match_the_image():
    software = CONTAINERS[IMAGE]
    assert (software.nemo, software.megatron_core, software.nemo_run) == ("v2.5.0", "core_v0.14.0", "v0.6.0")
    assert nemo2.nemo2_images() == [IMAGE]
    for recipe in nemo2.RECIPES.values():
        keys = keyset(f"nemo2-{software.nemo}-{recipe}")
        repos = {(s.repo, s.tag) for s in keys.sources}
        assert ("NVIDIA/NeMo", "v2.5.0") in repos and ("NVIDIA/Megatron-LM", "core_v0.14.0") in repos
        assert {t for r, t in repos if r == "Lightning-AI/pytorch-lightning"} >= {"2.2.2", "2.4.0"}
        assert f"nemo/collections/llm/recipes/{recipe}.py" in {s.path for s in keys.sources}
        assert not keys.code_keys and "trainer.strategy.context_parallel_size" in keys.keys


def test_the_environment_follows_the_performance_plugin():
    jobs = {name: job for name, job in JOBS}
    env8 = split_command(jobs["llama3-8b-pretrain-nemo2"].context["command"])[0]
    assert env8["CUDA_DEVICE_MAX_CONNECTIONS"] == "1"  # cp 2
    assert "NCCL_P2P_NET_CHUNKSIZE" not in env8  # pp 1
    env70 = split_command(jobs["llama3-70b-pretrain-nemo2"].context["command"])[0]
    assert env70["NCCL_P2P_NET_CHUNKSIZE"] == "2097152"


def _spec(job: JobPlan):
    from slurmkit.config.experiment import JobSpec
    fields = {k: job.params[k] for k in ("model", "site", "launcher", "workload", "nodes", "steps", "gbs",
                                         "seq_len", "container_image")}
    return JobSpec.model_validate(fields)


def _site(job: JobPlan):
    from slurmkit.config.site import load_site
    return load_site(job.params["site"])[0]


def _extractor():
    spec = importlib.util.spec_from_file_location("extract_nemo2", ROOT / "scripts" / "programs" / "extract_nemo2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extractor_reads_init_parameters_and_dataclass_fields_across_modules(tmp_path):
    ex = _extractor()
    files = {
        "nemo/a/base.py": "from dataclasses import dataclass, field\nfrom typing import ClassVar\n"
                          "@dataclass\nclass Base:\n    x: int = 1\n    y: str = 'a'\n    K: ClassVar[int] = 3\n"
                          "    z: list = field(default_factory=list)\n",
        "nemo/a/child.py": "from dataclasses import dataclass, field\nfrom .base import Base as B\n"
                           "@dataclass\nclass Child(B, io.IOMixin):\n    y: str = 'b'\n"
                           "    z: list = field(init=False)\n    w: Optional[float] = None\n",
        "nemo/b.py": "from nemo.a.child import Child\nclass Plain:\n"
                     "    def __init__(self, p: int = 2, *, q: bool = False, **kwargs):\n        pass\n"
                     "def fn(library: str = 'sentencepiece', vocab_size: Optional[int] = None):\n    pass\n",
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    src = ex.Source(tmp_path, megatron="/nonexistent")
    fields, where, kwargs = ex.members(src, "nemo.b", "Child")  # followed through the import
    assert (fields, where, kwargs) == ({"x": ("int", 1), "y": ("str", "b"), "w": ("Optional[float]", None)},
                                       "nemo.a.child", False)
    assert ex.members(src, "nemo.b", "Plain") == ({"p": ("int", 2), "q": ("bool", False)}, "nemo.b", True)
    assert ex.members(src, "nemo.b", "fn")[0] == {"library": ("str", "sentencepiece"),
                                                  "vocab_size": ("Optional[int]", None)}
