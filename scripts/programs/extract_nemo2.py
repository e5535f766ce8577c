#!/usr/bin/env python3
"""Write the NeMo 2.x recipe key sets the nemo2 launcher's settings are checked against.

The carried entry (``slurmkit/plan/launch/entries/nemo2_pretrain.py``) builds NeMo's
``llm.recipes.<recipe>.pretrain_recipe()`` (a NeMo-Run ``Partial`` of ``llm.pretrain``) and sets
``KEY=VALUE`` settings on its Config tree: ``trainer.max_steps`` is the ``max_steps`` argument of
the class the ``trainer`` node builds. A fiddle Config accepts only its target's parameters, so
the keys are: for each node of the tree (SECTIONS, the classes the recipe puts there at the tag),
the ``__init__`` parameters of a plain class or the init fields of a dataclass (bases followed
across NeMo and Megatron Core). Lightning's ``Trainer`` keys are those of every Lightning release
NeMo's requirements allow (``lightning>2.2.1,<=2.4.0``), so they hold whichever one the image has.

Only names, literal defaults and annotations (as text) are recorded: facts, no code. Sources:
- NeMo 2.5.0 (NeMo Framework 25.09): the PyPI wheel ``nemo_toolkit-2.5.0-py3-none-any.whl``
  unpacked (the NeMo mirror here ends at v2.5.0rc0, whose files differ);
- Megatron-LM ``core_v0.14.0`` and Lightning-AI/pytorch-lightning ``2.2.2 ... 2.4.0``: bare mirrors.

Usage (not run by CI):

    scripts/programs/extract_nemo2.py --nemo-wheel-dir /tmp/whl \\
        --megatron /work/.mirror/NVIDIA+Megatron-LM/repo \\
        --lightning /work/.mirror/Lightning-AI+pytorch-lightning/repo
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared readers beside this file
from extract_argparse import git_show, literal_default  # noqa: E402

OUT = Path(__file__).resolve().parents[2] / "slurmkit" / "data" / "programs"
NEMO_TAG, CORE_TAG = "v2.5.0", "core_v0.14.0"
WHEEL = "nemo_toolkit-2.5.0-py3-none-any.whl"
LIGHTNING_TAGS = ("2.2.2", "2.2.3", "2.2.4", "2.2.5", "2.3.0", "2.3.1", "2.3.2", "2.3.3", "2.4.0")
LIGHTNING_TRAINER = "src/lightning/pytorch/trainer/trainer.py"
RECIPES = {"llama3_8b": "Llama3Config8B", "llama3_70b": "Llama3Config70B"}

# node of the recipe's Config tree -> (module, class or function) that node builds, as the
# recipe file sets it (recipes/<recipe>.py: model(), trainer(), pretrain_recipe(); the log,
# optimizer and precision helpers it calls; the null tokenizer the entry sets, as NVIDIA's
# scripts/performance/llm/pretrain_llama3_8b.py does at v2.5.0rc0)
SECTIONS = {
    "model": ("nemo.collections.llm.gpt.model.llama", "LlamaModel"),
    "model.config": ("nemo.collections.llm.gpt.model.llama", None),  # RECIPES[recipe]
    "trainer": ("lightning", "Trainer"),  # nemo.lightning.Trainer subclasses it, no __init__
    "trainer.strategy": ("nemo.lightning.pytorch.strategies.megatron_strategy", "MegatronStrategy"),
    "trainer.strategy.ddp": ("megatron.core.distributed.distributed_data_parallel_config",
                             "DistributedDataParallelConfig"),
    "trainer.plugins": ("nemo.lightning.pytorch.plugins.mixed_precision", "MegatronMixedPrecision"),
    "data": ("nemo.collections.llm.gpt.data.mock", "MockDataModule"),
    "data.tokenizer": ("nemo.collections.nlp.modules.common.tokenizer_utils", "get_nmt_tokenizer"),
    "log": ("nemo.lightning.nemo_logger", "NeMoLogger"),
    "optim": ("nemo.lightning.pytorch.optim.megatron", "MegatronOptimizerModule"),
    "optim.config": ("megatron.core.optimizer.optimizer_config", "OptimizerConfig"),
    "optim.lr_scheduler": ("nemo.lightning.pytorch.optim.lr_scheduler", "CosineAnnealingScheduler"),
}


def module_path(module: str) -> str:
    return module.replace(".", "/") + ".py"




class Source:
    """Reads modules of NeMo (the unpacked wheel) and Megatron Core (the mirror at CORE_TAG)."""

    def __init__(self, wheel_dir: Path, megatron: str):
        self.wheel_dir, self.megatron = wheel_dir, megatron
        self.read: dict[str, tuple[str, str, str]] = {}  # module -> (repo, tag, path)
        self.trees: dict[str, ast.Module] = {}

    def tree(self, module: str) -> ast.Module | None:
        if module not in self.trees:
            path = module_path(module)
            if module.startswith("nemo."):
                file = self.wheel_dir / path
                if not file.is_file():
                    file = self.wheel_dir / path.removesuffix(".py") / "__init__.py"
                    path = path.removesuffix(".py") + "/__init__.py"
                if not file.is_file():
                    return None
                text, where = file.read_text(encoding="utf-8"), ("NVIDIA/NeMo", NEMO_TAG, path)
            elif module.startswith("megatron.core."):
                try:
                    text = git_show(self.megatron, CORE_TAG, path)
                except subprocess.CalledProcessError:
                    return None
                where = ("NVIDIA/Megatron-LM", CORE_TAG, path)
            else:
                return None
            self.trees[module] = ast.parse(text)
            self.read[module] = where
        return self.trees[module]

    def find(self, module: str, name: str) -> tuple[str, ast.AST] | None:
        """The class or function ``name`` as ``module`` sees it (imports followed)."""
        for _ in range(6):
            tree = self.tree(module)
            if tree is None:
                return None
            for node in tree.body:
                if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
                    return module, node
            imported = None
            for node in tree.body:
                if isinstance(node, ast.ImportFrom):
                    for alias in node.names:
                        if (alias.asname or alias.name) == name:
                            base = module.split(".")[:-node.level] if node.level else []
                            imported = (".".join(base + ([node.module] if node.module else [])), alias.name)
            if imported is None:
                return None
            module, name = imported
        return None


def call_name(node: ast.expr) -> str | None:
    node = node.func if isinstance(node, ast.Call) else node
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def is_dataclass(node: ast.ClassDef) -> bool:
    return any(call_name(d) == "dataclass" for d in node.decorator_list)


def init_params(fn: ast.FunctionDef) -> dict[str, tuple[str | None, object]]:
    """Named parameters of a function (self dropped): name -> (annotation text, literal default)."""
    a = fn.args
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    out = {}
    for arg, default in [*zip(positional, defaults), *zip(a.kwonlyargs, a.kw_defaults)]:
        if arg.arg in ("self", "cls"):
            continue
        out[arg.arg] = (ast.unparse(arg.annotation) if arg.annotation else None, literal_default(default))
    return out


def dataclass_fields(src: Source, module: str, node: ast.ClassDef) -> dict[str, tuple[str | None, object]]:
    """Init fields of a dataclass and its dataclass bases (subclass wins; init=False dropped)."""
    fields: dict = {}
    for base in node.bases:
        name = base.id if isinstance(base, ast.Name) else None  # io.IOMixin and the like: no fields
        found = src.find(module, name) if name else None
        if found and isinstance(found[1], ast.ClassDef) and is_dataclass(found[1]):
            for key, value in dataclass_fields(src, *found).items():
                fields.setdefault(key, value)
    own = {}
    for stmt in node.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        annotation = ast.unparse(stmt.annotation)
        if annotation.startswith(("ClassVar", "typing.ClassVar", "InitVar")):
            continue
        default, init = stmt.value, True
        if isinstance(default, ast.Call) and call_name(default) == "field":
            kws = {kw.arg: kw.value for kw in default.keywords}
            init = literal_default(kws.get("init")) is not False
            default = kws.get("default")
        if init:
            own[stmt.target.id] = (annotation, literal_default(default))
        else:
            fields.pop(stmt.target.id, None)
    return {**fields, **own}


def members(src: Source, module: str, name: str) -> tuple[dict, str, bool]:
    """(parameters, the module defining it, whether it also takes **kwargs)."""
    found = src.find(module, name)
    if found is None:
        raise SystemExit(f"{module}.{name}: not found in the files read")
    where, node = found
    if isinstance(node, ast.FunctionDef):
        return init_params(node), where, node.args.kwarg is not None
    if is_dataclass(node):
        return dataclass_fields(src, where, node), where, False
    init = next((s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
    if init is None:
        raise SystemExit(f"{module}.{name}: no __init__ and not a dataclass")
    return init_params(init), where, init.args.kwarg is not None


def lightning_trainer(repo: str) -> tuple[dict, list[dict]]:
    """Trainer.__init__ parameters present in every allowed Lightning release (defaults of the last)."""
    per_tag = []
    for tag in LIGHTNING_TAGS:
        tree = ast.parse(git_show(repo, tag, LIGHTNING_TRAINER))
        cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Trainer")
        init = next(s for s in cls.body if isinstance(s, ast.FunctionDef) and s.name == "__init__")
        per_tag.append(init_params(init))
    common = set.intersection(*(set(p) for p in per_tag))
    last = per_tag[-1]
    sources = [{"repo": "Lightning-AI/pytorch-lightning", "tag": t, "path": LIGHTNING_TRAINER}
               for t in LIGHTNING_TAGS]
    return {k: last[k] for k in last if k in common}, sources


def factory(src: Source, recipe: str) -> dict:
    module = f"nemo.collections.llm.recipes.{recipe}"
    params, _, _ = members(src, module, "pretrain_recipe")
    return {"module": module, "function": "pretrain_recipe", "params": sorted(params)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nemo-wheel-dir", required=True, type=Path, help=f"{WHEEL}, unpacked")
    parser.add_argument("--wheel", type=Path, help="the wheel file itself, to record its SHA-256")
    parser.add_argument("--megatron", required=True, help="bare mirror of NVIDIA/Megatron-LM")
    parser.add_argument("--lightning", required=True, help="bare mirror of Lightning-AI/pytorch-lightning")
    args = parser.parse_args()
    trainer, lightning_sources = lightning_trainer(args.lightning)
    for recipe, config_class in RECIPES.items():
        src = Source(args.nemo_wheel_dir, args.megatron)
        keys, types, sections, var_keyword = {}, {}, {}, []
        for section, (module, name) in SECTIONS.items():
            if section == "trainer":
                found, where, kwargs = trainer, "lightning.pytorch.trainer.trainer", False
            else:
                found, where, kwargs = members(src, module, name or config_class)
            sections[section] = f"{where}.{name or config_class}"
            if kwargs:  # fiddle takes any name there; slurmkit's key set only the named ones
                var_keyword.append(section)
            for key, (annotation, default) in found.items():
                keys[f"{section}.{key}"], types[f"{section}.{key}"] = default, annotation
        fact = factory(src, recipe)
        sources = [{"repo": r, "tag": t, "path": p} for r, t, p in sorted(set(src.read.values()))]
        data = {
            "kind": "fiddle",
            "program": f"NeMo 2 llm.recipes.{recipe}.pretrain_recipe (NeMo-Run Config tree)",
            "version": f"NeMo {NEMO_TAG} with Megatron-LM {CORE_TAG}, Lightning {LIGHTNING_TAGS[0]}-{LIGHTNING_TAGS[-1]}",
            "read_from": f"{WHEEL} (PyPI)" + (f", sha256 {hashlib.sha256(args.wheel.read_bytes()).hexdigest()}"
                                               if args.wheel else ""),
            "sources": sources + lightning_sources,
            "sections": sections, "var_keyword": var_keyword, "factory": fact,
            "keys": dict(sorted(keys.items())), "code_keys": {}, "types": dict(sorted(types.items())),
        }
        path = OUT / f"nemo2-{NEMO_TAG}-{recipe}.json"
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path} ({len(keys)} keys)")


if __name__ == "__main__":
    main()
