#!/usr/bin/env python3
"""Run the nemo2 entry of every shipped NeMo 2 job with the real NeMo-Run and fiddle (not in CI).

tests/config/test_nemo2_programs.py runs the entry against small stand-ins for ``nemo_run``; this
script uses the real one: NeMo-Run 0.6.0 (the version NeMo Framework 25.09 ships) with its
fiddle, installed in a separate environment (``pip install nemo_run==0.6.0 leptonai==0.25.9``:
NeMo-Run v0.6.0's uv.lock pins that leptonai; a newer one lacks ``leptonai.api.v1``). ``nemo``
itself needs CUDA, Megatron Core and Transformer Engine, so its classes are stand-ins written from
the key set: each class of the recipe's tree gets an ``__init__`` with exactly the parameters the
key set records, the recipe function builds the same tree as NeMo v2.5.0's
``recipes/<recipe>.py`` (including ``performance_mode``'s edits), and ``llm.pretrain`` records
what fiddle built. So fiddle itself refuses a misspelt key, ``nemo_run.run(recipe,
direct=True)`` builds and calls the recipe in the process, and every built value is checked
against the job's parameters.

Usage: scripts/programs/check_nemo2_entry.py --python /path/to/venv/bin/python
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from slurmkit.plan.launch.programs import PROGRAMS_DIR  # noqa: E402 (after the sys.path entry above)
from slurmkit.plan.make import make_plan  # noqa: E402

ENTRY = ROOT / "slurmkit" / "plan" / "launch" / "entries" / "nemo2_pretrain.py"

RECIPE = '''
import nemo_run as run
from nemo.classes import *  # noqa

def pretrain(model, data, trainer, log=None, resume=None, optim=None):
    import json, os
    def dump(obj, prefix, out):
        for name, value in (obj if isinstance(obj, dict) else vars(obj)).items():
            if isinstance(value, dict) or (hasattr(value, "__dict__") and not isinstance(value, type)):
                dump(value, f"{prefix}{name}.", out)
            elif isinstance(value, list):
                out[f"{prefix}{name}"] = [type(v).__name__ for v in value]
            else:
                out[f"{prefix}{name}"] = value
        return out
    built = {}
    for name, value in dict(model=model, data=data, trainer=trainer, log=log, resume=resume, optim=optim).items():
        dump(value, name + ".", built)
    json.dump(built, open(os.environ["CHECK_OUT"], "w"), default=repr)

def pretrain_recipe(dir=None, name="default", num_nodes=1, num_gpus_per_node=8, performance_mode=False,
                    fn=pretrain):
    strategy = run.Config(MegatronStrategy, tensor_model_parallel_size=1, pipeline_model_parallel_size=1,
                          pipeline_dtype=None, virtual_pipeline_model_parallel_size=None,
                          context_parallel_size=CP, sequence_parallel=SP, gradient_as_bucket_view=True,
                          ckpt_async_save=True, ckpt_parallel_load=True,
                          ddp=run.Config(DistributedDataParallelConfig, check_for_nan_in_grad=True,
                                         grad_reduce_in_fp32=True, overlap_grad_reduce=True,
                                         overlap_param_gather=True, average_in_collective=True,
                                         data_parallel_sharding_strategy="optim_grads_params"),
                          fsdp=None)
    trainer = run.Config(Trainer, accelerator="gpu", accumulate_grad_batches=1,
                         callbacks=[run.Config(TimingCallback)], devices=num_gpus_per_node,
                         limit_test_batches=50, limit_val_batches=32, log_every_n_steps=10,
                         max_steps=1168251, num_nodes=num_nodes,
                         plugins=run.Config(MegatronMixedPrecision, precision="bf16-mixed"),
                         strategy=strategy, use_distributed_sampler=False, val_check_interval=2000)
    recipe = run.Partial(fn, model=run.Config(LlamaModel, config=run.Config(CONFIG)), trainer=trainer,
                         data=run.Config(MockDataModule, seq_length=8192, global_batch_size=512, micro_batch_size=1),
                         log=run.Config(NeMoLogger, ckpt=None, name=name, tensorboard=None, wandb=None, log_dir=dir),
                         optim=run.Config(MegatronOptimizerModule,
                                          config=run.Config(OptimizerConfig, optimizer="adam", lr=3e-4,
                                                            weight_decay=0.1, bf16=True, fp16=False,
                                                            adam_beta1=0.9, adam_beta2=0.95, adam_eps=1e-5,
                                                            use_distributed_optimizer=True, clip_grad=1.0),
                                          lr_scheduler=run.Config(CosineAnnealingScheduler, warmup_steps=2000,
                                                                  constant_steps=0, min_lr=3e-5)),
                         resume=run.Config(AutoResume))
    if performance_mode:
        recipe.trainer.callbacks.extend([run.Config(GarbageCollectionCallback),
                                         run.Config(MegatronCommOverlapCallback)])
        recipe.trainer.plugins.grad_reduce_in_fp32 = False
        recipe.optim.config.use_precision_aware_optimizer = False
    return recipe
'''

# what NeMo v2.5.0's recipes/<recipe>.py trainer() passes that differs between the two
RECIPE_SHAPE = {"llama3_8b": ("Llama3Config8B", 2, False), "llama3_70b": ("Llama3Config70B", 2, True)}


def stand_ins(keys: dict, recipe: str, root: Path) -> None:
    """Write the ``nemo`` stand-in package for one recipe's key set."""
    classes = []
    for section, qualified in keys["sections"].items():
        name = qualified.rsplit(".", 1)[1]
        params = sorted(k[len(section) + 1:] for k in keys["keys"]
                        if k.startswith(section + ".") and "." not in k[len(section) + 1:])
        args = ", ".join([f"{p}=None" for p in params] + (["**kwargs"] if section in keys["var_keyword"] else []))
        if name == "get_nmt_tokenizer":
            classes.append(f"def get_nmt_tokenizer({args}):\n    return dict(locals())\n")
        else:
            classes.append(f"class {name}:\n    def __init__(self, {args}):\n"
                           f"        vars(self).update({{k: v for k, v in locals().items() if k != 'self'}})\n"
                           f"        vars(self).update(vars(self).pop('kwargs', {{}}))\n")
    classes += [f"class {n}:\n    pass\n" for n in ("TimingCallback", "GarbageCollectionCallback",
                                                    "MegatronCommOverlapCallback", "AutoResume")]
    files = {
        "nemo/__init__.py": "", "nemo/collections/__init__.py": "", "nemo/collections/llm/__init__.py": "",
        "nemo/collections/llm/recipes/__init__.py": "", "nemo/collections/nlp/__init__.py": "",
        "nemo/collections/nlp/modules/__init__.py": "", "nemo/collections/nlp/modules/common/__init__.py": "",
        "nemo/classes.py": "\n\n".join(classes),
        "nemo/collections/nlp/modules/common/tokenizer_utils.py": "from nemo.classes import get_nmt_tokenizer\n",
    }
    config, cp, sp = RECIPE_SHAPE[recipe]
    files[f"nemo/collections/llm/recipes/{recipe}.py"] = textwrap.dedent(RECIPE).replace(
        "CONFIG", config).replace("CP", str(cp)).replace("SP", str(sp))
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text, encoding="utf-8")


def check_job(python: str, job, work: Path) -> list[str]:
    _env, _run, *rest = job.context["command"]
    argv = [a for g in rest for a in g]
    recipe = argv[argv.index("--recipe") + 1]
    keys = json.loads((PROGRAMS_DIR / f"nemo2-v2.5.0-{recipe}.json").read_text(encoding="utf-8"))
    root = work / recipe
    if not root.exists():
        stand_ins(keys, recipe, root)
    out = work / "built.json"
    env = {**os.environ, "PYTHONPATH": str(root), "CHECK_OUT": str(out)}
    proc = subprocess.run([python, str(ENTRY), *argv], env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        return [f"entry failed: {proc.stderr.strip().splitlines()[-1:]}"]
    built, p = json.loads(out.read_text()), job.params
    want = {"trainer.num_nodes": p["nodes"], "trainer.devices": p["gpus_per_node"], "trainer.max_steps": p["steps"],
            "trainer.strategy.tensor_model_parallel_size": p["tp"],
            "trainer.strategy.pipeline_model_parallel_size": p["pp"],
            "trainer.strategy.context_parallel_size": p["cp"],
            "trainer.strategy.virtual_pipeline_model_parallel_size": p["vpp"],
            "trainer.strategy.sequence_parallel": p["sequence_parallel"],
            "data.micro_batch_size": p["mbs"], "data.global_batch_size": p["gbs"], "data.seq_length": p["seq_len"],
            "model.config.seq_length": p["seq_len"], "optim.lr_scheduler.max_steps": p["steps"],
            "data.tokenizer.library": "null", "data.tokenizer.vocab_size": p["model_vocab"] - 1,
            "model.tokenizer.model_name": "NullTokenizer", "trainer.plugins.grad_reduce_in_fp32": False,
            "trainer.enable_checkpointing": False, "log.ckpt": None}
    return [f"{k}: built {built.get(k)!r}, job says {v!r}" for k, v in want.items()
            if built.get(k) != v or type(built.get(k)) is not type(v)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="a Python with nemo_run 0.6.0 installed")
    args = parser.parse_args()
    version = subprocess.run([args.python, "-c", "import nemo_run; print(nemo_run.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    print(f"nemo_run {version}")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for experiment in sorted([*ROOT.glob("experiments/*.yaml"), *ROOT.glob("tests/config/data/golden/*.yaml")]):
            if "launcher: nemo2" not in experiment.read_text(encoding="utf-8"):
                continue
            for job in make_plan(experiment).jobs:
                problems = check_job(args.python, job, work)
                failures += bool(problems)
                print(f"{'FAIL' if problems else 'ok'}: {experiment.name} {job.run_id}", *problems, sep="\n  ")
        # fiddle itself refuses a parameter the class lacks
        job = make_plan(ROOT / "tests/config/data/golden/nemo2-pretrain-xe9680-8cx7.yaml").jobs[0]
        job.context["command"].append(["trainer.max_step=5"])
        problems = check_job(args.python, job, work)
        refused = bool(problems) and "max_step" in problems[0]
        print(f"{'ok' if refused else 'FAIL'}: a misspelt key is refused by fiddle: {problems}")
        failures += not refused
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
